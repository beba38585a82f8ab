"""Fault search (not in CI): new cases over three classes — readers, settings/paths/flags, server requests — each with
an oracle, counted as refusals (a clean error), correct answers, tracebacks and silent wrong results.

* readers: good rows of every format mutated (null, wrong types, blanks, duplicated keys and columns, rows of another
  format, ranks, shared prefixes, extra columns) through ``load_comparisons``; the oracle says refuse, or accept
  and what the record must hold;
* settings: ``rewardlab.cli.main`` in one fresh interpreter over bad paths, misspelt flags, bad values and bad
  environment variables for every command, the commands themselves replaced by a stub (an accepted bad setting
  reaches the stub: silent wrong); also whether torch was imported;
* server: requests to the real app (tiny random Llama, a token) through FastAPI's TestClient: 4xx JSON answers
  expected, 200 answers checked against the offline scores, 5xx counted as tracebacks.

    .venv/bin/python scripts/faultsearch/readers_settings_server.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFUSE, ACCEPT = "refuse", "accept"


class Tally:
    def __init__(self):
        self.rows: dict[str, dict] = {}
        self.notes: list[str] = []

    def add(self, cls: str, outcome: str, what: str) -> None:
        row = self.rows.setdefault(cls, {"cases": 0, "tracebacks": 0, "silent wrong": 0, "refusals": 0, "correct": 0})
        row["cases"] += 1
        key = {"traceback": "tracebacks", "silent": "silent wrong", "refused": "refusals", "ok": "correct"}[outcome]
        row[key] += 1
        if outcome in ("traceback", "silent"):
            self.notes.append(f"{cls}: {outcome}: {what}")


# ---- readers ------------------------------------------------------------------------------------------------------
GOOD = {
    "trl": {"prompt": "P?", "chosen": "Yes.", "rejected": "No."},
    "conv": {
        "prompt": [{"role": "user", "content": "Hi"}],
        "chosen": [{"role": "assistant", "content": "Hello"}],
        "rejected": [{"role": "assistant", "content": "Bye"}],
    },
    "hh": {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: Bye"},
    "pairwise": {"input": "I?", "output_1": "A.", "output_2": "B.", "label": 2},
    "rewardlab": {"prompt": "P?", "responses": ["A.", "B.", "C."], "chosen": 1},
    "ranked": {"prompt": "P?", "responses": ["A.", "B.", "C."], "ranks": [2, 1, 3]},
    "nectar": {"prompt": "P?", "answers": [{"answer": "A.", "rank": 2}, {"answer": "B.", "rank": 1}]},
    "ratings": {"prompt": "P?", "completions": [{"response": "A.", "score": 1}, {"response": "B.", "score": 5}]},
    "helpsteer2_pref": {"prompt": "P?", "response_1": "A.", "response_2": "B.", "preference_strength": 2},
}
# what the good row reads as: (chosen response text)
BEST = {
    "trl": "Yes.",
    "conv": "Hello",
    "hh": "Hello",
    "pairwise": "B.",
    "rewardlab": "B.",
    "ranked": "B.",
    "nectar": "B.",
    "ratings": "B.",
    "helpsteer2_pref": "B.",
}
TEXT_FIELDS = {
    "trl": ["prompt", "chosen", "rejected"],
    "hh": ["chosen", "rejected"],
    "pairwise": ["input", "output_1", "output_2"],
    "rewardlab": ["prompt"],
    "ranked": ["prompt"],
    "nectar": ["prompt"],
    "ratings": ["prompt"],
    "helpsteer2_pref": ["prompt", "response_1", "response_2"],
    "conv": [],
}


def reader_cases():
    """(name, file suffix, file text, expected, check(records) -> bool or None)."""
    cases = []

    def jsonl(rows):
        return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)

    def best_is(fmt):
        return lambda recs: len(recs) == 1 and recs[0].responses[recs[0].chosen] == BEST[fmt]

    for fmt, good in GOOD.items():
        cases.append((f"{fmt} good", ".jsonl", jsonl([good]), ACCEPT, best_is(fmt)))
        cases.append((f"{fmt} good + unknown column", ".jsonl", jsonl([{**good, "note": "x"}]), ACCEPT, best_is(fmt)))
        cases.append((f"{fmt} good twice", ".jsonl", jsonl([good, good]), ACCEPT, lambda r: len(r) == 2))
        for field in TEXT_FIELDS[fmt]:
            for label, value in (
                ("null", None),
                ("int", 7),
                ("list of int", [1]),
                ("dict", {"a": 1}),
                ("blank", "   "),
                ("empty", ""),
                ("bool", True),
            ):
                row = {**good, field: value}
                # empty prompt "" in the native format means "no prompt" (documented); elsewhere empty text is refused
                expected = ACCEPT if (fmt == "rewardlab" and field == "prompt" and value == "") else REFUSE
                cases.append((f"{fmt} {field}={label}", ".jsonl", jsonl([row]), expected, None))
            text = json.dumps(good)
            doubled = text[:-1] + f', "{field}": "other"}}'
            cases.append((f"{fmt} {field} given twice", ".jsonl", doubled + "\n", REFUSE, None))
        cases.append((f"{fmt} as a JSON array", ".json", json.dumps([good]), ACCEPT, best_is(fmt)))
        for other, row in GOOD.items():  # a second row of another format
            if other == fmt or (fmt, other) in (("ranked", "rewardlab"), ("rewardlab", "ranked")):
                continue
            same = {("trl", "conv"), ("conv", "trl"), ("ranked", "nectar"), ("nectar", "ranked")}
            if (fmt, other) in same:
                continue  # the same format (TRL text vs conversational; ranked lists vs Nectar)
            cases.append((f"{fmt} then {other}", ".jsonl", jsonl([good, row]), REFUSE, None))
    # ranks and rankings
    for bad in (0, -1, 0.5, -0.0, "1", True, float("nan")):
        row = {**GOOD["ranked"], "ranks": [1, bad, 2]}
        cases.append((f"ranks with {bad!r}", ".jsonl", jsonl([row]), REFUSE, None))  # NaN is written as NaN
    for bad in (0, -2, "x", None):
        row = {"prompt": "P?", "answers": [{"answer": "A.", "rank": 1}, {"answer": "B.", "rank": bad}]}
        expected = ACCEPT if bad is None else REFUSE  # null rank: unranked (documented)
        cases.append((f"nectar rank {bad!r}", ".jsonl", jsonl([row]), expected, None))
    for bad in ([0, 0, 1], [3, 0, 1], [[0, 1], 1], [-1, 0, 1], [], [[]], ["0", 1, 2]):
        cases.append(
            (f"ranking {bad}", ".jsonl", jsonl([{**GOOD["ranked"], "ranks": None, "ranking": bad}]), REFUSE, None)
        )
    # indices left out rank below all listed ones (documented): [0, 1] of three responses prefers 0
    cases.append(
        (
            "ranking [0, 1] of 3",
            ".jsonl",
            jsonl([{**GOOD["ranked"], "ranks": None, "ranking": [0, 1]}]),
            ACCEPT,
            lambda recs: recs[0].chosen == 0,
        )
    )
    # implicit-prompt text rows
    for chosen, rejected, expected in (
        ("The sky is blue.", "The sky is green.", REFUSE),
        ("Blue.", "Green.", ACCEPT),
        ("Q: 2+2? A: 4", "Q: 2+2? A: 5", REFUSE),
        ("I agree", "It depends", ACCEPT),
        ("\n\nHuman: Hi\n\nAssistant: Yes", "\n\nHuman: Hi\n\nAssistant: No", ACCEPT),
        ("Human: Hi\n\nAssistant: Yes", "Human: Hi\n\nAssistant: No", ACCEPT),
        ("\n\nHuman: Hi\n\nAssistant: Yes", "\n\nHuman: Bye\n\nAssistant: No", REFUSE),
    ):
        check = None
        if expected == ACCEPT and "Human" in chosen:

            def check(recs, c=chosen):
                return recs[0].responses[0] == c.rsplit("Assistant:", 1)[1].strip() and recs[0].prompt != ""

        for fmt in ("auto", "trl"):
            cases.append((f"implicit {chosen[:12]!r} --format {fmt}", ".jsonl", jsonl([{"chosen": chosen,
                          "rejected": rejected}]), expected, check, fmt))  # fmt: skip
    # CSV headers
    for header, expected in (
        ("prompt,chosen,rejected", ACCEPT),
        ("prompt,chosen,rejected,chosen", REFUSE),
        ("prompt,prompt,chosen,rejected", REFUSE),
        ("prompt,chosen,rejected,", ACCEPT),
    ):
        n = header.count(",") + 1
        cells = (
            ["P?", "Yes.", "No.", ""][:n]
            if header.endswith(",")
            else (["P?", "Yes.", "No.", "x"][:n] if "prompt,prompt" not in header else ["P?", "P2", "Yes.", "No."])
        )
        cases.append((f"csv header {header!r}", ".csv", header + "\n" + ",".join(cells) + "\n", expected, None))
    return [c if len(c) == 6 else (*c, "auto") for c in cases]


def run_readers(tally: Tally) -> None:
    from rewardlab.core.errors import DataError
    from rewardlab.data import load_comparisons

    tmp = Path(tempfile.mkdtemp(prefix="faults-readers-"))
    for i, (name, suffix, text, expected, check, fmt) in enumerate(reader_cases()):
        path = tmp / f"case{i}{suffix}"
        path.write_text(text)
        try:
            recs = load_comparisons(str(path), format=fmt).records
        except DataError as e:
            ok_msg = str(path) in str(e) and ("line" in str(e) or "row" in str(e) or suffix == ".csv")
            tally.add("readers", "refused" if expected == REFUSE and ok_msg else "silent", f"{name}: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - what the search counts
            tally.add("readers", "traceback", f"{name}: {type(e).__name__}: {e}")
            continue
        if expected == REFUSE:
            tally.add("readers", "silent", f"{name}: accepted ({[(r.prompt, r.responses) for r in recs][:1]})")
        elif check is not None and not check(recs):
            tally.add("readers", "silent", f"{name}: read as {[(r.prompt, r.responses) for r in recs][:1]}")
        else:
            tally.add("readers", "ok", name)


# ---- settings -----------------------------------------------------------------------------------------------------
_PROBE = r"""
import contextlib, io, json, os, sys
import rewardlab.cli as cli
ran = []
for name, (h, cls, func) in list(cli.COMMANDS.items()):
    cli.COMMANDS[name] = (h, cls, lambda args, name=name: ran.append(name))
