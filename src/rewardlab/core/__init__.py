"""Foundations: errors, files, options and their ranges, progress, provenance, the scorer interface (:mod:`.scorer`) and the registry of model kinds (:mod:`.kinds`). Imports no other stage."""
