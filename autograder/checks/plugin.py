"""The pytest plugin the grading checks are written with.

Each check is a test function marked with the nbgrader grade cell it scores::

    @pytest.mark.check(cell="test_cnn128_architecture", weight=2, visible=True)
    def test_layers(model):
        ...

and asks for fixtures: ``submission``, ``run_record``, ``model("name")``, ``summary("name")``,
``history("name")``, ``figures``, ``saved_file("name")``, ``mnist_test`` (loaded once per
session), ``fresh_sequences`` (grader-side seed), ``flag`` (raise a concern for a human without
failing) and ``metric`` (report a grader measurement beside the student's claim). A batch
is one pytest session: each check is parametrized over every run folder given with
``--ag-run``.

Verdicts: an :class:`AssertionError` (including :class:`CheckFailed`) fails the check against
the student, with its message; any other exception is a *grader error*, reported as such and
never counted against the student. ``--ag-results FILE`` writes every verdict as JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autograder.checks.artifacts import CheckFailed, Submission
from autograder.checks.data import fresh_sequences as make_sequences
from autograder.checks.data import mnist_test_set
from autograder.checks.scoring import CheckResult

RESULTS_KEY = pytest.StashKey[dict[str, list[CheckResult]]]()
FLAGS_KEY = pytest.StashKey[list[str]]()
METRICS_KEY = pytest.StashKey[list[dict[str, Any]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autograder", "neural-network homework checks")
    group.addoption(
        "--ag-run",
        action="append",
        default=[],
        metavar="DIR",
        help="a run folder (run.json + artifacts/) to check; repeat for a batch",
    )
    group.addoption(
        "--ag-results",
        default=None,
        metavar="FILE",
        help="write every check's verdict per run folder as JSON",
    )
    group.addoption(
        "--ag-visible-only",
        action="store_true",
        help="run only the checks marked visible (student self-check)",
    )
    group.addoption(
        "--ag-data-dir",
        default=None,
        metavar="DIR",
        help="dataset mirror (default: $AUTOGRADER_DATA_DIR or the course's)",
    )
    group.addoption(
        "--ag-cells",
        default=None,
        metavar="FILE",
        help="write which checks score which grade cell as JSON (with --collect-only)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "check(cell, weight=1.0, visible=False): a grading check scoring the nbgrader grade "
        "cell `cell` with `weight`; visible checks may be shown to students",
    )
    config.stash[RESULTS_KEY] = {}


def check_marker(item: pytest.Item) -> dict[str, Any] | None:
    """The ``check`` marker's arguments of ``item`` (``None`` for ordinary tests)."""
    marker = item.get_closest_marker("check")
    if marker is None:
        return None
    kwargs = dict(marker.kwargs)
    if marker.args:
        kwargs.setdefault("cell", marker.args[0])
    if not isinstance(kwargs.get("cell"), str):
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.check needs cell='<grade id>'")
    weight = kwargs.get("weight", 1.0)
    if not isinstance(weight, int | float) or weight <= 0:
        raise pytest.UsageError(f"{item.nodeid}: check weight must be a positive number")
    return {
        "cell": kwargs["cell"],
        "weight": float(weight),
        "visible": bool(kwargs.get("visible", False)),
    }


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "submission" not in metafunc.fixturenames:
        return
    runs = [str(Path(r).resolve()) for r in metafunc.config.getoption("--ag-run")]
    metafunc.parametrize("submission", runs, ids=[Path(r).name for r in runs], indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cells_file = config.getoption("--ag-cells")
    if cells_file:
        cells: dict[str, list[str]] = {}
        for item in items:
            info = check_marker(item)
            if info is not None:
                name = item.originalname if isinstance(item, pytest.Function) else item.name
                check = f"{Path(str(item.path)).stem}::{name}"
                if check not in cells.setdefault(info["cell"], []):
                    cells[info["cell"]].append(check)
        Path(cells_file).write_text(json.dumps(cells, indent=1), "utf-8")
    if not config.getoption("--ag-visible-only"):
        for item in items:
            check_marker(item)
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        info = check_marker(item)
        (keep if info is None or info["visible"] else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# -- fixtures -----------------------------------------------------------------------------
_SUBMISSIONS: dict[str, Submission] = {}


@pytest.fixture
def submission(request: pytest.FixtureRequest) -> Submission:
    """The submission under check (one of the ``--ag-run`` folders)."""
    path = str(request.param)
    if path not in _SUBMISSIONS:
        _SUBMISSIONS[path] = Submission(Path(path))
    return _SUBMISSIONS[path]


@pytest.fixture
def run_record(submission: Submission) -> dict[str, Any]:
    """The submission's validated ``run.json``."""
    return submission.record


@pytest.fixture
def model(submission: Submission) -> Callable[[str], Any]:
    """``model("name")``: the Keras model bound to that name, loaded with safe_mode=True."""
    return submission.model


@pytest.fixture
def summary(submission: Submission) -> Callable[[str], str]:
    """``summary("name")``: that model's ``model.summary()`` text from the student's run."""
    return submission.summary


@pytest.fixture
def history(submission: Submission) -> Callable[[str], dict[str, list[float]]]:
    """``history("name")``: the ``History.history`` dict bound to that name."""
    return submission.history


@pytest.fixture
def figures(submission: Submission) -> list[dict[str, Any]]:
    """Metadata of every figure the notebook drew."""
    return submission.figures()


@pytest.fixture
def saved_file(submission: Submission) -> Callable[[str], Path]:
    """``saved_file("name")``: a file the notebook saved, as copied out of the sandbox."""
    return submission.saved_file


@pytest.fixture(scope="session")
def mnist_test(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    """MNIST test images and labels, preprocessed as the released notebook prescribes:
    float32 pixels / 255 shaped (N, 28, 28, 1), one-hot labels. Loaded once per session."""
    return mnist_test_set(_data_dir(request.config))


@pytest.fixture(scope="session")
def fresh_sequences() -> tuple[np.ndarray, np.ndarray]:
    """1,000 new sequences of the lesson's task (10 steps in [0, 1), target = their mean),
    drawn with the grader's own seed so that no submission has seen them."""
    return make_sequences()


@pytest.fixture
def flag(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``flag("why")``: raise a concern for a human reviewer without failing the check."""
    flags: list[str] = []
    request.node.stash[FLAGS_KEY] = flags
    return flags.append


@pytest.fixture
def metric(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``metric(name, measured, claimed=None, threshold=None)``: report a grader measurement
    (beside the student's own claim) in the feedback, whatever the verdict."""
    metrics: list[dict[str, Any]] = []
    request.node.stash[METRICS_KEY] = metrics

    def add(
        name: str, measured: float, claimed: float | None = None, threshold: str | None = None
    ) -> None:
        metrics.append(
            {"name": name, "measured": measured, "claimed": claimed, "threshold": threshold}
        )

    return add


def _data_dir(config: pytest.Config) -> Path:
    given = config.getoption("--ag-data-dir") or os.environ.get("AUTOGRADER_DATA_DIR")
    if given:
        return Path(given)
    from autograder.config import load_config

    return load_config().data_dir


# -- verdicts -----------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    info = check_marker(item)
    callspec = getattr(item, "callspec", None)
    if info is None or callspec is None or "submission" not in callspec.params:
        return report
    if call.when == "setup" and report.passed:
        return report
    if call.when == "teardown":
        return report
    run = str(callspec.params["submission"])
    excinfo = call.excinfo
    if excinfo is None:
        outcome, message, details = "passed", "", {}
    elif isinstance(excinfo.value, AssertionError):
        outcome = "failed"
        err = excinfo.value
        details = err.details if isinstance(err, CheckFailed) else {}
        message = err.message if isinstance(err, CheckFailed) else _assert_message(err)
    else:
        outcome = "error"
        message = f"grader error: {excinfo.typename}: {excinfo.value}"[:1000]
        details = {}
    name = item.originalname if isinstance(item, pytest.Function) else item.name
    flags: list[str] = item.stash.get(FLAGS_KEY, [])
    metrics = item.stash.get(METRICS_KEY, [])
    if metrics:
        details = {**details, "metrics": metrics}
    result = CheckResult(
        check=f"{Path(str(item.path)).stem}::{name}",
        cell=info["cell"],
        weight=info["weight"],
        visible=info["visible"],
        outcome=outcome,
        message=message,
        details=details,
        flags=tuple(flags),
    )
    item.config.stash[RESULTS_KEY].setdefault(run, []).append(result)
    return report


def _assert_message(err: AssertionError) -> str:
    text = str(err).strip()
    return text.split("\nassert ")[0].strip() if text else "the check's condition was not met"


def pytest_sessionfinish(session: pytest.Session) -> None:
    _SUBMISSIONS.clear()  # a long-lived worker must not keep every past submission's models
    target = session.config.getoption("--ag-results")
    if not target:
        return
    results = session.config.stash[RESULTS_KEY]
    payload = {run: [asdict(r) for r in checks] for run, checks in results.items()}
    Path(target).write_text(json.dumps(payload, ensure_ascii=False, indent=1), "utf-8")
