"""Checks on plots: the saved image is a real, non-blank picture, and the figure the notebook
drew shows the required curves (one point per epoch, matching the history) with a title,
axis labels and a legend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from autograder.checks.artifacts import CheckFailed

MIN_WIDTH, MIN_HEIGHT = 200, 150
MIN_INK = 0.005  # share of pixels that differ from the background


def check_plot_image(path: Path) -> None:
    """Fail unless ``path`` decodes as a PNG of sensible size with something drawn on it."""
    from matplotlib import image

    try:
        pixels = np.asarray(image.imread(path, format="png"), dtype="float32")
    except Exception as err:
        raise CheckFailed(f"`{path.name}` cannot be read as a PNG image: {err}") from err
    height, width = pixels.shape[:2]
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise CheckFailed(f"`{path.name}` is only {width}x{height} pixels")
    flat = pixels.reshape(height * width, -1)
    background = np.median(flat, axis=0)
    ink = float(np.mean(np.any(np.abs(flat - background) > 0.05, axis=1)))
    if ink < MIN_INK:
        raise CheckFailed(f"`{path.name}` is blank: nothing is drawn on it")


def _matches(line: dict[str, Any], values: list[float]) -> bool:
    y = line["y"]
    return len(y) == len(values) and bool(np.allclose(y, values, rtol=1e-4, atol=1e-7))


def find_curves(
    figures: list[dict[str, Any]],
    history: dict[str, list[float]],
    metrics: tuple[str, ...],
    *,
    what: str,
) -> None:
    """Fail unless one figure's axes plot every ``metrics`` series of ``history`` point by
    point, with a title, both axis labels and a legend."""
    missing = [m for m in metrics if not history.get(m)]
    if missing:
        raise CheckFailed(f"{what}: the history has no {', '.join(missing)} to plot")
    best: tuple[int, str] = (0, f"{what}: no figure plots {' and '.join(metrics)} per epoch")
    for figure in figures:
        for axes in figure["axes"]:
            found = [
                m for m in metrics if any(_matches(line, history[m]) for line in axes["lines"])
            ]
            if len(found) < len(metrics):
                if found and len(found) > best[0]:
                    lacking = [m for m in metrics if m not in found]
                    best = (len(found), f"{what}: the figure lacks the {', '.join(lacking)} curve")
                continue
            problems = []
            if not (axes["title"] or figure["suptitle"]).strip():
                problems.append("a title")
            if not axes["xlabel"].strip():
                problems.append("an x-axis label")
            if not axes["ylabel"].strip():
                problems.append("a y-axis label")
            if len([t for t in axes["legend"] if t.strip()]) < len(metrics):
                problems.append("a legend naming each curve")
            if not problems:
                return
            best = (len(metrics), f"{what}: the figure needs {', '.join(problems)}")
    raise CheckFailed(best[1])
