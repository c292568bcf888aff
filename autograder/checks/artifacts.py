"""What a check sees of one submission: its run record and harvested artifacts, loaded in
the trusted grader process. Keras models are loaded with ``safe_mode=True``; histories and
figure metadata are JSON; nothing is unpickled or imported from the submission.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from autograder.runner.record import read_record


class CheckFailed(AssertionError):
    """A check's verdict against the student, with a message they can act on and optional
    structured details for the feedback report (e.g. two layer tables)."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class MissingArtifact(CheckFailed):
    """The notebook did not leave what the check needs (a model, a history, a file)."""


class Submission:
    """One run folder (``run.json`` + ``artifacts/``) as the checks see it."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self._models: dict[str, Any] = {}

    @cached_property
    def record(self) -> dict[str, Any]:
        return read_record(self.dir / "run.json")

    @property
    def artifacts(self) -> Path:
        return self.dir / "artifacts"

    def _entry(self, kind: str, name: str) -> dict[str, Any]:
        for entry in self.record["artifacts"][kind]:
            if entry["key"] == name:
                return dict(entry)
        what = {"models": "Keras model", "histories": "training history (the result of fit)"}
        status = self.record["status"]
        hint = "" if status == "ok" else f" (the notebook's run ended with {status})"
        raise MissingArtifact(
            f"no {what[kind]} named `{name}` was found at the end of your notebook{hint}"
        )

    def model(self, name: str) -> Any:
        """The model bound to ``name`` at the end of the notebook, loaded safely."""
        if name not in self._models:
            import keras

            entry = self._entry("models", name)
            self._models[name] = keras.saving.load_model(
                self.dir / "artifacts" / entry["file"], safe_mode=True, compile=False
            )
        return self._models[name]

    def summary(self, name: str) -> str:
        """The text of ``model.summary()`` as the student's kernel printed it."""
        entry = self._entry("models", name)
        return str((self.artifacts / entry["summary_file"]).read_text("utf-8"))

    def history(self, name: str) -> dict[str, list[float]]:
        """``History.history`` of the ``fit`` result bound to ``name``."""
        entry = self._entry("histories", name)
        data = json.loads((self.artifacts / entry["file"]).read_text("utf-8"))
        history: dict[str, list[float]] = data["history"]
        return history

    def figures(self) -> list[dict[str, Any]]:
        """Metadata of every figure the notebook drew (title, labels, legend, line data)."""
        found = []
        for entry in self.record["artifacts"]["figures"]:
            meta = json.loads((self.artifacts / entry["meta"]).read_text("utf-8"))
            meta["png"] = str(self.artifacts / entry["file"])
            found.append(meta)
        return found

    def saved_file(self, name: str) -> Path:
        """A file the student's notebook saved in its work folder."""
        for entry in self.record["artifacts"]["files"]:
            if entry["path"] == name:
                return self.artifacts / "files" / name
        for entry in self.record["artifacts"].get("skipped_files", []):
            if entry["path"] == name:
                raise MissingArtifact(f"`{name}` was saved but not kept: {entry['reason']}")
        raise MissingArtifact(f"the notebook did not save the file `{name}`")