out = []
for argv, env in json.loads(sys.argv[1]):
    saved = dict(os.environ)
    os.environ.update(env)
    err = io.StringIO()
    ran.clear()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
        except BaseException as e:
            code = "exception " + type(e).__name__ + ": " + str(e)[:200]
    os.environ.clear(); os.environ.update(saved)
    out.append({"argv": argv, "env": env, "code": code, "err": err.getvalue(), "ran": bool(ran)})
print(json.dumps({"cases": out, "torch": "torch" in sys.modules}))
"""


def settings_cases(t: Path):
    (t / "file.txt").write_text("x")
    (t / "empty").mkdir()
    ds = t / "dataset"
    ds.mkdir()
    (ds / "dataset_dict.json").write_text("{}")
    mo = t / "mo"
    mo.mkdir()
    (mo / "config.json").write_text("{}")
    (mo / "rewardlab.json").write_text('{"multiobjective": {"attributes": ["a"]}}')
    model = t / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "rewardlab.json").write_text("{}")
    data = t / "d.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    bad_paths = {
        "missing": str(t / "no" / "dir"),
        "file": str(t / "file.txt"),
        "empty dir": str(t / "empty"),
        "dataset dir": str(ds),
        "uncached hub id": "someorg/not-cached-model",
    }
    cases = []  # (argv, env, expected: refuse | accept)
    model_options = [
        ("train", "--backbone"),
        ("train-judge", "--backbone"),
        ("train-judge", "--teacher"),
        ("judge", "--model"),
        ("score", "--model"),
        ("eval", "--model"),
        ("serve", "--model"),
        ("normalize", "--model"),
        ("export", "--model"),
        ("inspect", "--model"),
        ("probe", "--model"),
        ("score", "--ref-model"),
        ("eval", "--judge"),
    ]
    need = {
        "score": ["--data", str(data)],
        "normalize": ["--data", str(data)],
        "judge": ["--data", str(data)],
        "train-judge": ["--data", str(data)],
        "eval": ["--data", str(data)],
        "export": ["--output", str(t / "o")],
        "probe": ["--data", str(data)],
    }
    for cmd, opt in model_options:
        for kind, value in bad_paths.items():
            argv = [cmd, opt, value, *need.get(cmd, [])]
            if opt == "--ref-model":
                argv += ["--model", str(model)]
            cases.append((argv, {}, REFUSE))
    for kind, value in bad_paths.items():
        if kind == "uncached hub id" or kind == "dataset dir":
            continue
        for cmd, opt in (
            ("train", "--data"),
            ("train", "--eval-data"),
            ("score", "--data"),
            ("judge", "--data"),
            ("train", "--reference-data"),
        ):
            if kind in ("empty dir",) and opt != "--eval-data":
                continue
            argv = [cmd, opt, value] + (["--model", str(model)] if cmd in ("score",) else [])
            if cmd == "judge":
                argv += ["--model", str(model)]
            if kind == "missing":
                cases.append((argv, {}, REFUSE))
    for opt in ("--init-from",):
        for kind, value in bad_paths.items():
            cases.append((["train", "--objective", "gating", opt, value], {}, REFUSE))
    cases.append((["train", "--feature-cache", str(t / "file.txt")], {}, REFUSE))
    cases.append((["train", "--backbone", str(mo)], {}, REFUSE))
    cases.append(
        (["compose", "--safety", str(t / "no"), "--helpfulness", str(model), "--output-dir", str(t / "c")], {}, REFUSE)
    )
    cases.append((["eval", "--run", str(t / "no-run")], {}, REFUSE))
    # required options
    for argv in (
        ["score"],
        ["score", "--model", str(model)],
        ["serve"],
        ["normalize", "--model", str(model)],
        ["export", "--model", str(model)],
        ["judge"],
        ["train-judge"],
        ["compose"],
    ):
        cases.append((argv, {}, REFUSE))
    # misspelt flags and bad values on every command
    typos = {
        "train": ["--bacth-size", "--learning_rate", "--max_steps", "--ouput-dir", "--epoch-s"],
        "score": ["--modle", "--batchsize", "--ouput"],
        "eval": ["--benchmrk", "--modle"],
        "serve": ["--prot", "--max-batch-token", "--tokne"],
        "judge": ["--mdoel", "--temprature"],
        "train-judge": ["--bse", "--lrr"],
        "normalize": ["--dryrun"],
        "probe": ["--probe-lst"],
        "export": ["--mereg"],
        "compose": ["--treshold"],
        "inspect": ["--modl"],
        "quickstart": ["--lr-rate"],
    }
    for cmd, flags in typos.items():
        for flag in flags:
            cases.append(([cmd, flag, "1"], {}, REFUSE))
    values = (
        [("train", "--batch-size", v) for v in ("0", "-1", "many", "1.5", "")]
        + [("train", "--lr", v) for v in ("nan", "inf", "-1", "0", "fast")]
        + [("train", "--eval-fraction", v) for v in ("1.5", "-0.1", "nan")]
        + [("serve", "--port", v) for v in ("70000", "-1", "http")]
        + [("score", "--batch-size", v) for v in ("0", "x")]
        + [("train", "--resume", v) for v in ("maybe",)]
        + [("judge", "--temperature", v) for v in ("-1", "nan")]
    )
    for cmd, flag, value in values:
        extra = {"serve": ["--model", str(model)], "score": ["--model", str(model), "--data", str(data)]}.get(cmd, [])
        cases.append(([cmd, flag, value, *extra], {}, REFUSE))
    for env in (
        {"RANK": "abc"},
        {"RANK": "-1"},
        {"WORLD_SIZE": "0"},
        {"RANK": "3", "WORLD_SIZE": "2"},
        {"LOCAL_RANK": "x"},
        {"LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2"},
        {"WORLD_SIZE": "two"},
    ):
        cases.append((["train"], env, REFUSE))
    # good settings reach the command (the stub)
    for argv in (
        ["train", "--learning-rate", "1e-4"],
        ["train", "--num-train-epochs", "2"],
        ["score", "--model", str(model), "--data", str(data)],
        ["serve", "--model", str(model)],
        ["train", "--data", str(data), "--backbone", str(model)],
        ["eval", "--model", str(model), "--data", str(data)],
    ):
        cases.append((argv, {}, ACCEPT))
    cases.append((["train"], {"RANK": "0", "WORLD_SIZE": "1"}, ACCEPT))
    return cases


def run_settings(tally: Tally) -> None:
    t = Path(tempfile.mkdtemp(prefix="faults-settings-"))
    cases = settings_cases(t)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        env.pop(k, None)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps([(a, e) for a, e, _ in cases])],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for (argv, envs, expected), case in zip(cases, got["cases"]):
        what = f"{' '.join(argv)} {envs or ''}".strip()
        if "Traceback" in case["err"] or str(case["code"]).startswith("exception"):
            tally.add("settings", "traceback", f"{what}: {case['code']} {case['err'][-200:]}")
        elif expected == REFUSE:
            one_line = len(case["err"].strip().splitlines()) == 1
            if case["code"] == 2 and one_line and not case["ran"]:
                tally.add("settings", "refused", what)
            else:
                tally.add("settings", "silent", f"{what}: code {case['code']}, ran {case['ran']}, {case['err'][:200]}")
        else:
            tally.add("settings", "ok" if case["ran"] else "silent", f"{what}: {case['err'][:200]}")
    tally.notes.append(f"settings: torch imported by the parser and the checks: {got['torch']}")


# ---- server requests ----------------------------------------------------------------------------------------------
def server_cases():
    ok = {"prompt": "hi", "responses": ["a", "b"]}
    auth = {"Authorization": "Bearer s3cret"}
    cases = []  # (method, path, headers, body (dict | bytes | None), expected status class or exact, check)
    for hdr in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "bearer"},
        {"Authorization": "Basic s3cret"},
        {"Authorization": "Bearer  s3cret x"},
        {"Authorization": "Token s3cret"},
        [("Authorization", "Bearer nope"), ("Authorization", "Bearer s3cret")],
    ):
        for path in ("/v1/score", "/get_reward", "/metrics", "/openapi.json"):
            body = ok if path == "/v1/score" else ({"query": ["hi a"]} if path == "/get_reward" else None)
            cases.append(("POST" if body else "GET", path, hdr, body, 401, None))
    bad_bodies = [
        b"",
        b"{",
        b"[]",
        b"null",
        b"1",
        b'"x"',
        b'{"prompt": "hi"}',
        b'{"responses": ["a"]}',
        b'{"prompt": "hi", "responses": []}',
        b'{"prompt": "hi", "responses": "a"}',
        b'{"prompt": "hi", "responses": [1]}',
        b'{"prompt": "hi", "responses": [null]}',
        b'{"prompt": 3, "responses": ["a"]}',
        b'{"prompt": null, "responses": ["a"]}',
        b'{"prompt": "hi", "messages": [{"role": "user", "content": "x"}], "responses": ["a"]}',
        b'{"messages": [], "responses": ["a"]}',
        b'{"messages": [{"role": "bot", "content": "x"}], "responses": ["a"]}',
        b'{"messages": [{"role": "user"}], "responses": ["a"]}',
        b'{"messages": [{"role": "user", "content": 5}], "responses": ["a"]}',
        b'{"prompt": "hi", "responses": ["a"], "normalize": "yes"}',
        b'{"prompt": "hi", "responses": ["a"], "normalize": true}',
        b'{"prompt": "hi", "responses": ["a"], "unsafe": true}',
        b'{"prompt": "hi", "responses": ["a"], "extra": 1}',
        b'{"prompt": "hi", "responses": ["a\\ud800"]}',
        b'{"prompt": "\\udfff", "responses": ["a"]}',
        b'{"prompt": "hi", "responses": ["a"], "unsafe": "no"}',
        b'{"prompt": "hi", "responses": [' + b",".join([b'"x"'] * 300) + b"]}",
        b'{"prompt": "' + b"x" * 70000 + b'", "responses": ["a"]}',
        b'{"prompt": "hi", "prompt": "ho", "responses": ["a"]}',
    ]
    for body in bad_bodies:
        cases.append(("POST", "/v1/score", auth, body, "4xx", None))
    cases.append(("POST", "/get_reward", auth, {"query": []}, 200, None))  # no queries: no rewards
    reward_bodies = [
        b'{"query": "hi"}',
        b'{"query": ["hi"], "prompts": ["a", "b"]}',
        b'{"query": ["hi there"], "prompts": ["bye"]}',
        b'{"query": [1]}',
        b'{"query": ["x"], "unsafe": [true]}',
        b'{"query": ["x"], "unsafe": [true, false]}',
        b'{"prompts": ["x"]}',
        b'{"query": ["x"], "normalize": true}',
        b"{}",
    ]
    for body in reward_bodies:
        cases.append(("POST", "/get_reward", auth, body, "4xx", None))
    goods = [
        {"prompt": "hi", "responses": ["a", "b"]},
        {"prompt": "What is 2+3?", "responses": ["5", "6", "five"]},
        {
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            "responses": ["Hello!"],
        },
        {"prompt": "é ü 中文 🙂", "responses": ["ok 🙂"]},
        {"prompt": "x" * 3000, "responses": ["y" * 3000]},
        {"prompt": "hi", "responses": ["a"], "unsafe": False},
    ]
    for body in goods:
        cases.append(("POST", "/v1/score", auth, body, 200, "score"))
    cases.append(("GET", "/health", {}, None, 200, None))
    cases.append(("GET", "/metrics", auth, None, 200, None))
    cases.append(("GET", "/nosuch", auth, None, "4xx", None))
    cases.append(("GET", "/v1/score", auth, None, "4xx", None))
    return cases


def run_server(tally: Tally) -> None:
    from fastapi.testclient import TestClient

    from rewardlab.model import RewardModel
    from rewardlab.models.tiny import make_tiny_causal_lm
    from rewardlab.serve.app import create_app
    from rewardlab.serve.config import ServeConfig

    rm = RewardModel.from_backbone(str(make_tiny_causal_lm(Path(tempfile.mkdtemp()))), max_length=48)
    app = create_app(ServeConfig(token="s3cret", max_wait_ms=0, max_text_chars=65536), rm)
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path, headers, body, expected, check in server_cases():
            what = f"{method} {path} {str(headers)[:40]} {str(body)[:60]}"
            kw = {"headers": headers}
            if isinstance(body, (bytes, bytearray)):
                kw["content"] = body
                kw["headers"] = {
                    **dict(headers if isinstance(headers, dict) else {}),
                    "content-type": "application/json",
                }
            elif body is not None:
                kw["json"] = body
            r = client.request(method, path, **kw)
            try:
                detail = (
                    r.json().get("detail") if r.headers.get("content-type", "").startswith("application/json") else None
                )
            except ValueError:
                detail = None
            if r.status_code >= 500:
                tally.add("server", "traceback", f"{what}: {r.status_code} {r.text[:200]}")
            elif expected == 200:
                if r.status_code != 200:
                    tally.add("server", "silent", f"{what}: {r.status_code} {r.text[:200]}")
                elif check == "score":
                    prompt = body.get("prompt") if "prompt" in body else tuple(body["messages"])
                    want = rm.score([(prompt, x) for x in body["responses"]])
                    got = r.json()["rewards"]
                    same = len(got) == len(want) and all(abs(a - b) < 1e-4 for a, b in zip(got, want))
                    tally.add("server", "ok" if same and r.json()["normalized"] is False else "silent", what)
                else:
                    tally.add("server", "ok", what)
            elif r.status_code == expected or (expected == "4xx" and 400 <= r.status_code < 500):
                good = isinstance(detail, str) and detail or r.status_code in (404, 405)
                tally.add("server", "refused" if good else "silent", f"{what}: {r.status_code} {r.text[:100]}")
            else:
                tally.add("server", "silent", f"{what}: expected {expected}, got {r.status_code} {r.text[:120]}")


def table(tally: Tally) -> str:
    lines = [
        "| class | cases | tracebacks | silent wrong | refusals (clean errors) | correct answers |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    total = {"cases": 0, "tracebacks": 0, "silent wrong": 0, "refusals": 0, "correct": 0}
    for cls, row in tally.rows.items():
        lines.append(
            f"| {cls} | {row['cases']} | {row['tracebacks']} | {row['silent wrong']} | {row['refusals']} | "
            f"{row['correct']} |"
        )
        for k in total:
            total[k] += row[k]
    lines.append(
        f"| **all** | {total['cases']} | {total['tracebacks']} | {total['silent wrong']} | "
        f"{total['refusals']} | {total['correct']} |"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default="", help="also write the tally and the notes here")
    ap.add_argument("--only", nargs="*", default=["readers", "settings", "server"])
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tally = Tally()
    for name, run in (("readers", run_readers), ("settings", run_settings), ("server", run_server)):
        if name in args.only:
            run(tally)
    print(table(tally))
    for note in tally.notes:
        print(note)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": tally.rows, "notes": tally.notes}, indent=2) + "\n")
    bad = sum(r["tracebacks"] + r["silent wrong"] for r in tally.rows.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
