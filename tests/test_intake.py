"""The collect stage: folder, LMS zip and nbgrader exchange intake, attempts, and bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import struct
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autograder import intake
from autograder.config import CourseConfig, load_config
from autograder.errors import AutograderError
from autograder.intake import (
    DEFAULT_PATTERN,
    CollectReport,
    IntakeError,
    collect,
    collect_exchange,
    compile_pattern,
    format_nbgrader_timestamp,
    parse_nbgrader_timestamp,
    student_from_path,
)

REPO = Path(__file__).resolve().parents[1]
RELEASED = REPO / "release" / "lesson25" / "lesson25.ipynb"
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 12, 4, 19, 55, 6, 123456, tzinfo=UTC)
T2 = datetime(2026, 12, 5, 8, 0, 0, tzinfo=UTC)
T3 = datetime(2026, 12, 6, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
def course(tmp_path: Path) -> CourseConfig:
    root = tmp_path / "course"
    (root / "release" / "lesson25").mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(RELEASED, root / "release" / "lesson25" / "lesson25.ipynb")
    return load_config(root)


def notebook(tag: str) -> bytes:
    """The released notebook with the student's answer ``tag`` in the CNN training cell."""
    nb = json.loads(RELEASED.read_text("utf-8"))
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
    cell["source"] = f"# answer {tag}\ncnn_history = None\n"
    return (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode()


def put(path: Path, data: bytes, when: datetime = T1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def current(config: CourseConfig, student: str) -> Path:
    return config.root / "submitted" / student / "lesson25"


def attempt_dir(config: CourseConfig, student: str, n: int) -> Path:
    return config.root / "submitted" / ".attempts" / student / "lesson25" / f"attempt-{n}"


def record(folder: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((folder / "submission.json").read_text("utf-8"))
    return data


def rejected(report: CollectReport, fragment: str) -> str:
    """The one-line message of the rejection whose file name contains ``fragment``."""
    lines = [str(r) for r in report.rejected if fragment in r.path]
    assert len(lines) == 1, (fragment, [str(r) for r in report.rejected])
    return lines[0]


def leftovers(config: CourseConfig) -> list[Path]:
    root = config.root / "submitted"
    return [p for p in root.rglob("*") if ".staging" in p.parts or p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- pattern


@pytest.mark.parametrize(
    ("rel", "student"),
    [
        ("ivanova/lesson25.ipynb", "ivanova"),
        ("ivanova/Copy of lesson_25 (1).ipynb", "ivanova"),
        ("ivanova_lesson25.ipynb", "ivanova"),
        ("ivanova_12345_67890_lesson25.ipynb", "ivanova"),
        ("Ivanova_LATE_12345_67890_lesson25-1.ipynb", "ivanova"),
        ("ivanova_123_assignsubmission_file_/lesson25.ipynb", "ivanova"),
        ("a.smirnov/lesson25.ipynb", "a.smirnov"),
    ],
)
def test_default_pattern_finds_the_student(rel: str, student: str) -> None:
    assert student_from_path(rel, compile_pattern(None)) == student


def test_default_pattern_refuses_paths_without_an_id() -> None:
    rx = compile_pattern(DEFAULT_PATTERN)
    for rel in ("lesson25.ipynb", "Анна_lesson25.ipynb", "_x/lesson25.ipynb"):
        with pytest.raises(ValueError, match="no student id"):
            student_from_path(rel, rx)


def test_invalid_patterns_are_clear_errors(course: CourseConfig, tmp_path: Path) -> None:
    with pytest.raises(IntakeError, match="no named group 'student'"):
        collect(course, "lesson25", tmp_path, pattern=r"^([^/]+)/")
    with pytest.raises(IntakeError, match="invalid student pattern"):
        collect(course, "lesson25", tmp_path, pattern=r"^(?P<student>[^/]+")
    assert issubclass(IntakeError, AutograderError)


def test_timestamps_round_trip_in_nbgrader_format() -> None:
    text = format_nbgrader_timestamp(T1)
    assert text == "2026-12-04 19:55:06.123456 UTC"
    assert parse_nbgrader_timestamp(text) == T1
    assert parse_nbgrader_timestamp("2026-12-04 22:55:06.123456 +0300") == T1
    assert parse_nbgrader_timestamp(T1.isoformat()) == T1


# --------------------------------------------------------------------------- sources


def test_folder_intake_stores_by_nbgrader_convention(course: CourseConfig, tmp_path: Path) -> None:
    src = tmp_path / "inbox"
    put(src / "ivanova" / "lesson25.ipynb", notebook("ivanova"), T1)
    put(src / "petrov" / "lesson25.ipynb", notebook("petrov"), T2)
    (src / "petrov" / "timestamp.txt").write_text(format_nbgrader_timestamp(T3))  # nbgrader's
    report = collect(course, "lesson25", src, now=NOW)

    assert sorted(s.student for s in report.stored) == ["ivanova", "petrov"]
    assert not report.rejected and not report.warnings
    folder = current(course, "ivanova")
    assert (folder / "lesson25.ipynb").read_bytes() == notebook("ivanova")
    assert (folder / "timestamp.txt").read_text() == "2026-12-04 19:55:06.123456 UTC"
    rec = record(folder)
    assert rec["student"] == "ivanova" and rec["assignment"] == "lesson25"
    assert rec["attempt"] == 1 and rec["original_name"] == "lesson25.ipynb"
    assert rec["source"] == str(src / "ivanova" / "lesson25.ipynb")
    assert rec["timestamp"] == "2026-12-04T19:55:06.123456+00:00"
    assert rec["collected_at"] == NOW.isoformat()
    assert record(current(course, "petrov"))["timestamp"] == T3.isoformat()
    import hashlib

    assert rec["sha256"] == hashlib.sha256(notebook("ivanova")).hexdigest()
    assert report.summary().startswith("lesson25: 2 stored, 0 unchanged, 0 rejected")
    assert leftovers(course) == []


def test_nbgrader_reads_the_stored_timestamp(course: CourseConfig, tmp_path: Path) -> None:
    from nbgrader.utils import parse_utc

    put(tmp_path / "in" / "ivanova_lesson25.ipynb", notebook("a"), T1)
    collect(course, "lesson25", tmp_path / "in")
    text = (current(course, "ivanova") / "timestamp.txt").read_text()
    assert parse_utc(text) == T1.replace(tzinfo=None)


def test_file_name_intake_and_canvas_names(course: CourseConfig, tmp_path: Path) -> None:
    src = tmp_path / "inbox"
    put(src / "ivanova_lesson25.ipynb", notebook("i"))
    put(src / "petrov_12345_67890_lesson25.ipynb", notebook("p"))
    put(src / "sidorova_LATE_222_333_lesson25.ipynb", notebook("s"))
    report = collect(course, "lesson25", src)
    assert sorted(s.student for s in report.stored) == ["ivanova", "petrov", "sidorova"]
    assert all(s.note == "" for s in report.stored)  # LMS prefixes are not renames
    assert (current(course, "petrov") / "lesson25.ipynb").read_bytes() == notebook("p")


def test_single_notebook_source(course: CourseConfig, tmp_path: Path) -> None:
    path = put(tmp_path / "kuznetsov_lesson25.ipynb", notebook("k"))
    report = collect(course, "lesson25", path)
    assert [s.student for s in report.stored] == ["kuznetsov"]


def test_zip_intake_uses_entry_dates(course: CourseConfig, tmp_path: Path) -> None:
    archive = tmp_path / "lms.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            zipfile.ZipInfo("ivanova_111_lesson25.ipynb", (2026, 12, 4, 19, 55, 6)), notebook("i")
        )
        info = zipfile.ZipInfo("petrov/lesson25.ipynb", (1999, 1, 1, 0, 0, 0))
        info.extra = struct.pack("<HHBI", 0x5455, 5, 1, int(T2.timestamp()))  # Info-ZIP UT field
        zf.writestr(info, notebook("p"))
        zf.writestr("readme.txt", "hello")
        zf.writestr("sidorova/lesson25.ipynb", notebook("s"))
        zf.writestr("sidorova/timestamp.txt", format_nbgrader_timestamp(T3))
        zf.writestr("__MACOSX/._ivanova_111_lesson25.ipynb", b"\0\5junk")
    report = collect(course, "lesson25", archive)

    assert sorted(s.student for s in report.stored) == ["ivanova", "petrov", "sidorova"]
    assert (current(course, "ivanova") / "lesson25.ipynb").read_bytes() == notebook("i")
    assert record(current(course, "sidorova"))["timestamp"] == T3.isoformat()
    local = datetime(2026, 12, 4, 19, 55, 6).astimezone(UTC)
    assert record(current(course, "ivanova"))["timestamp"] == local.isoformat()
    assert record(current(course, "ivanova"))["source"] == f"{archive}:ivanova_111_lesson25.ipynb"
    assert record(current(course, "petrov"))["timestamp"] == T2.isoformat()
    assert "not a notebook" in rejected(report, "readme.txt")
    assert all(r.skipped for r in report.rejected)
    assert report.errors == []


def test_exchange_intake(course: CourseConfig, tmp_path: Path) -> None:
    inbound = tmp_path / "exchange" / "nn-course" / "inbound"

    def submit(
        student: str, when: datetime, data: bytes, random: str | None = "AbC-d_123456"
    ) -> Path:
        name = f"{student}+lesson25+{format_nbgrader_timestamp(when)}"
        folder = inbound / (f"{name}+{random}" if random else name)
        put(folder / "lesson25.ipynb", data)
        (folder / "timestamp.txt").write_text(format_nbgrader_timestamp(when))
        return folder

    submit("ivanova", T1, notebook("i"))
    submit("petrov", T1, notebook("p1"))
    submit("petrov", T3, notebook("p3"), random=None)
    submit("petrov", T2, notebook("p2"))
    put(inbound / "smirnov+lesson26+2026-12-04 19:55:06.123456 UTC+x" / "lesson26.ipynb", b"{}")
    put(inbound / "kuznetsov+lesson25+yesterday+x" / "lesson25.ipynb", notebook("k"))
    report = collect_exchange(course, "lesson25", tmp_path / "exchange", now=NOW)

    assert (current(course, "petrov") / "lesson25.ipynb").read_bytes() == notebook("p3")
    assert record(current(course, "petrov"))["attempt"] == 3
    assert (attempt_dir(course, "petrov", 1) / "lesson25.ipynb").read_bytes() == notebook("p1")
    assert (attempt_dir(course, "petrov", 2) / "lesson25.ipynb").read_bytes() == notebook("p2")
    assert (current(course, "ivanova") / "timestamp.txt").read_text() == format_nbgrader_timestamp(
        T1
    )
    assert not (course.root / "submitted" / "smirnov").exists()
    assert "not an nbgrader submission folder" in rejected(report, "kuznetsov+lesson25+yesterday")
    assert not report.warnings  # several exchange folders of one student are plain resubmissions
    for stored in report.stored:
        assert stored.path.is_file()  # paths in the report are where the files are now

    again = collect_exchange(course, "lesson25", tmp_path / "exchange", now=NOW)
    assert again.stored == [] and len(again.unchanged) == 4


def test_exchange_without_inbound_is_an_error(course: CourseConfig, tmp_path: Path) -> None:
    with pytest.raises(IntakeError, match="no nbgrader inbound folder"):
        collect_exchange(course, "lesson25", tmp_path)


def test_custom_pattern(course: CourseConfig, tmp_path: Path) -> None:
    src = tmp_path / "download"
    put(src / "lesson25-submissions" / "Ivanova" / "hw_lesson25.ipynb", notebook("i"))
    put(src / "lesson25-submissions" / "Petrov" / "hw.ipynb", notebook("p"))
    report = collect(course, "lesson25", src, pattern=r"^lesson25-submissions/(?P<student>[^/]+)/")
    assert sorted(s.student for s in report.stored) == ["ivanova", "petrov"]
    notes = {s.student: s.note for s in report.stored}
    assert notes["ivanova"] == ""  # "<anything>_lesson25.ipynb" counts as an LMS prefix
    assert "renamed notebook: 'hw.ipynb' stored as lesson25.ipynb" in notes["petrov"]


def test_missing_release_and_source_are_errors(course: CourseConfig, tmp_path: Path) -> None:
    with pytest.raises(IntakeError, match="no such folder"):
        collect(course, "lesson25", tmp_path / "nowhere")
    with pytest.raises(AutograderError, match="no assignment 'lesson99'"):
        collect(course, "lesson99", tmp_path)
    (course.release_dir / "lesson25" / "lesson25.ipynb").unlink()
    with pytest.raises(IntakeError, match="no released notebook"):
        collect(course, "lesson25", tmp_path)


# --------------------------------------------------------------------------- bad input


def test_bad_files_are_rejected_and_the_batch_goes_on(course: CourseConfig, tmp_path: Path) -> None:
    src = tmp_path / "inbox"
    put(src / "ivanova" / "lesson25.ipynb", notebook("good"))
    put(src / "petrov" / "notes.txt", b"my answers")
    put(src / "petrov" / "lesson25.ipynb", notebook("good-p"))
    put(src / "sidorova_lesson25.ipynb", notebook("x")[:500])  # truncated upload
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": []}]}
    put(src / "kuznetsov_lesson25.ipynb", json.dumps(v3).encode())
    empty = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}
    put(src / "smirnov_lesson25.ipynb", json.dumps(empty).encode())
    prose = json.loads(notebook("m"))
    prose["cells"] = [c for c in prose["cells"] if c["cell_type"] == "markdown"]
    put(src / "orlov_lesson25.ipynb", json.dumps(prose).encode())
    bad = json.loads(notebook("b"))
    bad["cells"][1]["cell_type"] = "bogus"
    put(src / "belova_lesson25.ipynb", json.dumps(bad).encode())
    put(src / "huge_lesson25.ipynb", b"{" + b" " * (20 * 1024 * 1024 + 10) + b"}")
    put(src / "lesson25.ipynb", notebook("nobody"))
    put(src / "ivanova" / ".ipynb_checkpoints" / "lesson25-checkpoint.ipynb", notebook("old"))
    (src / "volkov").mkdir()
    (src / "volkov" / "lesson25.ipynb").symlink_to(src / "ivanova" / "lesson25.ipynb")

    report = collect(course, "lesson25", src)

    assert sorted(s.student for s in report.stored) == ["ivanova", "petrov"]
    assert (current(course, "ivanova") / "lesson25.ipynb").read_bytes() == notebook("good")
    assert "not a notebook" in rejected(report, "notes.txt")
    assert "invalid JSON (line" in rejected(report, "sidorova_lesson25.ipynb")
    assert "nbformat 3 notebook: open and save it in Jupyter 4+" in rejected(report, "kuznetsov")
    assert "empty notebook (no cells)" in rejected(report, "smirnov_lesson25.ipynb")
    assert "empty notebook (no code cells)" in rejected(report, "orlov_lesson25.ipynb")
    assert "invalid nbformat at cells/1" in rejected(report, "belova_lesson25.ipynb")
    assert "larger than 20 MB" in rejected(report, "huge_lesson25.ipynb")
    assert "no student id" in rejected(report, str(src / "lesson25.ipynb"))
    assert "hidden or system" in rejected(report, ".ipynb_checkpoints")
    assert "symbolic link" in rejected(report, "volkov")
    for entry in report.rejected:
        assert str(entry).startswith(entry.path + ": ") and "\n" not in str(entry)
    assert not (course.root / "submitted" / "sidorova").exists()
    assert leftovers(course) == []
    assert "2 stored" in report.summary() and "8 rejected" in report.summary()


def test_zip_bombs_and_unsafe_entries(course: CourseConfig, tmp_path: Path) -> None:
    archive = tmp_path / "lms.zip"
    zeros = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ivanova_lesson25.ipynb", notebook("i"))
        with zf.open("smirnov_lesson25.ipynb", "w") as fh:  # 150 MB of zeros
            for _ in range(150):
                fh.write(zeros)
        zf.writestr("orlov_lesson25.ipynb", zeros * 5)  # under 20 MB, ratio ~1000:1
        zf.writestr("../evil.ipynb", notebook("evil"))
        zf.writestr("/abs.ipynb", notebook("abs"))
        zf.writestr("petrov/../../evil2.ipynb", notebook("evil"))
        link = zipfile.ZipInfo("kuznetsov_lesson25.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("sidorova\x01_lesson25.ipynb", notebook("s"))
        zf.writestr("petrov_lesson25.ipynb", notebook("p"))
    assert archive.stat().st_size < 2 * 1024 * 1024

    report = collect(course, "lesson25", archive)

    assert sorted(s.student for s in report.stored) == ["ivanova", "petrov"]
    assert "larger than 20 MB" in rejected(report, "smirnov_lesson25.ipynb")
    assert "zip bomb" in rejected(report, "smirnov_lesson25.ipynb")
    assert "compression ratio" in rejected(report, "orlov_lesson25.ipynb")
    assert "path traversal" in rejected(report, ":../evil.ipynb")
    assert "path traversal" in rejected(report, "evil2.ipynb")
    assert "absolute path" in rejected(report, ":/abs.ipynb")
    assert "symbolic link" in rejected(report, "kuznetsov")
    assert "control or NUL" in rejected(report, "sidorova")
    assert not (tmp_path / "evil.ipynb").exists() and not Path("/abs.ipynb").exists()
    assert sorted(p.name for p in (course.root / "submitted").iterdir()) == [
        ".collect.lock",
        "ivanova",
        "petrov",
    ]


def test_zip_over_the_total_limit_is_refused_whole(
    course: CourseConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake, "MAX_ZIP_TOTAL_BYTES", 50_000)
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ivanova_lesson25.ipynb", notebook("i"))
        zf.writestr("petrov_lesson25.ipynb", notebook("p"))
    with pytest.raises(IntakeError, match=r"big\.zip: declares .* refusing the whole zip"):
        collect(course, "lesson25", archive)
    assert not current(course, "ivanova").exists()


def test_corrupt_zip_is_a_clear_error(course: CourseConfig, tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("ivanova_lesson25.ipynb", notebook("i"))
    broken = tmp_path / "broken.zip"
    broken.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(IntakeError, match=r"broken\.zip: not a readable zip.*nothing collected"):
        collect(course, "lesson25", broken)
    assert not (course.root / "submitted" / "ivanova").exists()


def test_damaged_zip_entry_is_rejected_alone(course: CourseConfig, tmp_path: Path) -> None:
    archive = tmp_path / "lms.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("ivanova_lesson25.ipynb", notebook("i"))
        zf.writestr("petrov_lesson25.ipynb", notebook("p"))
    data = bytearray(archive.read_bytes())
    offset = data.index(b"answer i")
    data[offset : offset + 8] = b"ANSWER I"  # content no longer matches its CRC
    archive.write_bytes(bytes(data))
    report = collect(course, "lesson25", archive)
    assert [s.student for s in report.stored] == ["petrov"]
    assert "damaged zip entry" in rejected(report, "ivanova_lesson25.ipynb")


# --------------------------------------------------------------------------- attempts


def test_resubmission_is_kept_as_an_attempt(course: CourseConfig, tmp_path: Path) -> None:
    put(tmp_path / "one" / "ivanova_lesson25.ipynb", notebook("v1"), T1)
    first = collect(course, "lesson25", tmp_path / "one")
    assert [s.attempt for s in first.stored] == [1]

    put(tmp_path / "two" / "ivanova_lesson25.ipynb", notebook("v2"), T2)
    second = collect(course, "lesson25", tmp_path / "two")

    assert [(s.attempt, s.current) for s in second.stored] == [(2, True)]
    assert "replaces attempt 1" in second.stored[0].note
    assert (current(course, "ivanova") / "lesson25.ipynb").read_bytes() == notebook("v2")
    old = attempt_dir(course, "ivanova", 1)
    assert (old / "lesson25.ipynb").read_bytes() == notebook("v1")
    assert (old / "timestamp.txt").read_text() == format_nbgrader_timestamp(T1)
    assert record(old)["attempt"] == 1 and record(current(course, "ivanova"))["attempt"] == 2


def test_identical_resubmission_is_unchanged(course: CourseConfig, tmp_path: Path) -> None:
    put(tmp_path / "one" / "ivanova_lesson25.ipynb", notebook("v1"), T1)
    collect(course, "lesson25", tmp_path / "one")
    put(tmp_path / "two" / "ivanova" / "lesson25.ipynb", notebook("v1"), T2)
    report = collect(course, "lesson25", tmp_path / "two")
    assert report.stored == [] and [u.attempt for u in report.unchanged] == [1]
    assert not (course.root / "submitted" / ".attempts").exists()
    assert "1 unchanged" in report.summary()


def test_older_submission_does_not_replace_the_current(
    course: CourseConfig, tmp_path: Path
) -> None:
    put(tmp_path / "new" / "ivanova_lesson25.ipynb", notebook("new"), T2)
    collect(course, "lesson25", tmp_path / "new")
    put(tmp_path / "old" / "ivanova_lesson25.ipynb", notebook("old"), T1)
    report = collect(course, "lesson25", tmp_path / "old")
    assert [(s.attempt, s.current) for s in report.stored] == [(2, False)]
    assert "older" in report.stored[0].note
    assert (current(course, "ivanova") / "lesson25.ipynb").read_bytes() == notebook("new")
    assert (attempt_dir(course, "ivanova", 2) / "lesson25.ipynb").read_bytes() == notebook("old")
    assert "1 stored (1 as older attempts)" in report.summary()


def test_duplicate_student_ids_in_one_batch(course: CourseConfig, tmp_path: Path) -> None:
    src = tmp_path / "inbox"
    older = put(src / "ivanova" / "lesson25.ipynb", notebook("older"), T1)
    newer = put(src / "ivanova_lesson25.ipynb", notebook("newer"), T2)
    report = collect(course, "lesson25", src)

    assert (current(course, "ivanova") / "lesson25.ipynb").read_bytes() == notebook("newer")
    assert (attempt_dir(course, "ivanova", 1) / "lesson25.ipynb").read_bytes() == notebook("older")
    [warning] = report.warnings
    assert str(older) in warning and str(newer) in warning and "newest" in warning
    assert f"the newest, {newer}" in warning
    assert {(s.current, s.path.read_bytes() == notebook("newer")) for s in report.stored} == {
        (True, True),
        (False, False),
    }


def test_renamed_notebook_is_stored_under_the_released_name(
    course: CourseConfig, tmp_path: Path
) -> None:
    put(tmp_path / "in" / "petrov" / "Copy of lesson25 (1).ipynb", notebook("p"))
    report = collect(course, "lesson25", tmp_path / "in")
    [stored] = report.stored
    assert stored.path == current(course, "petrov") / "lesson25.ipynb"
    assert stored.path.read_bytes() == notebook("p")
    assert "renamed notebook: 'Copy of lesson25 (1).ipynb' stored as lesson25.ipynb" in stored.note
    assert record(current(course, "petrov"))["original_name"] == "Copy of lesson25 (1).ipynb"
    assert sorted(p.name for p in current(course, "petrov").iterdir()) == [
        "lesson25.ipynb",
        "submission.json",
        "timestamp.txt",
    ]


def test_roster_and_content_warnings(course: CourseConfig, tmp_path: Path) -> None:
    src = tmp_path / "in"
    put(src / "stranger_lesson25.ipynb", notebook("s"))
    put(src / "ivanova_lesson25.ipynb", RELEASED.read_bytes())
    other = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "id": "a1",
                "cell_type": "code",
                "metadata": {},
                "source": "print(1)",
                "outputs": [],
                "execution_count": None,
            }
        ],
    }
    put(src / "petrov_lesson25.ipynb", json.dumps(other).encode())
    report = collect(course, "lesson25", src)
    assert len(report.stored) == 3
    text = "\n".join(report.warnings)
    assert "stranger (from" in text and "not on the course roster" in text
    assert "ivanova_lesson25.ipynb: identical to the released notebook" in text
    assert "petrov_lesson25.ipynb: has none of the nbgrader cells" in text


# --------------------------------------------------------------------------- atomicity


@pytest.mark.parametrize("crash_at", ["archiving", "placing"])
def test_a_crash_mid_store_loses_nothing_and_is_recovered(
    course: CourseConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_at: str
) -> None:
    put(tmp_path / "one" / "ivanova_lesson25.ipynb", notebook("v1"), T1)
    collect(course, "lesson25", tmp_path / "one")
    put(tmp_path / "two" / "ivanova_lesson25.ipynb", notebook("v2"), T2)

    real_replace = os.replace
    fatal = (
        attempt_dir(course, "ivanova", 1) if crash_at == "archiving" else current(course, "ivanova")
    )

    def crash(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == fatal:
            raise OSError("simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        collect(course, "lesson25", tmp_path / "two")
    monkeypatch.setattr(os, "replace", real_replace)

    # v1 is intact (current, or already among the attempts); v2 is complete in staging
    v1 = (
        current(course, "ivanova") if crash_at == "archiving" else attempt_dir(course, "ivanova", 1)
    )
    assert (v1 / "lesson25.ipynb").read_bytes() == notebook("v1")
    [staged] = (course.root / "submitted" / ".staging").iterdir()
    assert (staged / "lesson25.ipynb").read_bytes() == notebook("v2")

    report = collect(course, "lesson25", tmp_path / "one")  # any later run finishes the job
    assert any("recovered" in w for w in report.warnings)
    assert (current(course, "ivanova") / "lesson25.ipynb").read_bytes() == notebook("v2")
    assert (attempt_dir(course, "ivanova", 1) / "lesson25.ipynb").read_bytes() == notebook("v1")
    assert record(current(course, "ivanova"))["attempt"] == 2
    assert [u.attempt for u in report.unchanged] == [1]  # v1 from "one" is already kept
    assert leftovers(course) == []


def test_a_submission_without_a_record_is_kept_as_an_attempt(
    course: CourseConfig, tmp_path: Path
) -> None:
    folder = current(course, "ivanova")  # as `nbgrader collect` leaves it: no submission.json
    put(folder / "lesson25.ipynb", notebook("nbgrader"))
    (folder / "timestamp.txt").write_text(format_nbgrader_timestamp(T1))
    put(tmp_path / "in" / "ivanova_lesson25.ipynb", notebook("new"), T2)
    report = collect(course, "lesson25", tmp_path / "in")
    assert [s.attempt for s in report.stored] == [2]
    assert "replaces attempt 1" in report.stored[0].note
    old = attempt_dir(course, "ivanova", 1)
    assert (old / "lesson25.ipynb").read_bytes() == notebook("nbgrader")
    assert sorted(p.name for p in old.iterdir()) == ["lesson25.ipynb", "timestamp.txt"]


def test_incomplete_staging_is_discarded(course: CourseConfig, tmp_path: Path) -> None:
    staging = course.root / "submitted" / ".staging" / "collect-xyz"
    staging.mkdir(parents=True)
    (staging / "lesson25.ipynb").write_bytes(b"half")
    put(tmp_path / "in" / "ivanova_lesson25.ipynb", notebook("i"))
    report = collect(course, "lesson25", tmp_path / "in")
    assert len(report.stored) == 1 and not report.warnings
    assert leftovers(course) == []
    assert re.fullmatch(r"[0-9a-f]{64}", report.stored[0].sha256)
