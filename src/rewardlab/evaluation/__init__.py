"""Scores to numbers to reports: :mod:`.scores`, the report writers, training curves."""
