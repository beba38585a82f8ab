"""Scoring: the one scorer interface (:mod:`.protocol`) and the registry of model kinds (:mod:`.kinds`)."""
