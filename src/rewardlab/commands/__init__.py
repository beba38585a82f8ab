"""The commands only :mod:`rewardlab.cli` imports: score, eval, normalize, export, quickstart, compose, inspect."""
