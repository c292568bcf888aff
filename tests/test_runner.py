"""The runner's parts with real components: restoring instructor cells, invalid notebooks,
device selection (fake driver trees, no GPU needed), the bubblewrap argv, refusing to run
untrusted code without a sandbox (and the explicit opt-out), one real run that harvests a
tiny Keras model, its history, a figure and a saved file, and the bounded pool.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner
from tiny_course import LESSON_LIMITS, LIMITS, MNIST, RELEASE, ROOT

from autograder.cli import main
from autograder.errors import AutograderError
from autograder.kernel.manager import kernel_env
from autograder.notebook import read_notebook
from autograder.runner.device import GpuInfo, gpu_nodes, select_device, visible_gpus
from autograder.runner.kernel import SandboxedKernelManager
from autograder.runner.limits import Enforcer
from autograder.runner.pool import PoolStats, run_many
from autograder.runner.record import read_record
from autograder.runner.restore import restore_cells
from autograder.runner.run import RunRequest, run_submission
from autograder.runner.sandbox import (
    HARVEST,
    WORK,
    SandboxSpec,
    SandboxUnavailable,
    bwrap_command,
    bwrap_path,
    python_mounts,
    require_sandbox,
    sandbox_problem,
)

needs_sandbox = pytest.mark.skipif(
    sandbox_problem() is not None, reason=f"no sandbox here: {sandbox_problem()}"
)


def grade_ids(nb: Any) -> list[str | None]:
    return [(c.metadata.get("nbgrader") or {}).get("grade_id") for c in nb.cells]


def tiny_notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def request(notebook: Path, out: Path, **kw: Any) -> RunRequest:
    return RunRequest(
        assignment="lesson25",
        notebook=notebook,
        out=out,
        limits=kw.pop("limits", LIMITS),
        mnist_npz=MNIST if MNIST.is_file() else None,
        **kw,
    )


# -- restoring the instructor's cells -----------------------------------------------------------


@pytest.fixture(scope="module")
def release() -> Any:
    return read_notebook(RELEASE)


def cell(nb: Any, grade_id: str) -> Any:
    return next(c for c, gid in zip(nb.cells, grade_ids(nb), strict=True) if gid == grade_id)


def test_unchanged_submission_restores_nothing(release: Any) -> None:
    restored, report = restore_cells(copy.deepcopy(release), release)
    assert report.as_dict() == {
        "restored": [],
        "reinserted": [],
        "reordered": False,
        "missing_answers": [],
        "extra_cells": 0,
    }
    assert grade_ids(restored) == grade_ids(release)


def test_deleted_locked_cells_are_reinserted(release: Any) -> None:
    submission = copy.deepcopy(release)
    submission.cells = [
        c
        for c in submission.cells
        if c.metadata.nbgrader.grade_id not in ("setup", "load_mnist", "test_cnn_architecture")
    ]
    restored, report = restore_cells(submission, release)
    assert report.reinserted == ["setup", "load_mnist", "test_cnn_architecture"]
    assert grade_ids(restored) == grade_ids(release)
    assert cell(restored, "setup").source == cell(release, "setup").source


def test_edited_locked_cells_are_restored(release: Any) -> None:
    submission = copy.deepcopy(release)
    cell(submission, "setup").source = "SEED = 1  # my own seed"
    cell(submission, "test_cnn_architecture").source = "pass"
    cell(submission, "test_cnn_architecture").outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="all checks passed\n")
    ]
    cell(submission, "theory").source = "edited markdown"
    restored, report = restore_cells(submission, release)
    assert sorted(report.restored) == ["setup", "test_cnn_architecture", "theory"]
    for gid in report.restored:
        assert cell(restored, gid).source == cell(release, gid).source
    assert cell(restored, "test_cnn_architecture").outputs == []  # no forged outputs


def test_reordered_cells_are_reported_and_put_back(release: Any) -> None:
    submission = copy.deepcopy(release)
    ids = grade_ids(submission)
    a, b = ids.index("cnn_build"), ids.index("gru_train")
    submission.cells[a], submission.cells[b] = submission.cells[b], submission.cells[a]
    cell(submission, "cnn_build").source = "cnn_model = 'mine'"
    restored, report = restore_cells(submission, release)
    assert report.reordered is True
    assert grade_ids(restored) == grade_ids(release)
    assert cell(restored, "cnn_build").source == "cnn_model = 'mine'"  # the answer stays


def test_missing_answer_cells_are_reported(release: Any) -> None:
    submission = copy.deepcopy(release)
    submission.cells = [
        c
        for c in submission.cells
        if c.metadata.nbgrader.grade_id not in ("gru_train", "answer_gru")
    ]
    restored, report = restore_cells(submission, release)
    assert report.missing_answers == ["gru_train", "answer_gru"]
    assert grade_ids(restored) == grade_ids(release)  # the release's stub is put back


def test_added_student_cells_are_kept_in_place(release: Any) -> None:
    submission = copy.deepcopy(release)
    ids = grade_ids(submission)
    helper = nbformat.v4.new_code_cell("def helper():\n    return 42")
    scratch = nbformat.v4.new_markdown_cell("my notes")
    submission.cells.insert(ids.index("cnn_build") + 1, helper)
    submission.cells.insert(0, scratch)
    cell(submission, "cnn_build").source = "cnn_model = helper()"
    restored, report = restore_cells(submission, release)
    assert report.extra_cells == 2
    sources = [c.source for c in restored.cells]
    assert sources[0] == "my notes"
    assert sources[sources.index("cnn_model = helper()") + 1] == helper.source
    assert [g for g in grade_ids(restored) if g] == [g for g in grade_ids(release) if g]


def test_answer_cell_changed_to_markdown_is_restored(release: Any) -> None:
    submission = copy.deepcopy(release)
    index = grade_ids(submission).index("cnn_build")
    old = submission.cells[index]
    md = nbformat.v4.new_markdown_cell("I don't do code")
    md.metadata = copy.deepcopy(old.metadata)
    submission.cells[index] = md
    restored, report = restore_cells(submission, release)
    assert report.restored == ["cnn_build"]
    assert cell(restored, "cnn_build").cell_type == "code"


@needs_sandbox
def test_run_with_deleted_and_reordered_locked_cells(tmp_path: Path, release: Any) -> None:
    """The whole lesson, mangled: the runner restores it, runs it and says what it did."""
    submission = copy.deepcopy(release)
    submission.cells = [
        c for c in submission.cells if c.metadata.nbgrader.grade_id not in ("setup", "test_lstm")
    ]
    ids = grade_ids(submission)
    a, b = ids.index("make_sequences"), ids.index("example_hybrid")
    submission.cells[a], submission.cells[b] = submission.cells[b], submission.cells[a]
    submission.cells.append(nbformat.v4.new_code_cell("print('student extra')"))
    notebook = tmp_path / "lesson25.ipynb"
    nbformat.write(submission, notebook)
    record = run_submission(
        request(notebook, tmp_path / "out", release_notebook=RELEASE, limits=LESSON_LIMITS)
    )
    assert read_record(tmp_path / "out" / "run.json") == json.loads(json.dumps(record))
    assert record["restore"]["reinserted"] == ["setup", "test_lstm"]
    assert record["restore"]["reordered"] is True
    assert record["restore"]["extra_cells"] == 1
    # the solution stubs raise NotImplementedError: a cell error, not a crash
    assert record["status"] == "cell-error"
    assert record["seed"] == 25
    ran = [c["grade_id"] for c in record["cells"]]
    assert ran[:3] == ["setup", "example_hybrid", "load_mnist"]
    executed = nbformat.read(tmp_path / "out" / "executed.ipynb", as_version=4)
    assert [g for g in grade_ids(executed) if g] == [g for g in grade_ids(release) if g]
    assert "student extra" in json.dumps(executed.cells[-1].outputs)


@pytest.mark.parametrize(
    ("meta", "restore"),
    [(None, False), ("locked", False), (5, False), ([], False), ("locked", True)],
    ids=["null", "str", "int", "list", "str-restored"],
)
@needs_sandbox
def test_malformed_nbgrader_metadata_does_not_crash(
    tmp_path: Path, meta: Any, restore: bool
) -> None:
    nb = nbformat.v4.new_notebook()
    bad = nbformat.v4.new_code_cell("1 / 0")
    bad.metadata["nbgrader"] = meta
    nb.cells = [bad]
    notebook = tmp_path / "odd.ipynb"
    notebook.write_text(json.dumps(nb))
    release = RELEASE if restore else None
    # with restore the lesson's own cells run too; without MNIST they fail early, fine
    record = run_submission(
        RunRequest(
            assignment="lesson25",
            notebook=notebook,
            out=tmp_path / "out",
            limits=LESSON_LIMITS,
            mnist_npz=None,
            release_notebook=release,
        )
    )
    assert record["status"] == "cell-error"
    assert record["failed_cell"]["ename"] in ("ZeroDivisionError", "RuntimeError")
    read_record(tmp_path / "out" / "run.json")


# -- invalid notebooks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"cells": [', "not valid JSON"),
        (
            json.dumps(
                {"nbformat": 3, "nbformat_minor": 0, "cells": [], "metadata": {}, "worksheets": []}
            ),
            "nbformat 3",
        ),
        (json.dumps(["not", "a", "notebook"]), "not a Jupyter notebook"),
        (
            json.dumps(
                {
                    "nbformat": 4,
                    "nbformat_minor": 5,
                    "metadata": {},
                    "cells": [{"cell_type": "code"}],
                }
            ),
            "invalid nbformat",
        ),
        (
            json.dumps(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("hi")])),
            "no code to run",
        ),
        (b"\xff\xfe binary", "cannot read the notebook"),
    ],
    ids=["bad-json", "nbformat3", "list", "schema", "no-code", "binary"],
)
def test_invalid_notebook_is_reported_with_its_name(
    tmp_path: Path, content: str | bytes, words: str
) -> None:
    notebook = tmp_path / "ivanova-lesson25.ipynb"
    if isinstance(content, bytes):
        notebook.write_bytes(content)
    else:
        notebook.write_text(content)
    out = tmp_path / "out"
    record = run_submission(request(notebook, out, release_notebook=RELEASE))
    assert record["status"] == "invalid-notebook"
    assert str(notebook) in record["message"] and words in record["message"]
    assert read_record(out / "run.json")["status"] == "invalid-notebook"
    assert not (out / "executed.ipynb").exists()


def test_missing_notebook_is_reported(tmp_path: Path) -> None:
    record = run_submission(request(tmp_path / "gone.ipynb", tmp_path / "out"))
    assert record["status"] == "invalid-notebook"
    assert "gone.ipynb" in record["message"]


# -- devices ------------------------------------------------------------------------------------

GPU_NAMES = ("NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB")


def fake_driver(tmp_path: Path, count: int = 2, *, ctl: bool = True) -> tuple[Path, Path]:
    """``/dev`` and ``/proc/driver/nvidia`` as the NVIDIA driver lays them out."""
    dev, proc = tmp_path / "dev", tmp_path / "proc" / "driver" / "nvidia"
    (dev / "nvidia-caps").mkdir(parents=True)
    names = [
        "nvidia-uvm",
        "nvidia-uvm-tools",
        "nvidia-caps/nvidia-cap1",
        *(f"nvidia{i}" for i in range(count)),
    ]
    if ctl:
        names.append("nvidiactl")
    for name in names:
        (dev / name).touch()
    (dev / "null").touch()
    for i in range(count):
        info = proc / "gpus" / f"0000:{i + 1:02x}:00.0" / "information"
        info.parent.mkdir(parents=True)
        info.write_text(
            f"Model: \t\t {GPU_NAMES[i % 2]}\nIRQ:   \t\t {40 + i}\n"
            f"GPU UUID: \t GPU-{i:08d}\nBus Location: \t 0000:{i + 1:02x}:00.0\n"
        )
    return dev, proc


def test_visible_gpus_read_the_driver_tree(tmp_path: Path) -> None:
    dev, proc = fake_driver(tmp_path)
    assert visible_gpus(dev, proc) == [GpuInfo(0, GPU_NAMES[0]), GpuInfo(1, GPU_NAMES[1])]


def test_no_gpus_without_the_driver(tmp_path: Path) -> None:
    dev, proc = fake_driver(tmp_path, ctl=False)
    assert visible_gpus(dev, proc) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    assert visible_gpus(empty, empty) == []


def test_gpu_nodes_are_numbered_naturally(tmp_path: Path) -> None:
    dev, proc = fake_driver(tmp_path, count=0)
    for i in (0, 2, 10):
        (dev / f"nvidia{i}").touch()
    assert [g.index for g in visible_gpus(dev, proc)] == [0, 2, 10]
    assert {g.name for g in visible_gpus(dev, proc)} == {"NVIDIA GPU"}  # no /proc entries
    nodes = gpu_nodes(dev)
    assert str(dev / "nvidia10") in nodes and str(dev / "nvidiactl") in nodes
    assert str(dev / "nvidia-caps" / "nvidia-cap1") in nodes
    assert str(dev / "null") not in nodes


def test_select_device(tmp_path: Path) -> None:
    dev, proc = fake_driver(tmp_path)
    gpus = visible_gpus(dev, proc)

    auto = select_device("auto", gpus=gpus, dev=dev)
    assert (auto.kind, auto.index, auto.name) == ("gpu", 0, GPU_NAMES[0])
    assert auto.env["CUDA_VISIBLE_DEVICES"] == "0"
    assert set(auto.nodes) == {
        str(dev / n)
        for n in (
            "nvidia0",
            "nvidia1",
            "nvidiactl",
            "nvidia-uvm",
            "nvidia-uvm-tools",
            "nvidia-caps/nvidia-cap1",
        )
    }

    second = select_device("gpu", slot=1, gpus=gpus, dev=dev)
    assert (second.index, second.name, second.env["CUDA_VISIBLE_DEVICES"]) == (1, GPU_NAMES[1], "1")
    assert select_device("gpu", slot=4, gpus=gpus, dev=dev).index == 0  # round robin

    cpu = select_device("cpu", gpus=gpus, dev=dev)
    assert (cpu.kind, cpu.nodes, cpu.env) == ("cpu", (), {"CUDA_VISIBLE_DEVICES": ""})
    assert select_device("auto", gpus=[], dev=dev).kind == "cpu"
    # gpus found from the device nodes alone (the real /proc has no driver entries here)
    assert select_device("auto", dev=dev).kind == "gpu"

    with pytest.raises(AutograderError, match="no NVIDIA GPU is visible"):
        select_device("gpu", gpus=[], dev=dev)
    with pytest.raises(AutograderError, match="expected one of auto, cpu, gpu"):
        select_device("tpu", gpus=gpus, dev=dev)


def test_this_machine_falls_back_to_the_cpu() -> None:
    if visible_gpus():
        pytest.skip("this machine has a GPU")
    assert select_device("auto").kind == "cpu"
    with pytest.raises(AutograderError, match="--device gpu"):
        select_device("gpu")


def bind_sources(argv: list[str]) -> dict[str, list[str]]:
    """``--bind``-like option -> the host paths it exposes."""
    found: dict[str, list[str]] = {}
    for i, arg in enumerate(argv):
        if arg in (
            "--bind",
            "--ro-bind",
            "--dev-bind",
            "--bind-try",
            "--ro-bind-try",
            "--dev-bind-try",
        ):
            found.setdefault(arg, []).append(argv[i + 1])
    return found


def sandbox_spec(tmp_path: Path, devices: tuple[str, ...], env: dict[str, str]) -> SandboxSpec:
    folders = [tmp_path / n for n in ("work", "harvest", "conn")]
    for folder in folders:
        folder.mkdir()
    return SandboxSpec(
        workdir=folders[0],
        harvest_dir=folders[1],
        connection_dir=folders[2],
        limits=LIMITS,
        readonly=(*python_mounts(), MNIST.parent),
        devices=devices,
        env=kernel_env(MNIST, env),
    )


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")
def test_bwrap_arguments_for_a_gpu_run(tmp_path: Path) -> None:
    dev, proc = fake_driver(tmp_path)
    device = select_device("gpu", slot=1, gpus=visible_gpus(dev, proc), dev=dev)
    spec = sandbox_spec(tmp_path, device.nodes, device.env)
    argv = bwrap_command(spec, ["python", "-m", "autograder.kernel"])
    assert argv[0] == bwrap_path()
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert argv[argv.index("--uid") + 1] == "65534"
    assert argv[-4:] == ["--", "python", "-m", "autograder.kernel"]
    binds = bind_sources(argv)
    assert sorted(binds["--dev-bind"]) == sorted(device.nodes)
    for node in device.nodes:
        i = argv.index(node)
        assert argv[i - 1 : i + 2] == ["--dev-bind", node, node]
    assert binds["--bind"] == [str(spec.workdir), str(spec.harvest_dir), str(spec.connection_dir)]
    assert argv[argv.index(str(spec.workdir)) + 1] == WORK
    assert argv[argv.index(str(spec.harvest_dir)) + 1] == HARVEST
    env = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "--setenv"}
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["AUTOGRADER_MNIST_NPZ"] == str(MNIST)
    # the private /tmp is size-limited to the disk limit
    i = argv.index("/tmp", argv.index("--size"))
    assert argv[i - 3 : i + 1] == ["--size", str(LIMITS.disk_mb * 2**20), "--tmpfs", "/tmp"]
    assert_no_course_paths(argv)


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")
def test_bwrap_arguments_for_a_cpu_run(tmp_path: Path) -> None:
    device = select_device("cpu")
    argv = bwrap_command(sandbox_spec(tmp_path, device.nodes, device.env), ["true"])
    assert "--dev-bind" not in argv
    assert "--unshare-all" in argv
    assert argv[argv.index("--dev") + 1] == "/dev"  # a minimal /dev, not the host's
    env = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "--setenv"}
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert_no_course_paths(argv)


def assert_no_course_paths(argv: list[str]) -> None:
    """Nothing of the course is bound: not source/, grading_tests/, gradebook/, the project
    or the home folder. The only path under /root is the interpreter's own installation
    (pyenv), read-only, which the kernel needs to run."""
    exposed = [Path(p) for paths in bind_sources(argv).values() for p in paths]
    forbidden = [ROOT / "source", ROOT / "grading_tests", ROOT / "gradebook"]
    for path in exposed:
        for secret in forbidden:
            assert not path.is_relative_to(secret) and not secret.is_relative_to(path), path
        assert path not in (Path("/"), Path("/root"), Path.home(), ROOT, ROOT.parent)
        if path.is_relative_to("/root") or path.is_relative_to(Path.home()):
            assert path == Path(sys.base_prefix).resolve()
            assert argv[argv.index(str(path)) - 1] == "--ro-bind"


@needs_sandbox
def test_kernel_command_enters_limits_then_sandbox(tmp_path: Path) -> None:
    spec = sandbox_spec(tmp_path, (), {})
    enforcer = Enforcer(LIMITS, (spec.workdir,))
    try:
        km = SandboxedKernelManager(
            spec=spec,
            enforcer=enforcer,
            transport="ipc",
            ip=str(spec.connection_dir / "kernel"),
            connection_file=str(spec.connection_dir / "kernel.json"),
        )
        argv = km.format_kernel_cmd()
    finally:
        enforcer.close()
    prlimit = argv.index("prlimit")
    assert f"--fsize={LIMITS.disk_mb * 2**20}" in argv[prlimit:]
    bwrap = argv.index(str(bwrap_path()))
    assert prlimit < bwrap
    if enforcer.mode == "cgroup":
        assert argv[:2] == ["/bin/sh", "-c"] and "cgroup.procs" in argv[2]
    assert argv[-3:] == ["autograder.kernel", "-f", str(spec.connection_dir / "kernel.json")]


# -- refusing to run without a sandbox, and the opt-out -----------------------------------------


@pytest.fixture
def fresh_probe() -> Any:
    sandbox_problem.cache_clear()
    yield
    sandbox_problem.cache_clear()


@pytest.fixture
def path_without_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_probe: Any) -> Path:
    """``PATH`` with the tools a run needs (``prlimit``) but no ``bwrap``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        pytest.skip("prlimit is not installed")
    (bin_dir / "prlimit").symlink_to(prlimit)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_missing_bwrap_refuses_untrusted_code(path_without_bwrap: Path, tmp_path: Path) -> None:
    assert bwrap_path() is None
    problem = sandbox_problem()
    assert problem is not None and "bubblewrap (bwrap) is not installed" in problem
    with pytest.raises(SandboxUnavailable) as caught:
        require_sandbox()
    message = str(caught.value)
    assert message.startswith("cannot sandbox untrusted code: bubblewrap")
    assert "'bubblewrap'" in message and "--no-sandbox" in message
    notebook = tiny_notebook(tmp_path / "nb.ipynb", "print('untrusted')")
    with pytest.raises(SandboxUnavailable, match="--no-sandbox"):
        run_submission(request(notebook, tmp_path / "out"))
    assert not (tmp_path / "out" / "executed.ipynb").exists()


