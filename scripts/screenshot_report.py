#!/usr/bin/env python
"""Render a rewardlab ``report.html`` in headless Chromium, save a PNG screenshot and check it is not blank.

    python scripts/screenshot_report.py runs/eval/report.html docs/report-screenshot.png
    python scripts/screenshot_report.py REPORT.html OUT.png --width 1200 --height 2400 --chromium /usr/bin/chromium

Chromium (Debian: ``apt-get install chromium``) runs with a fresh profile directory, no network services
and no sandbox (``--no-sandbox`` is needed when running as root in a container). The page is
self-contained, so nothing is fetched. Exit status: 0 ok, 1 the screenshot is missing or blank,
2 no Chromium found.

:func:`screenshot` and :func:`is_blank` are importable (the test suite uses them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--disable-dev-shm-usage",
    "--force-device-scale-factor=1",
)


def find_chromium(explicit: str | None = None) -> str | None:
    """The Chromium executable: ``explicit``, ``$CHROMIUM``, or the first of :data:`CANDIDATES` on PATH."""
    for name in (explicit, os.environ.get("CHROMIUM"), *CANDIDATES):
        if name:
            path = shutil.which(name) or (name if os.path.isfile(name) and os.access(name, os.X_OK) else None)
            if path:
                return path
    return None


def screenshot(
    html_path: str | os.PathLike,
    png_path: str | os.PathLike,
    width: int = 1200,
    height: int = 2400,
    chromium: str | None = None,
    timeout: float = 120.0,
) -> Path:
    """Render ``html_path`` at ``width``×``height`` and write ``png_path``. Raises ``FileNotFoundError``
    without Chromium and ``RuntimeError`` when Chromium fails or writes nothing."""
    exe = find_chromium(chromium)
    if exe is None:
        raise FileNotFoundError(f"no Chromium found (tried {', '.join(CANDIDATES)}; set $CHROMIUM)")
    html_path, png_path = Path(html_path).resolve(), Path(png_path).resolve()
    if not html_path.is_file():
        raise FileNotFoundError(html_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    if png_path.exists():
        png_path.unlink()
    with tempfile.TemporaryDirectory(prefix="rewardlab-chromium-") as profile:
        cmd = [
            exe,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png_path}",
            f"--window-size={width},{height}",
            html_path.as_uri(),
        ]
        env = dict(os.environ, HOME=profile)  # keep Chromium's caches out of the user's home
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"Chromium did not finish within {timeout:.0f} s") from e
    if not png_path.is_file() or png_path.stat().st_size == 0:
        raise RuntimeError(f"Chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}")
    return png_path


def image_stats(png_path: str | os.PathLike) -> dict:
    """``{width, height, distinct_colors, std, non_white_fraction}`` of a PNG (read with Pillow)."""
    import numpy as np
    from PIL import Image

    with Image.open(png_path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    flat = rgb.reshape(-1, 3)
    packed = (flat[:, 0].astype(np.uint32) << 16) | (flat[:, 1].astype(np.uint32) << 8) | flat[:, 2]
    non_white = np.any(flat < 245, axis=1)
    return {
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "distinct_colors": int(np.unique(packed).size),
        "std": float(rgb.std()),
        "non_white_fraction": float(non_white.mean()),
    }


def is_blank(png_path: str | os.PathLike, min_colors: int = 64, min_non_white: float = 0.02) -> bool:
    """True when the image is (nearly) one colour: fewer than ``min_colors`` distinct colours or less
    than ``min_non_white`` of its pixels darker than near-white. A page with plots has thousands of
    colours (anti-aliased lines, histogram fills)."""
    stats = image_stats(png_path)
    return stats["distinct_colors"] < min_colors or stats["non_white_fraction"] < min_non_white


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", help="the report.html to render")
    parser.add_argument("png", help="where to write the screenshot")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=2400)
    parser.add_argument("--chromium", help="Chromium executable (default: $CHROMIUM or the first found on PATH)")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    try:
        path = screenshot(args.html, args.png, args.width, args.height, args.chromium, args.timeout)
    except FileNotFoundError as e:
        print(f"screenshot_report: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"screenshot_report: {e}", file=sys.stderr)
        return 1
    stats = image_stats(path)
    blank = is_blank(path)
    print(
        f"{path}: {stats['width']}x{stats['height']}, {stats['distinct_colors']} colours, "
        f"{stats['non_white_fraction']:.1%} non-white{' — BLANK' if blank else ''}"
    )
    return 1 if blank else 0


if __name__ == "__main__":
    sys.exit(main())
