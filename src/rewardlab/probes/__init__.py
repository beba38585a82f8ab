"""Bias probes: what does a reward model (or judge) reward besides quality?

* :mod:`rewardlab.probes.templates` — every text the probes add, documented in one place.
* :mod:`rewardlab.probes.pairs` — one function per probe (length, off_topic, concreteness, empty_reference,
  content_continuation, nested_instruction, position), each deriving controlled pairs from preference
  records, seeded and deterministic; :data:`~rewardlab.probes.pairs.PROBES` is the registry.
* :mod:`rewardlab.probes.profile` — scoring the pairs with any scorer: per-probe preference rate for the
  biased variant (Wilson 95% interval) and mean reward shift (bootstrap 95% interval).
* :mod:`rewardlab.probes.run` — ``rewardlab probe`` (:class:`~rewardlab.probes.run.ProbeConfig`).
* :mod:`rewardlab.probes.report` — the "Bias profile" table and plot of ``rewardlab eval --probes``.
* :mod:`rewardlab.probes.augment` — ``train --augment offsetbias[:FRACTION]``: off-topic negatives.

Nothing is imported here, so :mod:`rewardlab.evaluation.report` can use :mod:`rewardlab.probes.report` without a cycle.
"""