def test_broken_bwrap_refuses_untrusted_code(path_without_bwrap: Path) -> None:
    fake = path_without_bwrap / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    assert bwrap_path() == str(fake)
    with pytest.raises(
        SandboxUnavailable,
        match="cannot create namespaces here: bwrap: No permissions to create new namespace",
    ):
        require_sandbox()


def test_cli_refuses_without_a_sandbox(path_without_bwrap: Path, tmp_path: Path) -> None:
    notebook = tiny_notebook(tmp_path / "lesson25.ipynb", "print('untrusted')")
    result = CliRunner().invoke(
        main,
        ["run", "--course", str(ROOT), "lesson25", str(notebook), "--out", str(tmp_path / "out")],
    )
    assert result.exit_code == 2, result.output
    assert "error: cannot sandbox untrusted code" in result.output
    assert "--no-sandbox" in result.output


def test_no_sandbox_opt_out_runs(path_without_bwrap: Path, tmp_path: Path) -> None:
    """Where bwrap is missing, the explicit opt-out still runs (the student's own notebook),
    without the sandbox but under the same limits."""
    notebook = tiny_notebook(
        tmp_path / "mine.ipynb",
        "import os\nprint('CWD', os.getcwd())",
        "print('HARVEST', os.environ['AUTOGRADER_HARVEST_DIR'])",
    )
    record = run_submission(request(notebook, tmp_path / "out", sandbox=False))
    assert record["status"] == "ok", record["message"]
    assert record["sandbox"]["kind"] == "none"
    assert record["leftover_processes"] == 0
    executed = nbformat.read(tmp_path / "out" / "executed.ipynb", as_version=4)
    cwd = executed.cells[0].outputs[0]["text"]
    assert "CWD /sandbox/work" not in cwd and "autograder-run-" in cwd  # the host's folder
    assert read_record(tmp_path / "out" / "run.json")["sandbox"]["kind"] == "none"


