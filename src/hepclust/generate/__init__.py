"""Event generators: Pythia 8 samples for the jet and dijet tasks."""
