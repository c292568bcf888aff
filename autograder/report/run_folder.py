"""What the feedback report takes from a submission's run folder (``run/``): the run record's
errors and peak memory, and the plots the notebook drew or saved.

Everything in the run folder was written by (or copied out of) the student's sandbox, so it
is read as data only: paths are checked to stay inside ``run/artifacts/``, images must start
with the PNG signature, and a figure's JSON metadata only lends its titles to a caption.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from autograder.runner.record import read_record

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS_FOLDER = "plots"


@dataclass(frozen=True)
class RunError:
    """One cell that raised while the notebook ran, with the student's own traceback."""

    index: int
    grade_id: str | None
    test_cell: bool
    ename: str
    evalue: str
    traceback: str


@dataclass(frozen=True)
class Plot:
    """A plot copied next to the report: ``src`` is relative to the report's folder."""

    kind: str  # "figure" (drawn in the notebook) | "saved" (a PNG file the notebook saved)
    src: str
    caption: str


@dataclass(frozen=True)
class RunFolder:
    """The parts of ``run.json`` a report shows beyond what ``result.json`` already holds."""

    found: bool
    peak_memory_mb: float | None
    errors: tuple[RunError, ...]
    record: dict[str, Any]


def read_run_folder(run_dir: Path) -> RunFolder:
    """Read ``run_dir/run.json``; a missing record gives an empty :class:`RunFolder`, a damaged
    one raises :class:`~autograder.errors.AutograderError` naming the file."""
    path = run_dir / "run.json"
    if not path.is_file():
        return RunFolder(found=False, peak_memory_mb=None, errors=(), record={})
    record = read_record(path)
    errors = tuple(
        RunError(
            index=int(e["index"]),
            grade_id=e["grade_id"] if isinstance(e.get("grade_id"), str) else None,
            test_cell=bool(e.get("test_cell", False)),
            ename=str(e["ename"]),
            evalue=str(e["evalue"]),
            traceback=str(e["traceback"]),
        )
        for e in record["errors"]
    )
    return RunFolder(
        found=True, peak_memory_mb=float(record["peak_memory_mb"]), errors=errors, record=record
    )


def safe_relative(value: object) -> PurePosixPath | None:
    """``value`` as a relative POSIX path that cannot leave its folder, else ``None``."""
    if not isinstance(value, str) or not value or "\\" in value or "\x00" in value:
        return None
    path = PurePosixPath(value)
    if path.is_absolute() or any(part in ("", ".", "..") for part in path.parts):
        return None
    return path


def _png_inside(base: Path, relative: PurePosixPath) -> Path | None:
    """``base/relative`` when it is a PNG file that really lies inside ``base``."""
    candidate = base.joinpath(*relative.parts)
    try:
        resolved = candidate.resolve(strict=True)
        if not resolved.is_relative_to(base.resolve(strict=True)) or not resolved.is_file():
            return None
        with resolved.open("rb") as handle:
            if handle.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
                return None
    except OSError:
        return None
    return resolved


def _figure_caption(artifacts: Path, entry: dict[str, Any], number: int) -> str:
    fallback = f"Рисунок {number}"
    meta_path = safe_relative(entry.get("meta"))
    if meta_path is None:
        return fallback
    try:
        meta = json.loads(artifacts.joinpath(*meta_path.parts).read_text("utf-8"))
    except (OSError, ValueError):
        return fallback
    if not isinstance(meta, dict):
        return fallback
    titles = [meta.get("suptitle")]
    axes = meta.get("axes")
    if isinstance(axes, list):
        titles += [a.get("title") for a in axes if isinstance(a, dict)]
    text = " · ".join(t for t in titles if isinstance(t, str) and t.strip())
    return f"{fallback}: {text}" if text else fallback


def copy_plots(run: RunFolder, run_dir: Path, out_dir: Path) -> tuple[Plot, ...]:
    """Copy the notebook's figures and saved PNG files to ``out_dir/plots/`` (replacing what a
    previous report left there) and describe them for the report, in the run record's order."""
    target = out_dir / PLOTS_FOLDER
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    if not run.found:
        return ()
    artifacts = run_dir / "artifacts"
    listed = run.record.get("artifacts", {})
    plots: list[Plot] = []
    figures = listed.get("figures", []) if isinstance(listed, dict) else []
    for number, entry in enumerate(figures, start=1):
        if not isinstance(entry, dict):
            continue
        relative = safe_relative(entry.get("file"))
        source = _png_inside(artifacts, relative) if relative else None
        if source is None:
            continue
        dest = PurePosixPath(PLOTS_FOLDER, "figures", f"figure-{number}.png")
        _copy(source, out_dir, dest)
        plots.append(Plot("figure", str(dest), _figure_caption(artifacts, entry, number)))
    files = listed.get("files", []) if isinstance(listed, dict) else []
    for entry in files:
        if not isinstance(entry, dict):
            continue
        relative = safe_relative(entry.get("path"))
        source = _png_inside(artifacts / "files", relative) if relative else None
        if relative is None or source is None:
            continue
        dest = PurePosixPath(PLOTS_FOLDER, "saved", *relative.parts)
        _copy(source, out_dir, dest)
        plots.append(Plot("saved", str(dest), str(relative)))
    return tuple(plots)


def _copy(source: Path, out_dir: Path, dest: PurePosixPath) -> None:
    path = out_dir.joinpath(*dest.parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, path)
