"""Verifiers: outcome (ORM) and process (PRM) reward models.

``records`` (Solution, Problem) ← ``readers`` (TRL stepwise, ProcessBench, GSM8K solutions, Math-Shepherd) ;
``steps`` (the step marker, checked; encoding) ; ``losses`` (pure losses, score read-outs) ; ``aggregate``
(step / token scores → one solution score) ← ``model`` (VerifierModel: one-forward scoring, save/load) ←
``train`` (``rewardlab train-verifier`` on the core's ``recipe.run_steps``) ; ``evaluate`` (ProcessBench
protocol, best-of-n on fixed candidates) ← ``run_eval`` (``rewardlab eval-verifier``) ; ``synthetic`` (the
embedded arithmetic-chain task and its ``check``).
"""
