"""The scorer interface (rewardlab.scoring): declared capabilities, one options object, the registry of kinds
the loader consults — and no caller that probes a scorer for a method with getattr/hasattr."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from rewardlab.core import kinds
from rewardlab.core.contract_options import ContractOptions
from rewardlab.core.errors import ModelContractError
from rewardlab.core.kinds import KINDS, Kind, kind_of
from rewardlab.core.scorer import Capabilities, LoadRequest, ScoreOptions, Scorer
from rewardlab.scoring.loader import load_reward_model

SRC = Path(__file__).resolve().parents[1] / "src" / "rewardlab"

# what callers used to ask a scorer with getattr/hasattr before the interface declared it
CAPABILITY_NAMES = {
    "reads_unsafe_tags",
    "refuses_packing",
    "multiobjective",
    "score_rows",
    "attribute_scores",
    "multiobjective_report",
    "last_summary",
    "contract",
    "describe",
    "pointwise",
    "modified_files",
    "tokenizer",
    "attributes",
    "capabilities",
    "spec",
    "score_comparisons",
    "unpack",
    "name",
}
SCORER_NAMES = {"rm", "scorer", "judge", "model_or_judge", "member"}  # what the code calls a scorer


def _is_scorer(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return node.id in SCORER_NAMES
    return isinstance(node, ast.Attribute) and node.attr in SCORER_NAMES | {"scorer", "inner"}


def capability_probes(root: Path = SRC) -> list[str]:
    """``file:line`` of every ``getattr``/``hasattr`` that asks a scorer for something, or asks anything for one
    of the capability names (a probe on an undeclared interface)."""
    found = []
    for f in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id not in ("getattr", "hasattr") or len(node.args) < 2:
                continue
            target, name = node.args[0], node.args[1]
            named = isinstance(name, ast.Constant) and name.value in CAPABILITY_NAMES
            if _is_scorer(target) or named:
                found.append(f"{f.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_capability_probe_on_a_scorer_in_src():
    """Callers read ``scorer.capabilities`` and call the interface's methods; a getattr/hasattr probe that comes
    back (e.g. ``getattr(rm, "reads_unsafe_tags", False)``) fails here with its file and line."""
    assert capability_probes() == []


def test_the_probe_finder_finds_probes(tmp_path):
    """The check above cannot pass vacuously: the finder flags the probes the old code had."""
    (tmp_path / "old.py").write_text(
        "def f(rm, scorer, x):\n"
        "    a = getattr(rm, 'reads_unsafe_tags', False)\n"
        "    b = hasattr(scorer, 'anything')\n"
        "    c = getattr(x, 'multiobjective_report', None)\n"
        "    d = getattr(x.config, 'hidden_size', None)\n"
    )
    assert [p.split(":")[1] for p in capability_probes(tmp_path)] == ["2", "3", "4"]


def test_every_kind_resolves_to_an_opener_whose_kind_is_its_registry_name():
    for name, kind in KINDS.items():
        cls = kind.scorer_class()
        assert callable(cls.open) and callable(cls.inspect), name
        if isinstance(cls, type) and issubclass(cls, Scorer):
            assert cls.kind == name, f"{cls.__name__}.kind is {cls.kind!r}, registered as {name!r}"


def test_spec_file_name_is_the_models():
    from rewardlab.models.reward_model import SPEC_FILE

    assert kinds.SPEC_FILE == SPEC_FILE == "rewardlab.json"


def _dir(tmp_path: Path, name: str, spec: dict | None) -> str:
    d = tmp_path / name
    d.mkdir()
    if spec is not None:
        (d / "rewardlab.json").write_text(json.dumps(spec))
    return str(d)


def test_kind_of_reads_what_rewardlab_json_says(tmp_path):
    assert kind_of(_dir(tmp_path, "plain", {"pooling": "cls"})) == "reward-model"
    assert kind_of(_dir(tmp_path, "mo", {"multiobjective": {"attributes": ["a"]}})) == "multiobjective"
    assert kind_of(_dir(tmp_path, "mo-empty", {"multiobjective": None})) == "reward-model"
    assert kind_of(_dir(tmp_path, "c", {"kind": "llama2-composed", "multiobjective": {}})) == "llama2-composed"
    assert kind_of(_dir(tmp_path, "none", None)) == "foreign"
    assert kind_of("some/hub-id") == "foreign"
    assert kind_of(_dir(tmp_path, "dpo", None), ContractOptions(ref_free=True)) == "dpo-implicit"
    assert kind_of("judge:model=x") == "judge"
    with pytest.raises(ModelContractError, match=r"kind 'nope' is not a scorer kind.*reward-model"):
        kind_of(_dir(tmp_path, "bad", {"kind": "nope"}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "rewardlab.json").write_text("{")
    with pytest.raises(ModelContractError, match="rewardlab.json is not valid JSON"):
        kind_of(str(tmp_path / "broken"))


# ---- a throwaway kind: one class + one registry entry is all it takes -------------------------------------
class ToyScorer(Scorer):
    """Reward = number of words in the response (a kind that cannot pack)."""

    kind = "toy"
    capabilities = Capabilities(packing_refusal="--packing does not cover the toy kind")
    calls = 0

    def __init__(self, path: str):
        self.path = path

    @classmethod
    def open(cls, path: str, request: LoadRequest) -> "ToyScorer":
        if request.packing:
            raise ModelContractError(cls.capabilities.packing_refusal)
        return cls(path)

    def score_items(self, items, opts, unsafe=None):
        type(self).calls += 1
        return [float(len(r.split())) for _, r in items]

    def normalize(self, rewards):
        return [r / 10 for r in rewards]


@pytest.fixture
def toy_kind(monkeypatch):
    monkeypatch.setitem(KINDS, "toy", Kind("toy", f"{__name__}:ToyScorer", "word count"))
    ToyScorer.calls = 0


def test_a_registered_kind_is_loaded_and_scored_through_the_one_interface(tmp_path, toy_kind):
    """ "a b c" has 3 words, "x" 1; normalised by the kind's own rule (/10): 0.3, 0.1; the record-wise path gives
    the same rewards per record; the default row is just the score."""
    path = _dir(tmp_path, "toy", {"kind": "toy"})
    rm = load_reward_model(path, say=None)
    assert isinstance(rm, ToyScorer)
    items = [("p", "a b c"), ("p", "x")]
    assert rm.score(items) == [3.0, 1.0]
    assert rm.score(items, ScoreOptions(normalize=True)) == pytest.approx([0.3, 0.1])
    assert rm.score(items, normalize=True, batch_size=1) == pytest.approx([0.3, 0.1])
    assert rm.score_rows(items) == [{"score": 3.0}, {"score": 1.0}]
    from rewardlab.data.record import Comparison

    assert rm.score_comparisons([Comparison("p", ("a b c", "x"))]) == [[3.0, 1.0]]
    with pytest.raises(ModelContractError, match="toy kind"):
        load_reward_model(path, say=None, packing=True)
    with pytest.raises(ModelContractError, match="--template applies only to models without it"):
        load_reward_model(path, ContractOptions(template="plain"), say=None)


def test_a_declared_packing_refusal_stops_before_any_scoring(tmp_path, toy_kind):
    rm = load_reward_model(_dir(tmp_path, "toy", {"kind": "toy"}), say=None)
    with pytest.raises(ModelContractError, match="--packing does not cover the toy kind"):
        rm.score([("p", "a")], packing=True)
    assert ToyScorer.calls == 0


def test_nonfinite_rewards_of_any_kind_are_refused(tmp_path, toy_kind):
    class Broken(ToyScorer):
        def score_items(self, items, opts, unsafe=None):
            return [float("nan")] * len(items)

    from rewardlab.core.finite import NonFiniteError

    with pytest.raises(NonFiniteError):
        Broken("x").score([("p", "a")])


def test_score_options_refuse_unknown_keywords_and_fields_are_typed():
    with pytest.raises(TypeError, match="unknown scoring option.*batchsize"):
        ScoreOptions.build(None, {"batchsize": 3})
    assert ScoreOptions.build(ScoreOptions(batch_size=4), {"normalize": True}) == ScoreOptions(4, True)
    with pytest.raises(ValueError, match="output must be one of"):
        Capabilities(output="tokens")
    with pytest.raises(ValueError, match="cannot also refuse"):
        Capabilities(packs=True, packing_refusal="no")


def test_a_recordwise_scorer_has_no_pointwise_score():
    class Recordwise(Scorer):
        capabilities = Capabilities(pointwise=False, batched_forward=False)

    from rewardlab.core.errors import RewardlabError

    with pytest.raises(RewardlabError, match="scores a record's responses together"):
        Recordwise().score([("p", "a")])