@needs_sandbox
def test_gpu_requested_without_a_gpu_is_a_clear_error(tmp_path: Path) -> None:
    if visible_gpus():
        pytest.skip("this machine has a GPU")
    notebook = tiny_notebook(tmp_path / "nb.ipynb", "print(1)")
    with pytest.raises(AutograderError, match="--device gpu: no NVIDIA GPU"):
        run_submission(request(notebook, tmp_path / "out", device_mode="gpu"))


# -- a real run: timings and the harvest --------------------------------------------------------

HARVEST_CELLS = (
    "import keras\nimport matplotlib.pyplot as plt\nimport numpy as np",
    "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)], name='first')",
    "model.compile(optimizer='sgd', loss='mse')\n"
    "history = model.fit(np.random.rand(8, 3), np.random.rand(8, 2), epochs=1, verbose=0)",
    "plt.plot([1, 2, 3], [4, 5, 6], label='train')\nplt.title('Accuracy')\n"
    "plt.xlabel('epoch')\nplt.ylabel('accuracy')\nplt.legend()\n"
    "plt.savefig('plot.png')\nplt.show()",
    "with open('notes.txt', 'w') as handle:\n    handle.write('hello')",
    "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)], name='second')",
)


@pytest.fixture(scope="module")
def harvest_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    if sandbox_problem() is not None:
        pytest.skip(f"no sandbox here: {sandbox_problem()}")
    tmp = tmp_path_factory.mktemp("harvest")
    notebook = tiny_notebook(tmp / "tiny.ipynb", *HARVEST_CELLS)
    record = run_submission(request(notebook, tmp / "out", limits=LESSON_LIMITS))
    return record, tmp / "out"


