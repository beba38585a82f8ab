"""Best-of-N sampling, its analysis against a gold reward, and rejection sampling.

:mod:`.kl` (KL of best-of-n vs the base sampler: the analytic bound and a sample-based estimate), :mod:`.gao`
(Gao et al.'s fit gold(d) = d(α − βd), d = √KL, and its peak), :mod:`.ensemble` (several proxies combined: mean,
worst-case, uncertainty-weighted). The estimator itself is :func:`rewardlab.metrics.best_of_n.best_of_n_curve`.
"""
