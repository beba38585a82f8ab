"""Where a result came from: command, time, platform, library versions, git commit, config, data, tokenizer.

:func:`provenance` never raises for a missing library, a missing ``git`` or a package that is not in
a git checkout: the part it cannot find is ``None``. The platform string never names the host.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rewardlab.core.atomic import json_safe

__all__ = ["provenance", "library_versions", "git_info", "tokenizer_info"]

# module name -> distribution name
_LIBRARIES = {
    "torch": "torch",
    "transformers": "transformers",
    "accelerate": "accelerate",
    "datasets": "datasets",
    "numpy": "numpy",
    "rewardlab": "rewardlab",
}
_SPECIAL_TOKENS = ("bos", "eos", "pad", "unk")
_GIT_TIMEOUT_S = 10


def _version(module: str, distribution: str) -> str | None:
    """The version of ``module``: the loaded module's ``__version__`` if it is imported already,
    else the installed distribution's metadata, else import it. ``None`` when absent."""
    loaded = sys.modules.get(module)
    if loaded is not None and getattr(loaded, "__version__", None):
        return str(loaded.__version__)
    try:
        return importlib.metadata.version(distribution)
    except Exception:
        pass
    try:
        return str(importlib.import_module(module).__version__)
    except Exception:
        return None


def library_versions() -> dict[str, str | None]:
    """``{"python": ..., "torch": ..., "transformers": ..., ...}``; a missing library is ``None``."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for module, distribution in _LIBRARIES.items():
        versions[module] = _version(module, distribution)
    return versions


def _package_dir() -> Path:
    return Path(__file__).resolve().parents[1]  # the rewardlab package (this module is in core/)


def _git(args: list[str], cwd: Path) -> str | None:
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=str(cwd),
            env=env,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout


def git_info(path: str | os.PathLike | None = None) -> dict | None:
    """``{"commit": sha, "dirty": bool}`` for the git checkout holding ``path`` (default: the rewardlab
    package's directory), or ``None`` when there is no such checkout, ``git`` is missing or fails.

    A package installed into a virtual environment inside some *other* repository is not that
    repository's code: ``path`` must be tracked there (``git ls-files``), or the answer is ``None``.
    ``dirty`` is whether ``git status --porcelain`` lists anything (untracked files included); it is
    run without optional locks so it never writes the index of a repository someone is working in.
    Never raises.
    """
    try:
        where = Path(path).resolve() if path is not None else _package_dir()
        if where.is_file():
            where = where.parent
        if not where.is_dir():
            return None
        commit = _git(["rev-parse", "--verify", "HEAD"], where)
        if not commit or not commit.strip():
            return None
        tracked = _git(["ls-files", "--", "."], where)
        if not tracked or not tracked.strip():
            return None
        status = _git(["status", "--porcelain"], where)
        return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}
    except Exception:
        return None


def _token_text(token: Any) -> str | None:
    if token is None:
        return None
    content = getattr(token, "content", None)  # tokenizers.AddedToken
    return str(content if isinstance(content, str) else token)


def tokenizer_info(tokenizer: Any) -> dict:
    """Special tokens (``bos``/``eos``/``pad``/``unk``, each ``{"token", "id"}``), the chat template's
    sha256 (``None`` without a template), the tokenizer class and ``name_or_path``. Never raises."""
    special = {}
    for name in _SPECIAL_TOKENS:
        try:
            token = _token_text(getattr(tokenizer, f"{name}_token", None))
        except Exception:
            token = None
        try:
            token_id = getattr(tokenizer, f"{name}_token_id", None)
            token_id = int(token_id) if token_id is not None else None
        except Exception:
            token_id = None
        special[name] = {"token": token, "id": token_id}
    try:
        template = getattr(tokenizer, "chat_template", None)
        if template is None:
            template_sha = None
        else:
            text = template if isinstance(template, str) else json.dumps(template, sort_keys=True, default=str)
            template_sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    except Exception:
        template_sha = None
    try:
        name_or_path = getattr(tokenizer, "name_or_path", None)
        name_or_path = str(name_or_path) if name_or_path is not None else None
    except Exception:
        name_or_path = None
    return {
        "class": type(tokenizer).__name__,
        "name_or_path": name_or_path,
        "special_tokens": special,
        "chat_template_sha256": template_sha,
    }


_jsonable = json_safe


def provenance(config: dict | None = None, data_fingerprint: str | None = None, tokenizer: Any = None) -> dict:
    """Everything needed to say where a result came from, as a JSON-serialisable dict::

        command        sys.argv
        timestamp_utc  ISO 8601, seconds, UTC
        platform       platform.platform() plus the Python implementation (no host name)
        versions       python, torch, transformers, accelerate, datasets, numpy, rewardlab (None if missing)
        git            {"commit", "dirty"} of the rewardlab source checkout, or None (:func:`git_info`)
        config         the config dict (JSON-safe copy), or None
        data_fingerprint
        tokenizer      :func:`tokenizer_info` when a tokenizer is given, else None

    Never raises for a missing library or git.
    """
    try:
        plat = f"{platform.platform()} ({platform.python_implementation()})"
    except Exception:
        plat = None
    return {
        "command": [str(a) for a in sys.argv],
        "timestamp_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": plat,
        "versions": library_versions(),
        "git": git_info(),
        "config": _jsonable(config) if config is not None else None,
        "data_fingerprint": data_fingerprint,
        "tokenizer": tokenizer_info(tokenizer) if tokenizer is not None else None,
    }