def test_run_records_every_cell(harvest_run: tuple[dict[str, Any], Path]) -> None:
    record, out = harvest_run
    assert record["status"] == "ok", record["message"]
    assert read_record(out / "run.json") == json.loads(json.dumps(record))
    assert [c["index"] for c in record["cells"]] == list(range(len(HARVEST_CELLS)))
    assert all(c["status"] == "ok" and c["duration_s"] >= 0 for c in record["cells"])
    assert record["cells"][0]["duration_s"] > 0.1  # importing Keras takes a while
    assert record["wall_s"] >= sum(c["duration_s"] for c in record["cells"])
    assert record["sandbox"] == {"kind": "bwrap", "limits": record["sandbox"]["limits"]}
    assert record["device"]["kind"] == "cpu"
    assert record["peak_memory_mb"] > 0
    assert record["versions"]["keras"].startswith("3.")
    assert record["leftover_processes"] == 0


def test_harvest_models_load_safely(harvest_run: tuple[dict[str, Any], Path]) -> None:
    import keras

    record, out = harvest_run
    models = {m["key"]: m for m in record["artifacts"]["models"]}
    # the name was rebound in cell 6: both versions are kept
    assert set(models) == {"model", "model@cell2"}
    assert models["model"]["names"] == ["model"] and models["model"]["cell"] == 6
    assert models["model@cell2"]["cell"] == 2
    current = keras.saving.load_model(out / "artifacts" / models["model"]["file"], safe_mode=True)
    earlier = keras.saving.load_model(
        out / "artifacts" / models["model@cell2"]["file"], safe_mode=True
    )
    assert (current.name, current.output_shape) == ("second", (None, 4))
    assert (earlier.name, earlier.output_shape) == ("first", (None, 2))
    summary = (out / "artifacts" / models["model"]["summary_file"]).read_text()
    assert "second" in summary and "Dense" in summary


