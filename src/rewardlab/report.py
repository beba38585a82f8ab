"""Write an evaluation report: ``report.json`` (everything) and ``report.md`` (tables for people).

``results`` maps a column name (e.g. ``"untrained"``, ``"trained"``) to a dict from
:func:`rewardlab.metrics.evaluate_scores`. Both files are written atomically: to a temporary file in
the same directory, then ``os.replace``, so a reader never sees half a report.
"""
from __future__ import annotations

import json
import math
import os
import shlex
import uuid
from pathlib import Path
from typing import Any, Callable

__all__ = ["write_report", "render_markdown", "fmt"]

MISSING = "—"
NO_SOURCE = "(no source)"


def fmt(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals (ints and bools as they are); ``None``/NaN as "—"."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else MISSING
    return str(value)


def _cell(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[Any]], numeric: bool = True) -> list[str]:
    """A GFM table; the first column is left-aligned, the others right-aligned when ``numeric``."""
    rule = [":---" if i == 0 or not numeric else "---:" for i in range(len(header))]
    return [_row(header), "| " + " | ".join(rule) + " |", *(_row(r) for r in rows)]


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _with_ci(value: Any, ci: Any) -> str:
    text = fmt(value)
    if text != MISSING and isinstance(ci, (list, tuple)) and len(ci) == 2:
        text += f" [{fmt(ci[0])}, {fmt(ci[1])}]"
    return text


def _ties(result: dict) -> str:
    ties = _get(result, "ties")
    rate = _get(result, "tie_rate")
    if ties is None:
        return MISSING
    return f"{fmt(ties)} ({fmt(rate)})" if rate is not None else fmt(ties)


# (row label, how to read it from one evaluate_scores dict)
HEADLINE_ROWS: list[tuple[str, Callable[[dict], str]]] = [
    ("records", lambda r: fmt(_get(r, "n_records"))),
    ("pairs", lambda r: fmt(_get(r, "n_pairs"))),
    ("accuracy [95% CI]", lambda r: _with_ci(_get(r, "accuracy"), _get(r, "accuracy_ci95"))),
    ("ties (rate)", _ties),
    ("mean margin", lambda r: fmt(_get(r, "mean_margin"))),
    ("log-loss", lambda r: fmt(_get(r, "calibration", "log_loss"))),
    ("Brier", lambda r: fmt(_get(r, "calibration", "brier"))),
    ("ECE", lambda r: fmt(_get(r, "calibration", "ece"))),
    ("reward–length Pearson", lambda r: fmt(_get(r, "length_correlation", "pearson"))),
    ("reward–length Spearman", lambda r: fmt(_get(r, "length_correlation", "spearman"))),
]


def _per_source_rows(results: dict[str, dict]) -> list[list[str]]:
    sources: dict[str, None] = {}
    for result in results.values():
        for name in (_get(result, "per_source") or {}):
            sources.setdefault(name, None)
    rows = []
    for name in sources:
        row = [name if name else NO_SOURCE]
        for result in results.values():
            entry = _get(result, "per_source", name)
            if not isinstance(entry, dict):
                row.append(MISSING)
                continue
            text = _with_ci(entry.get("accuracy"), entry.get("ci95"))
            if entry.get("n") is not None:
                text += f" (n={fmt(entry.get('n'))})"
            row.append(text)
        rows.append(row)
    return rows


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _provenance_lines(prov: dict) -> list[str]:
    lines = ["## Provenance", ""]
    command = prov.get("command")
    if isinstance(command, (list, tuple)):
        command = shlex.join(str(c) for c in command)
    git = prov.get("git")
    if isinstance(git, dict) and git.get("commit"):
        git_text = _code(str(git["commit"]))
        if git.get("dirty"):
            git_text += " (dirty: uncommitted changes)"
    else:
        git_text = MISSING
    fingerprint = prov.get("data_fingerprint")
    lines += [
        f"- Command: {_code(command) if command else MISSING}",
        f"- Time (UTC): {prov.get('timestamp_utc') or MISSING}",
        f"- Git commit: {git_text}",
        f"- Data fingerprint: {_code(str(fingerprint)) if fingerprint else MISSING}",
        f"- Platform: {prov.get('platform') or MISSING}",
        "",
    ]
    versions = prov.get("versions") or {}
    if versions:
        lines += _table(["package", "version"], [[k, fmt(v)] for k, v in versions.items()], numeric=False)
        lines.append("")
    tok = prov.get("tokenizer")
    if isinstance(tok, dict):
        name = f" {_code(str(tok['name_or_path']))}" if tok.get("name_or_path") else ""
        sha = tok.get("chat_template_sha256")
        lines.append(f"Tokenizer: {tok.get('class') or MISSING}{name}; chat template sha256: "
                     f"{_code(str(sha)) if sha else MISSING}")
        lines.append("")
        special = tok.get("special_tokens") or {}
        token = lambda v: MISSING if _get(v, "token") is None else _code(str(_get(v, "token")))
        lines += _table(["special token", "text", "id"],
                        [[k, token(v), fmt(_get(v, "id"))] for k, v in special.items()], numeric=False)
        lines.append("")
    return lines


def render_markdown(results: dict[str, dict], title: str, provenance: dict, notes: list[str] | None = None) -> str:
    """The Markdown text :func:`write_report` writes to ``report.md``."""
    columns = list(results)
    lines = [f"# {title}", "", "## Summary", ""]
    lines += _table(["metric", *columns], [[label, *(get(results[c]) for c in columns)] for label, get in HEADLINE_ROWS])
    lines += ["", "Accuracy is strict (a tie is not a win); intervals are bootstrap 95% over records.", ""]
    source_rows = _per_source_rows(results)
    if source_rows:
        lines += ["## Per-source accuracy", ""]
        lines += _table(["source", *columns], source_rows)
        lines.append("")
    if notes:
        lines += ["## Notes", ""]
        lines += [f"- {note}" for note in notes]
        lines.append("")
    lines += _provenance_lines(provenance or {})
    return "\n".join(lines).rstrip("\n") + "\n"


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf → None, tuples → lists, numpy scalars → Python, unknown → str."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return _clean(value.item())
        except Exception:
            pass
    if hasattr(value, "tolist") and callable(value.tolist):
        try:
            return _clean(value.tolist())
        except Exception:
            pass
    return str(value)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_report(out_dir: str | os.PathLike, results: dict[str, dict], title: str, provenance: dict,
                 notes: list[str] | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/report.json`` and ``out_dir/report.md``; return ``(json_path, md_path)``.

    ``report.json`` holds ``{"title", "results", "notes", "provenance"}`` (NaN → null). ``report.md``
    has the title, a headline table (one column per result: records, pairs, accuracy with 95% CI,
    ties, mean margin, log-loss, Brier, ECE, reward–length Pearson and Spearman), a per-source accuracy
    table (rows = sources, columns = results), the notes and a provenance section. Numbers have 4
    decimals; a missing value is "—". ``out_dir`` is created if needed; each file is replaced atomically.
    """
    if not results:
        raise ValueError("write_report needs at least one result column")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = _clean({"title": title, "results": results, "notes": list(notes or []), "provenance": provenance})
    json_path, md_path = out / "report.json", out / "report.md"
    _atomic_write(json_path, json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    _atomic_write(md_path, render_markdown(payload["results"], str(title), payload["provenance"] or {},
                                           payload["notes"]))
    return json_path, md_path
