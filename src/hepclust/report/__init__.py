"""Plots and summaries the report shows."""
