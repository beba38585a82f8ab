"""Multi-objective and aspect-conditioned reward models (HelpSteer2 / Nemotron regression, ArmoRM gating, Llama 2 rule).

* :mod:`.losses` — masked MSE over K attribute outputs.
* :mod:`.scalarise` — K rewards → one score: fixed weights (Nemotron preset), the Llama 2 rule, the learned gate.
* :mod:`.gate` — ArmoRM's gating MLP, softmax over the K objectives.
* :mod:`.debias` — the verbosity transform r′_j = r_j − λ_j·r_verbosity and its λ grid search.
* :mod:`.ridge` — stage 1 in closed form: one ridge probe per attribute, α chosen on a validation split.
* :mod:`.model` — :class:`AttributeRewardModel`: a plain ``AutoModelForSequenceClassification`` with ``num_labels=K``
  plus the gate and transform stored next to it.
* :mod:`.features` — hidden states computed once and cached.
* :mod:`.train` — ``rewardlab train --objective regression | gating`` and regression → BT initialisation.
* :mod:`.serving` — :class:`MultiObjectiveScorer`, what :func:`rewardlab.scoring.loader.load_reward_model` returns for these
  models: one scorer interface for score, eval, probe, normalize and serve.
* :mod:`.composed` — Llama 2's rule over two separate reward models (a directory written by ``rewardlab compose``).
* :mod:`.report` — the multi-objective section of ``rewardlab eval``'s report.
* :mod:`.metrics` — per-attribute MSE / Pearson / Spearman, pairwise accuracy under each scaliser with CIs.
"""
