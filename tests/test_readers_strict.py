"""Readers that never guess silently (issue 23 item 6): ``null`` where text is required, implicit-prompt TRL text rows,
a file's format decided per file, duplicated columns / keys, ranks below 1. Each is an error naming the file, the
line and the field, or (HH transcripts in TRL's implicit-prompt text form) read exactly as the HH reader reads them."""

import json

import pytest

from rewardlab.core.errors import DataError
from rewardlab.data import load_comparisons

HH = [
    {
        "chosen": f"\n\nHuman: {'Tell me a long story about the sea. ' * 6}#{i}\n\nAssistant: Gladly: waves {i}.",
        "rejected": f"\n\nHuman: {'Tell me a long story about the sea. ' * 6}#{i}\n\nAssistant: No.",
    }
    for i in range(7)
]


def _jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def _error(path, **kw) -> DataError:
    with pytest.raises(DataError) as e:
        load_comparisons(path, **kw)
    return e.value


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": None, "chosen": "a", "rejected": "b"},  # TRL: read as an implicit prompt before
        {"prompt": None, "responses": ["a", "b"], "chosen": 0},  # native
        {"prompt": None, "chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi\n\nAssistant: b"},
        {"prompt": None, "responses": ["a", "b"], "ranks": [1, 2]},
    ],
)
def test_null_prompt_is_an_error_naming_line_and_field(tmp_path, row):
    e = _error(_jsonl(tmp_path / "d.jsonl", [row]))
    assert e.field == "prompt" and "null where text is required" in e.reason and e.line is not None


def test_hh_transcripts_in_trl_implicit_text_form_are_split_like_the_hh_reader(tmp_path):
    """Before: prompt "" and the whole transcripts as responses, so a short max_length cut their differing ends
    and 4 of 7 pairs became exact ties. Now: the shared turns are the prompt, the final answers the responses."""
    path = _jsonl(tmp_path / "hh.jsonl", HH)
    as_trl = load_comparisons(path, format="trl").records
    as_hh = load_comparisons(path, format="hh").records
    assert [(c.prompt, c.responses) for c in as_trl] == [(c.prompt, c.responses) for c in as_hh]
    assert as_trl[0].prompt[0]["role"] == "user" and as_trl[0].responses == ("Gladly: waves 0.", "No.")


def test_hh_rows_read_as_trl_are_not_scored_as_tied_whole_transcripts(tmp_path, tiny_llama):
    from rewardlab.models.reward_model import RewardModel

    rm = RewardModel.from_backbone(tiny_llama, max_length=24, seed=0)
    records = load_comparisons(_jsonl(tmp_path / "hh.jsonl", HH), format="trl").records
    scores = rm.score_comparisons(records, batch_size=8)
    assert all(s[0] != s[1] for s in scores)  # the differing answers are kept (prompt_left truncation)


def test_plain_implicit_text_sharing_words_is_refused_with_the_reason(tmp_path):
    e = _error(_jsonl(tmp_path / "t.jsonl", [{"chosen": "The sky is blue.", "rejected": "The sky is green."}]))
    assert e.field == "rejected" and e.line == 1 and "share their first 11 characters" in e.reason
    assert "'prompt' column" in e.reason
    # nothing shared (or less than a word): no prompt, the whole texts are the responses
    ok = load_comparisons(_jsonl(tmp_path / "u.jsonl", [{"chosen": "Blue.", "rejected": "Bright green."}]))
    assert ok.records[0].prompt == "" and ok.records[0].responses == ("Blue.", "Bright green.")


@pytest.mark.parametrize(
    "rows, line, said",
    [
        ([{"prompt": "p", "chosen": "a", "rejected": "b"}, HH[0]], 2, "'hh' format, but the file's rows are 'trl'"),
        ([HH[0], {"prompt": "p", "chosen": "a", "rejected": "b"}], 2, "'trl' format, but the file's rows are 'hh'"),
        (
            [{"prompt": "p", "responses": ["a", "b"], "chosen": 0}, {"prompt": "p", "chosen": "a", "rejected": "b"}],
            2,
            "'trl' format, but the file's rows are 'rewardlab'",
        ),
        (
            [{"prompt": "p", "chosen": "a", "rejected": "b"}] * 3
            + [{"input": "p", "output_1": "a", "output_2": "b", "label": 2}],  # fmt: skip
            4,
            "'pairwise' format",
        ),
    ],
)
def test_a_row_of_another_format_in_a_file_is_an_error_naming_its_line(tmp_path, rows, line, said):
    """Before: the format detected from the first row was used for every row (an HH row became a TRL row with an
    empty prompt; a pairwise row failed with a TRL field error)."""
    e = _error(_jsonl(tmp_path / "mixed.jsonl", rows))
    assert e.line == line and said in e.reason


def test_skip_invalid_reports_the_other_format_rows(tmp_path):
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}, HH[0], {"prompt": "q", "chosen": "c", "rejected": "d"}]
    loaded = load_comparisons(_jsonl(tmp_path / "m.jsonl", rows), skip_invalid=True)
    assert len(loaded.records) == 2 and [e.line for e in loaded.skipped] == [2] and loaded.format == "trl"


def test_a_csv_header_naming_a_column_twice_is_an_error_naming_the_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("prompt,chosen,rejected,chosen\np,a,b,c\n")
    e = _error(str(path))
    assert e.field == "chosen" and e.line == 1 and "more than once" in e.reason


def test_a_json_key_given_twice_is_an_error(tmp_path):
    e = _error(_jsonl(tmp_path / "d.jsonl", ['{"prompt": "p", "chosen": "a", "rejected": "b", "chosen": "c"}']))
    assert e.line == 1 and "'chosen' appears twice" in e.reason
    doc = tmp_path / "d.json"
    doc.write_text('[{"prompt": "p", "prompt": "q", "chosen": "a", "rejected": "b"}]')
    assert "'prompt' appears twice" in _error(str(doc)).reason


def test_a_parquet_column_given_twice_is_an_error(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([pa.array(["p"]), pa.array(["a"]), pa.array(["b"]), pa.array(["c"])],
                                 names=["prompt", "chosen", "rejected", "chosen"])  # fmt: skip
    pq.write_table(table, tmp_path / "d.parquet")
    e = _error(str(tmp_path / "d.parquet"))
    assert e.field == "chosen" and "more than once" in e.reason


@pytest.mark.parametrize("bad", [0, -1, 0.5])
def test_ranks_below_one_are_errors_naming_the_field(tmp_path, bad):
    """Before: 0 and -1 were accepted and -1 ranked best."""
    e = _error(_jsonl(tmp_path / "r.jsonl", [{"prompt": "p", "responses": ["a", "b", "c"], "ranks": [1, bad, 2]}]))
    assert e.field == "ranks" and "ranks start at 1" in e.reason
    nectar = [{"prompt": "p", "answers": [{"answer": "a", "rank": 1}, {"answer": "b", "rank": bad}]}]
    assert _error(_jsonl(tmp_path / "n.jsonl", nectar)).field == "answers"
