"""Adapters that are the only modules allowed to import a machine-learning framework."""
