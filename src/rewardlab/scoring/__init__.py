"""Scoring: opening any model kind (:mod:`.loader`, through the registry :mod:`rewardlab.core.kinds`; every kind
answers the one interface, :mod:`rewardlab.core.scorer`)."""
