"""Evaluation metrics for reward models: pure functions over numbers, no model code.

The package holds one module per seam: :mod:`.pairs` (the pairs a judgement implies, their outcomes and
margins), :mod:`.ties` (tie policies and credit), :mod:`.accuracy` (pair and record accuracy, per source),
:mod:`.calibration`, :mod:`.statistics` (bootstrap intervals, reward-length correlation),
:mod:`.best_of_n` (accuracy on fixed candidates; the unbiased best-of-n estimator of proxy and gold) and
:mod:`.summary` (:func:`~rewardlab.metrics.summary.evaluate_scores`, everything at once). Judge-vote metrics (win / loss / tie, agreement) live with their benchmark,
:mod:`rewardlab.benchmarks.mtbench`.

Everything here works on the rewards a model gave to the responses of :class:`Comparison` records:
``scores[i][j]`` is the reward of ``records[i].responses[j]``. The *pairs* of a record are the
``(winner, loser)`` pairs its judgement implies (:meth:`Comparison.strict_pairs`): for plain data
(``chosen`` only) the chosen response against every other one, K − 1 pairs; with a ``ranking`` or
``tiers`` every pair of responses in different tiers. Responses the judge *tied* (same tier,
:meth:`Comparison.tied_pairs`) form no pair: they are neither wins nor losses; they are only counted
(``n_tied_pairs``) and described (``tie_agreement``, ``tied_mean_abs_gap``). Example: tiers
((2,), (0, 3), (1,)) give the pairs (2,0) (2,3) (2,1) (0,1) (3,1) and the tied pair (0,3).
The low-level functions take the pairs as ``pairs[i]`` (a list of ``(winner, loser)`` indices per
record); without it they fall back to chosen-vs-every-other.

* **Accuracy** (``accuracy``, *pair accuracy*) is pooled over the strict pairs of all records, and
  strict by default: a pair is a win only if ``r_winner > r_loser``. A reward tie is not a win; reward
  ties are counted and reported separately, so a model that gives every response the same reward
  scores accuracy 0 with tie rate 1, not 0.5. **Record accuracy** (``record_accuracy``) is the share
  of records (with at least one pair) whose every pair is a win — for plain data "the chosen response
  beats all the others", the number training logs as ``eval_record_accuracy``; for K = 2 both are equal.
  Record accuracy is always strict (a reward tie fails the record). Other **tie policies** (:class:`TiePolicy`: ``strict``,
  ``half``, ``fractional``, ``random`` with a seed) give ties partial or random credit; every result
  records the policy it used.
* **Calibration** reads ``P = σ(r_winner − r_loser)`` over the pairs as the probability the model gives
  to the human (ground-truth) choice, as in the Bradley–Terry loss. See :func:`calibration`.
* Confidence intervals come from a percentile bootstrap that resamples *records*, so the pairs of one
  K > 2 record stay together.

:func:`evaluate_scores` returns all of it as one JSON-serialisable dict (non-finite numbers → ``None``).
"""
