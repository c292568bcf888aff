"""Batch grading on a tiny course: scores in nbgrader's gradebook, late policy, idempotence,
and a SIGKILL in the middle of a batch followed by a re-run."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_course import submit

from autograder.config import load_config
from autograder.grade import grade, late_penalty
from autograder.gradebook import export_nbgrader_csv, open_gradebook


def _quiet(_: str) -> None:
    return None


def _totals(course: Path) -> dict[str, tuple[float, float]]:
    config = load_config(course)
    target = export_nbgrader_csv(config, course / "gradebook" / "grades.csv", "tiny")
    with target.open() as handle:
        return {
            row["student_id"]: (float(row["raw_score"]), float(row["score"]))
            for row in csv.DictReader(handle)
        }


def test_scores_late_policy_and_gradebook(released_tiny_course: Path) -> None:
    course = released_tiny_course
    submit(course, "alice", "42")
    submit(course, "bob", "41")
    submit(course, "carol", "42", timestamp="2026-12-20T12:00:00+00:00")  # 2 days late
    summary = grade(load_config(course), "tiny", log=_quiet)
    by_student = {r.student: r for r in summary.results}
    assert by_student["alice"].score == 4.0 and by_student["alice"].max_score == 5.0
    assert by_student["alice"].flags == ()
    bob = by_student["bob"]
    assert bob.score == pytest.approx(1.0)  # weight 1 of 4 passes
    failed = [c for cell in bob.cells for c in cell.checks if c.outcome == "failed"]
    assert [c.message for c in failed] == ["answer.txt holds '41', expected 42"]
    carol = by_student["carol"]
    assert carol.late_days == pytest.approx(1.5, abs=0.01)
    assert carol.late_penalty == pytest.approx(4.0 * 0.25 * 2) and carol.score == 2.0
    assert any(flag.startswith("late by 1.5 day") for flag in carol.flags)
    assert by_student["alice"].student_name == "Alice Liddell"
    # nbgrader's own export shows the same totals
    assert _totals(course) == {"alice": (4.0, 4.0), "bob": (1.0, 1.0), "carol": (4.0, 2.0)}
    with open_gradebook(load_config(course)) as gb:
        grade_row = gb.find_grade("why", "tiny", "tiny", "alice")
        assert grade_row.needs_manual_grade and grade_row.auto_score is None


def test_regrade_is_skipped_unless_forced_and_keeps_manual_scores(
    released_tiny_course: Path,
) -> None:
    course = released_tiny_course
    config = load_config(course)
    submit(course, "alice", "42")
    grade(config, "tiny", log=_quiet)
    with open_gradebook(config) as gb:
        gb.find_grade("why", "tiny", "tiny", "alice").manual_score = 1.0
        gb.db.commit()
    again = grade(config, "tiny", log=_quiet)
    assert again.graded == [] and again.skipped == ["alice"]
    forced = grade(config, "tiny", force=True, log=_quiet)
    assert forced.graded == ["alice"]
    with open_gradebook(config) as gb:
        assert gb.find_grade("why", "tiny", "tiny", "alice").manual_score == 1.0
        assert len(gb.assignment_submissions("tiny")) == 1
    submit(course, "alice", "41")  # new content is graded again without --force
    assert grade(config, "tiny", log=_quiet).graded == ["alice"]
    assert _totals(course)["alice"] == (1.0 + 1.0, 2.0)  # new auto score + kept manual score


def test_late_penalty_rule() -> None:
    assert late_penalty(10.0, 0.0, 0.1, 5) == 0.0
    assert late_penalty(10.0, 0.2, 0.1, 5) == 1.0  # a started day counts
    assert late_penalty(10.0, 2.5, 0.1, 5) == 3.0
    assert late_penalty(10.0, 6.0, 0.1, 5) == 10.0  # past the last accepted day
    assert late_penalty(10.0, 30.0, 0.1, 0) == 10.0  # capped at the score


def test_sigkill_mid_batch_then_rerun_grades_each_once(released_tiny_course: Path) -> None:
    course = released_tiny_course
    students = [f"s{i}" for i in range(4)]
    for student in students:
        submit(course, student, "42", extra="import time; time.sleep(2)\n")
    env = {**os.environ, "AUTOGRADER_ROOT": str(course)}
    command = [sys.executable, "-m", "autograder.cli", "grade", "tiny", "--workers", "1"]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    keys = course / "autograded"
    while time.monotonic() < deadline and not list(keys.glob("*/tiny/run/grading-key.txt")):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not list(keys.glob("*/tiny/result.json")), "killed before recording"
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    config = load_config(course)
    with open_gradebook(config) as gb:
        submissions = gb.assignment_submissions("tiny")
        assert sorted(s.student_id for s in submissions) == students
        for submission in submissions:
            assert submission.score == 4.0
    assert len(list(keys.glob("*/tiny/result.json"))) == len(students)
