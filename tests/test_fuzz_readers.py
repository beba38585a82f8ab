"""Seeded fuzz pass over the readers: thousands of mutations of valid JSONL, JSON, CSV and Parquet inputs (and
their gzipped forms). Every outcome is either records or a DataError naming the file and a line or row; never
another exception (which the CLI would show as a traceback)."""

import collections
import csv
import gzip
import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rewardlab.core.errors import DataError
from rewardlab.data import load_comparisons

FRUITS = "apple pear plum fig kiwi lime lemon mango".split()


def valid_rows(n=6):
    rows = []
    for i in range(n):
        prompt = f"Tell me, about {FRUITS[i % 8]} #{i}\nplease"
        rows.append(
            {
                "prompt": prompt,
                "chosen": f'{FRUITS[i % 8]} is a "fruit", sweet.',
                "rejected": f"{FRUITS[(i + 3) % 8]} is a fruit.",
                "margin": float(i % 3),
            }
        )
    return rows


def as_jsonl(rows):
    return "".join(json.dumps(r, ensure_ascii=i % 2 == 0) + "\n" for i, r in enumerate(rows)).encode()


def as_json(rows):
    return json.dumps({"data": rows}, indent=1).encode()


def as_csv(rows):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["prompt", "chosen", "rejected", "margin"])
    for r in rows:
        if isinstance(r["prompt"], str):
            w.writerow([r["prompt"], r["chosen"], r["rejected"], r["margin"]])
    return buf.getvalue().encode()


