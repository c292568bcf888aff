"""Host side of the harvest: validate what the kernel wrote and copy it out as data.

Nothing here imports or unpickles anything the kernel produced. The manifest is JSON checked
against a schema; every referenced file must sit where the schema says, carry the right
signature (PNG, ``.keras`` zip) and stay within size limits. The files the student saved in
the work dir are copied out too, regular files only, within limits.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema

from autograder.errors import AutograderError

MAX_MANIFEST = 8 * 1024 * 1024
MAX_MODEL = 256 * 1024 * 1024
MAX_HISTORY = 4 * 1024 * 1024
MAX_FIGURE = 8 * 1024 * 1024
MAX_STUDENT_FILE = 20 * 1024 * 1024
MAX_STUDENT_TOTAL = 100 * 1024 * 1024
MAX_STUDENT_FILES = 200
MAX_SKIPPED_LISTED = 100
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
KEY = r"^[A-Za-z0-9_@.~-]{1,110}$"


class HarvestError(AutograderError):
    """The kernel's harvest is missing or does not validate."""


_ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["key", "names", "cell", "file"],
    "properties": {
        "key": {"type": "string", "pattern": KEY},
        "names": {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 100},
        "cell": {"type": "integer", "minimum": 0},
        "file": {"type": "string"},
    },
}
_LINE = {
    "type": "object",
    "required": ["label", "x", "y"],
    "properties": {
        "label": {"type": "string"},
        "x": {"type": "array", "items": {"type": "number"}},
        "y": {"type": "array", "items": {"type": "number"}},
    },
}
_AXES = {
    "type": "object",
    "required": ["title", "xlabel", "ylabel", "legend", "lines"],
    "properties": {
        "title": {"type": "string"},
        "xlabel": {"type": "string"},
        "ylabel": {"type": "string"},
        "legend": {"type": "array", "items": {"type": "string"}},
        "lines": {"type": "array", "items": _LINE, "maxItems": 200},
    },
}
MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["models", "histories", "figures", "errors", "gpus"],
    "properties": {
        "models": {
            "type": "array",
            "maxItems": 100,
            "items": {
                **_ENTRY,
                "required": [*_ENTRY["required"], "summary"],
                "properties": {**_ENTRY["properties"], "summary": {"type": "string"}},
            },
        },
        "histories": {"type": "array", "maxItems": 100, "items": _ENTRY},
        "figures": {
            "type": "array",
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["key", "file", "cell", "suptitle", "axes"],
                "properties": {
                    "key": {"type": "string", "pattern": r"^figure-[0-9]{1,3}$"},
                    "file": {"type": "string"},
                    "cell": {"type": "integer"},
                    "suptitle": {"type": "string"},
                    "axes": {"type": "array", "items": _AXES, "maxItems": 50},
                },
            },
        },
        "errors": {"type": "array", "items": {"type": "string"}},
        "gpus": {"type": "array", "items": {"type": "string"}},
    },
}
HISTORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["history", "epoch", "params"],
    "properties": {
        "history": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "number"}},
        },
        "epoch": {"type": "array", "items": {"type": "integer"}},
        "params": {"type": "object"},
    },
}


MANIFEST_VALIDATOR = jsonschema.Draft202012Validator(MANIFEST_SCHEMA)
HISTORY_VALIDATOR = jsonschema.Draft202012Validator(HISTORY_SCHEMA)


def _regular(path: Path, limit: int, what: str, root: Path) -> None:
    if path.is_symlink() or not path.is_file():
        raise HarvestError(f"{what}: {path.name} is missing or not a regular file")
    # a folder on the way may be a link the kernel planted (histories -> a host folder)
    if path.resolve() != root.resolve() / path.relative_to(root):
        raise HarvestError(f"{what}: {path.name} is reached through a symbolic link")
    size = path.stat().st_size
    if size > limit:
        raise HarvestError(f"{what}: {path.name} is {size} bytes, over the {limit}-byte limit")


def _starts_with(path: Path, magic: bytes) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(magic)) == magic