def test_harvest_history(harvest_run: tuple[dict[str, Any], Path]) -> None:
    record, out = harvest_run
    [history] = record["artifacts"]["histories"]
    assert history["key"] == "history" and history["cell"] == 3
    data = json.loads((out / "artifacts" / history["file"]).read_text())
    assert data["epoch"] == [0]
    assert len(data["history"]["loss"]) == 1
    assert data["params"]["epochs"] == 1


def test_harvest_figure(harvest_run: tuple[dict[str, Any], Path]) -> None:
    record, out = harvest_run
    [figure] = record["artifacts"]["figures"]
    assert (out / "artifacts" / figure["file"]).read_bytes().startswith(b"\x89PNG")
    meta = json.loads((out / "artifacts" / figure["meta"]).read_text())
    [axes] = meta["axes"]
    assert (axes["title"], axes["xlabel"], axes["ylabel"]) == ("Accuracy", "epoch", "accuracy")
    assert axes["legend"] == ["train"]
    assert axes["lines"] == [{"label": "train", "x": [1.0, 2.0, 3.0], "y": [4.0, 5.0, 6.0]}]


def test_harvest_saved_files(harvest_run: tuple[dict[str, Any], Path]) -> None:
    record, out = harvest_run
    files = {f["path"]: f for f in record["artifacts"]["files"]}
    assert set(files) == {"notes.txt", "plot.png"}
    assert files["plot.png"]["png"] is True and files["notes.txt"]["bytes"] == 5
    assert (out / "artifacts" / "files" / "notes.txt").read_text() == "hello"
    assert record["artifacts"]["skipped_files"] == []