def as_parquet(rows):
    table = pa.Table.from_pylist(
        [{**r, "prompt": r["prompt"] if isinstance(r["prompt"], str) else r["prompt"][0]["content"]} for r in rows]
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


SPICE = [
    b'"',
    b",",
    b"\n",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\\",
    b"\xff",
    b"\xc3",
    b"\x00",
    b"\r",
    b"\\ud800",
    b"null",
    b"1e999",
    b"-",
    b":",
    b" ",
    b'"\\udfff"',
    b"[" * 2000,
]


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random mutation of ``data`` and its name."""
    kind = rng.choice(
        ["flip", "insert", "delete", "truncate", "duplicate", "swap_lines", "spice", "nest", "empty_lines"]
    )
    n = len(data)
    i = rng.randrange(max(n, 1))
    if kind == "flip" and n:
        b = bytearray(data)
        b[i] ^= 1 << rng.randrange(8)
        return bytes(b), kind
    if kind == "insert":
        return data[:i] + bytes([rng.randrange(256)]) + data[i:], kind
    if kind == "delete":
        return data[:i] + data[i + rng.randint(1, 40) :], kind
    if kind == "truncate":
        return data[:i], kind
    if kind == "duplicate":
        j = min(n, i + rng.randint(1, 80))
        return data[:j] + data[i:j] + data[j:], kind
    if kind == "swap_lines":
        lines = data.split(b"\n")
        a, b2 = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[a], lines[b2] = lines[b2], lines[a]
        return b"\n".join(lines), kind
    if kind == "nest":
        depth = rng.choice([50, 5000, 100_000])
        return data[:i] + b"[" * depth + b"]" * depth + data[i:], kind
    if kind == "empty_lines":
        return data[:i] + b"\n\n\n" + data[i:], kind
    return data[:i] + rng.choice(SPICE) + data[i:], "spice"


def semantic_parquet(rows, rng: random.Random) -> tuple[bytes, str]:
    """A well-formed Parquet file with wrong cells: a list response, a number prompt, nulls, a missing column."""
    rows = [dict(r, prompt=r["prompt"] if isinstance(r["prompt"], str) else "p") for r in rows]
    kind = rng.choice(["list_response", "number_prompt", "null", "missing_column", "nan_margin", "empty"])
    r = rows[rng.randrange(len(rows))]
    if kind == "list_response":
        for x in rows:
            x["chosen"] = [x["chosen"]]
    elif kind == "number_prompt":
        for x in rows:
            x["prompt"] = rng.random()
    elif kind == "null":
        r[rng.choice(["prompt", "chosen", "rejected"])] = None
    elif kind == "missing_column":
        for x in rows:
            x.pop("rejected")
    elif kind == "nan_margin":
        r["margin"] = float("nan")
    elif kind == "empty":
        rows = rows[:0]
    table = pa.Table.from_pylist(rows) if rows else pa.table({"prompt": pa.array([], pa.string())})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue(), "parquet_" + kind


def semantic_jsonl(rows, rng: random.Random) -> tuple[bytes, str]:
    """Valid JSON lines with wrong values: a list response, an object prompt, huge numbers, surrogates, ..."""
    rows = [dict(r) for r in rows]
    r = rows[rng.randrange(len(rows))]
    kind = rng.choice(
        [
            "list_response",
            "dict_prompt",
            "list_row",
            "huge_margin",
            "surrogate",
            "bool_text",
            "empty_text",
            "messages_bad",
            "deep",
        ]
    )
    if kind == "list_response":
        r["chosen"] = ["a", "b"]
    elif kind == "dict_prompt":
        r["prompt"] = {"text": "x"}
    elif kind == "list_row":
        rows[rows.index(r)] = [1, 2]
    elif kind == "huge_margin":
        r["margin"] = 1e308 * 10
    elif kind == "surrogate":
        r["chosen"] = "bad \ud800 text"
    elif kind == "bool_text":
        r["rejected"] = True
    elif kind == "empty_text":
        r["chosen"] = ""
    elif kind == "messages_bad":
        r["prompt"] = [{"role": 3, "content": None}]
    elif kind == "deep":
        r["chosen"] = "DEEP"
    text = "".join(json.dumps(x) + "\n" for x in rows)  # json.dumps writes inf as Infinity, \ud800 as an escape
    text = text.replace('"DEEP"', "[" * 3000 + '"x"' + "]" * 3000)
    return text.encode(), "jsonl_" + kind


FORMS = {  # name: (file suffix, bytes of a valid file)
    "jsonl": (".jsonl", as_jsonl),
    "jsonl.gz": (".jsonl.gz", lambda r: gzip.compress(as_jsonl(r), mtime=0)),
    "json": (".json", as_json),
    "json.gz": (".json.gz", lambda r: gzip.compress(as_json(r), mtime=0)),
    "csv": (".csv", as_csv),
    "csv.gz": (".csv.gz", lambda r: gzip.compress(as_csv(r), mtime=0)),
    "parquet": (".parquet", as_parquet),
}


def check_one(path, skip_invalid: bool, outcomes: collections.Counter, case: str) -> None:
    try:
        result = load_comparisons(str(path), skip_invalid=skip_invalid)
    except DataError as e:
        msg = str(e)
        located = ", line " in msg or ", row " in msg or msg.endswith("no rows: the input is empty")
        assert msg.startswith(str(path)) and located, f"{case}: DataError without file and line/row: {msg}"
        outcomes[(case, "DataError")] += 1
        return
    except Exception as e:  # noqa: BLE001 - exactly what the fuzz pass must never see
        pytest.fail(f"{case}: {type(e).__name__}: {e} (skip_invalid={skip_invalid})")
    for err in result.skipped:
        assert str(path) in str(err) and ("line" in str(err) or "row" in str(err)), f"{case}: {err}"
    outcomes[(case, "skipped rows" if result.skipped else "read")] += 1


def fuzz(tmp_path, n: int, seed: int) -> collections.Counter:
    rng = random.Random(seed)
    rows = valid_rows()
    valid = {name: (suffix, make(rows)) for name, (suffix, make) in FORMS.items()}
    outcomes: collections.Counter = collections.Counter()
    for k in range(n):
        name = rng.choice(list(valid))
        suffix, data = valid[name]
        if name == "parquet" and rng.random() < 0.3:
            mutated, kind = semantic_parquet(rows, rng)
        elif name == "jsonl" and rng.random() < 0.3:
            mutated, kind = semantic_jsonl(rows, rng)
        else:
            mutated, kind = mutate(data, rng)
            if rng.random() < 0.2:  # a second mutation on top
                mutated, kind2 = mutate(mutated, rng)
                kind = f"{kind}+{kind2}"
        path = tmp_path / f"case{k % 7}{suffix}"
        path.write_bytes(mutated)
        check_one(path, skip_invalid=k % 2 == 1, outcomes=outcomes, case=f"{name}:{kind.split('+')[0]}")
    return outcomes


def test_fuzz_readers_2000_mutations(tmp_path):
    outcomes = fuzz(tmp_path, 2000, seed=16)
    assert sum(outcomes.values()) == 2000
    errors = sum(v for (case, how), v in outcomes.items() if how == "DataError")
    assert errors > 200  # the mutations do break files (a fuzz pass that only reads valid files proves nothing)


@pytest.mark.slow
def test_fuzz_readers_20000_mutations(tmp_path):
    outcomes = fuzz(tmp_path, 20000, seed=1616)
    assert sum(outcomes.values()) == 20000


def test_valid_forms_read_the_same_records(tmp_path):
    """The unmutated inputs all load (the baseline of the fuzz pass); CSV quoted commas and newlines survive."""
    rows = valid_rows()
    for name, (suffix, make) in FORMS.items():
        path = tmp_path / f"valid{suffix}"
        path.write_bytes(make(rows))
        records = load_comparisons(str(path)).records
        assert len(records) == len(rows), name
        assert records[0].prompt == "Tell me, about apple #0\nplease"
        assert records[0].responses[0] == 'apple is a "fruit", sweet.'