def collect_harvest(harvest_dir: Path, out: Path) -> dict[str, Any]:
    """Validate the kernel's harvest in ``harvest_dir`` and copy it into ``out``.

    Returns the artifact index recorded in ``run.json``; raises :class:`HarvestError`.
    """
    manifest_path = harvest_dir / "manifest.json"
    _regular(manifest_path, MAX_MANIFEST, "harvest manifest", harvest_dir)
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
        MANIFEST_VALIDATOR.validate(manifest)
    except (ValueError, jsonschema.ValidationError) as err:
        message = getattr(err, "message", str(err))
        raise HarvestError(f"harvest manifest does not validate: {message}") from err

    for sub in ("models", "histories", "figures"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {
        "models": [],
        "histories": [],
        "figures": [],
        "errors": list(manifest["errors"]),
        "gpus": manifest["gpus"],
    }
    for model in manifest["models"]:
        key = model["key"]
        src = _entry_file(harvest_dir, model, "model", "models", ".keras", MAX_MODEL)
        if not _starts_with(src, ZIP_MAGIC):
            raise HarvestError(f"model {key}: {src.name} is not a .keras archive")
        shutil.copyfile(src, out / model["file"])
        (out / "models" / f"{key}.summary.txt").write_text(model["summary"], "utf-8")
        index["models"].append(
            {k: model[k] for k in ("key", "names", "cell", "file")}
            | {"summary_file": f"models/{key}.summary.txt"}
        )
    for history in manifest["histories"]:
        key = history["key"]
        src = _entry_file(harvest_dir, history, "history", "histories", ".json", MAX_HISTORY)
        try:
            data = json.loads(src.read_text("utf-8"))
            HISTORY_VALIDATOR.validate(data)
        except (ValueError, jsonschema.ValidationError) as err:
            message = getattr(err, "message", str(err))  # not str(err): it quotes the file
            raise HarvestError(f"history {key}: does not validate: {message}") from err
        (out / history["file"]).write_text(json.dumps(data, indent=1), "utf-8")
        index["histories"].append({k: history[k] for k in ("key", "names", "cell", "file")})
    for figure in manifest["figures"]:
        key = figure["key"]
        src = _entry_file(harvest_dir, figure, "figure", "figures", ".png", MAX_FIGURE)
        if not _starts_with(src, PNG_MAGIC):
            raise HarvestError(f"figure {key}: not a PNG file")
        shutil.copyfile(src, out / figure["file"])
        (out / "figures" / f"{key}.json").write_text(
            json.dumps(figure, ensure_ascii=False, indent=1), "utf-8"
        )
        index["figures"].append(
            {
                "key": key,
                "file": figure["file"],
                "meta": f"figures/{key}.json",
                "cell": figure["cell"],
            }
        )
    return index


def _entry_file(
    harvest_dir: Path, entry: dict[str, Any], what: str, folder: str, suffix: str, limit: int
) -> Path:
    """The file a manifest entry names, which must be ``<folder>/<key><suffix>`` and a
    regular file within ``limit`` bytes reached without links."""
    key = entry["key"]
    if entry["file"] != f"{folder}/{key}{suffix}":
        raise HarvestError(f"harvest manifest: {what} {key} points outside {folder}/")
    src: Path = harvest_dir / str(entry["file"])
    _regular(src, limit, f"{what} {key}", harvest_dir)
    return src


def collect_files(workdir: Path, out: Path, *, skip: set[str]) -> dict[str, Any]:
    """Copy the regular files the student saved under ``workdir`` into ``out`` within limits.

    Returns ``{"files": [...], "skipped": [...]}`` with sizes and reasons."""
    files: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    total = 0
    name_ok = re.compile(r"^[^\x00-\x1f]{1,200}$")
    for path in sorted(workdir.rglob("*")):
        rel = path.relative_to(workdir).as_posix()
        if rel in skip or any(part.startswith(".") for part in path.relative_to(workdir).parts):
            continue
        if path.is_symlink():
            skipped.append({"path": rel, "reason": "symbolic link"})
            continue
        if not path.is_file():
            continue
        size = path.stat().st_size
        if not name_ok.match(rel):
            skipped.append({"path": rel[:200], "reason": "unusable file name"})
        elif size > MAX_STUDENT_FILE:
            skipped.append({"path": rel, "reason": f"{size} bytes, over {MAX_STUDENT_FILE}"})
        elif total + size > MAX_STUDENT_TOTAL or len(files) >= MAX_STUDENT_FILES:
            skipped.append({"path": rel, "reason": "over the total size or count limit"})
        else:
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            total += size
            files.append({"path": rel, "bytes": size, "png": _starts_with(path, PNG_MAGIC)})
    if len(skipped) > MAX_SKIPPED_LISTED:  # a work dir of junk must not bloat run.json
        more = len(skipped) - MAX_SKIPPED_LISTED
        skipped = [*skipped[:MAX_SKIPPED_LISTED], {"path": "...", "reason": f"{more} more"}]
    return {"files": files, "skipped": skipped}
