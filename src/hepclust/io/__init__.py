"""Readers and writers, one module per format; `schema` defines the Parquet tables."""
