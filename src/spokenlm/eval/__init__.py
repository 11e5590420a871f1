"""Metrics over units, features, LMs and generated audio."""
