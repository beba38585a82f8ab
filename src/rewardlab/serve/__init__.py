"""``rewardlab serve``: a batching HTTP reward server (FastAPI + uvicorn) and its Python client.

* :mod:`rewardlab.serve.app` — endpoints, limits, auth, metrics, graceful shutdown (``create_app``,
  ``make_server``, ``run_serve``).
* :mod:`rewardlab.serve.batcher` — the worker that merges concurrent requests into one forward.
* :mod:`rewardlab.serve.openrlhf` — how OpenRLHF ``/get_reward`` queries are split into prompt and response.
* :mod:`rewardlab.serve.client` — ``RewardClient`` / ``AsyncRewardClient`` and a TRL-style reward function.
"""

from rewardlab.serve.config import ServeConfig

__all__ = ["ServeConfig"]