# -- the pool -----------------------------------------------------------------------------------


@needs_sandbox
def test_pool_runs_in_parallel_and_keeps_order(tmp_path: Path) -> None:
    notebooks = [
        # the first one is the slowest, so the runs finish out of order
        tiny_notebook(tmp_path / f"nb{i}.ipynb", f"import time\ntime.sleep({d})\nprint({i})")
        for i, d in enumerate((3.0, 0.0, 0.0))
    ]
    requests = [request(nb, tmp_path / f"out{i}") for i, nb in enumerate(notebooks)]
    running: list[int] = []
    finished: list[str] = []

    def on_update(stats: PoolStats, record: dict[str, Any] | None) -> None:
        running.append(stats.running)
        if record is not None:
            finished.append(record["notebook"])

    records = asyncio.run(run_many(requests, workers=2, on_update=on_update))
    assert [r["notebook"] if r else None for r in records] == [
        "nb0.ipynb",
        "nb1.ipynb",
        "nb2.ipynb",
    ]
    assert all(r is not None and r["status"] == "ok" for r in records)
    assert max(running) == 2
    assert finished[0] == "nb1.ipynb"  # started with nb0, finished first, yet comes second
    for i in range(3):
        assert read_record(tmp_path / f"out{i}" / "run.json")["notebook"] == f"nb{i}.ipynb"
