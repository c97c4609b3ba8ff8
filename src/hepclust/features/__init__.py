"""Derived quantities: kinematics, jet clustering, substructure, dijet tables."""
