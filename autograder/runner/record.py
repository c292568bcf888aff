"""The run record (``run.json``): its JSON schema, and writing it atomically.

``status`` is one of :data:`RUN_STATUSES`:

- ``ok``: every cell ran and the harvest validated;
- ``cell-error``: at least one cell raised (``failed_cell`` is the first, ``errors`` has all);
- ``timeout``: a cell ran past the per-cell limit, or the notebook past its wall time;
- ``memory-limit``, ``process-limit``, ``disk-limit``, ``output-limit``: a resource limit was hit;
- ``killed``: the kernel died for another reason (it exited, or was killed from inside);
- ``harvest-failed``: the notebook ran but what it left could not be harvested as valid data;
- ``invalid-notebook``: the submission is not a runnable notebook.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from autograder.errors import AutograderError

RUN_STATUSES = (
    "ok",
    "cell-error",
    "timeout",
    "memory-limit",
    "process-limit",
    "disk-limit",
    "output-limit",
    "killed",
    "harvest-failed",
    "invalid-notebook",
)

_NULLABLE_STR = {"type": ["string", "null"]}
RUN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "autograder run record",
    "type": "object",
    "required": [
        "schema",
        "assignment",
        "notebook",
        "notebook_sha256",
        "status",
        "message",
        "failed_cell",
        "errors",
        "wall_s",
        "peak_memory_mb",
        "device",
        "sandbox",
        "limits",
        "versions",
        "seed",
        "restore",
        "cells",
        "artifacts",
        "leftover_processes",
        "started",
        "finished",
    ],
    "properties": {
        "schema": {"const": "autograder.run/1"},
        "assignment": {"type": "string"},
        "notebook": {"type": "string"},
        "notebook_sha256": {"type": "string"},
        "status": {"enum": list(RUN_STATUSES)},
        "message": {"type": "string"},
        "failed_cell": {"type": ["object", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "grade_id", "ename", "evalue", "traceback"],
                "properties": {"index": {"type": "integer"}, "grade_id": _NULLABLE_STR},
            },
        },
        "wall_s": {"type": "number", "minimum": 0},
        "peak_memory_mb": {"type": "number", "minimum": 0},
        "device": {
            "type": "object",
            "required": ["kind", "name"],
            "properties": {"kind": {"enum": ["cpu", "gpu"]}, "name": {"type": "string"}},
        },
        "sandbox": {"type": "object", "required": ["kind", "limits"]},
        "limits": {"type": "object"},
        "versions": {"type": "object", "additionalProperties": {"type": "string"}},
        "seed": {"type": ["integer", "null"]},
        "restore": {"type": ["object", "null"]},
        "cells": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "status", "duration_s"],
            },
        },
        "artifacts": {
            "type": "object",
            "required": ["models", "histories", "figures", "files"],
        },
        "leftover_processes": {"type": "integer", "minimum": 0},
        "started": {"type": "string"},
        "finished": {"type": "string"},
    },
}


RUN_VALIDATOR = jsonschema.Draft202012Validator(RUN_SCHEMA)
"""Compiled once: ``jsonschema.validate`` would check the schema itself on every call."""


def write_record(record: dict[str, Any], path: Path) -> None:
    """Validate ``record`` against :data:`RUN_SCHEMA` and write it atomically to ``path``."""
    try:
        RUN_VALIDATOR.validate(record)
    except jsonschema.ValidationError as err:
        raise AutograderError(f"{path}: run record does not validate: {err.message}") from err
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", "utf-8")
    tmp.replace(path)


def read_record(path: Path) -> dict[str, Any]:
    """Read and validate a run record."""
    try:
        record: dict[str, Any] = json.loads(path.read_text("utf-8"))
        RUN_VALIDATOR.validate(record)
    except (OSError, ValueError, jsonschema.ValidationError) as err:
        raise AutograderError(f"{path}: not a valid run record: {err}") from err
    return record
