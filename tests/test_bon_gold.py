"""The gold checkers `rewardlab bon --gold NAME` can use: the verifiers' arithmetic-chain task is registered."""

from rewardlab.bon.gold import GOLD_CHECKERS, run_checker
from rewardlab.verifiers.synthetic import make_prompt


def test_the_arithmetic_chain_checker_is_registered_and_never_scores_undecidable_as_zero():
    """Known answer: start 2, add 3 → 5. "A: 5" is right (1.0), "A: 6" wrong (0.0); a response with no A: line and a
    prompt that is not a chain cannot be decided: marked with the reason, never 0."""
    check, _ = GOLD_CHECKERS["arithmetic-chains"]
    p = make_prompt(2, [("add", 3)])
    assert run_checker(check, {}, p, "2 + 3 = 5\nA: 5") == (1.0, None)
    assert run_checker(check, {}, p, "2 + 3 = 6\nA: 6") == (0.0, None)
    for prompt, response in ((p, "five"), ("Hi?", "A: 5")):
        value, why = run_checker(check, {}, prompt, response)
        assert value is None and "could not decide" in why
