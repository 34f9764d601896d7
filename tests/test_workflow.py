"""The instructor's workflow: release, collect, autograde in parallel, feedback, export.

A small class hands in the first chapter: ada the reference answers (full marks), bob the
untouched stubs (0), cyd one wrong exercise (loses exactly its points), dan an endless loop
in that exercise (interrupted by the timeout; loses the same points) and eve a file that is
not a notebook (failed, never stopping the others). It is graded through
`python -m autograder` as an instructor would; the grades are checked cell by cell in
nbgrader's gradebook, also after the run is killed with -9 half-way and started again.
The grading processes themselves are tested with stand-in tasks that die or hang.
"""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.utils import notebook_hash

from autograder import grading
from autograder.__main__ import main
from autograder.course import COURSE_ID, REPO, assignments
from tests.conftest import reference_answers, student_notebook, with_answers

FIRST = assignments()[0]
EXERCISE = next(iter(reference_answers(FIRST)))  # the first exercise of the first chapter
TEST_CELL = f"correct_{EXERCISE}"
WRONG = f"def {EXERCISE}(*args, **kwargs):\n    return 0.0\n"
HANG = "while True:\n    pass\n"  # before the answer: the interrupt leaves it undefined
CORRUPT = '{"cells": [ this is not a notebook'


def _cli(*args: object, timeout: float = 1500) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "autograder", *map(str, args)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _hand_in(folder: Path, student: str, notebook: nbformat.NotebookNode | str) -> Path:
    target = folder / student / FIRST
    target.mkdir(parents=True)
    if isinstance(notebook, str):
        (target / f"{FIRST}.ipynb").write_text(notebook)
    else:
        nbformat.write(notebook, target / f"{FIRST}.ipynb")
    return target


def _class(folder: Path, students: str = "ada bob cyd dan eve") -> Path:
    answers = reference_answers(FIRST)
    notebooks = {
        "ada": with_answers(FIRST, answers),
        "bob": student_notebook(FIRST),
        "cyd": with_answers(FIRST, answers | {EXERCISE: WRONG}),
        "dan": with_answers(FIRST, answers | {EXERCISE: HANG + answers[EXERCISE]}),
        "eve": CORRUPT,
    }
    for student in students.split():
        _hand_in(folder, student, notebooks[student])
    return folder


def _grades(course: Path) -> dict[str, dict[str, tuple]]:
    """Per student, per grade cell: (auto_score, max_score, needs_manual_grade)."""
    found = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        for student in gradebook.students:
            try:
                submitted = gradebook.find_submission_notebook(FIRST, FIRST, student.id)
            except MissingEntry:
                continue
            found[student.id] = {
                g.name: (g.auto_score, g.max_score, g.needs_manual_grade) for g in submitted.grades
            }
    return found


def _assert_class_graded_right(course: Path) -> dict[str, float]:
    """The class's grades, cell by cell; returns the expected CSV score per student."""
    grades = _grades(course)
    assert {"ada", "cyd", "eve"} <= set(grades) <= {"ada", "bob", "cyd", "dan", "eve"}
    assert TEST_CELL in grades["ada"], f"{FIRST} has no test cell {TEST_CELL}"
    for name, (score, maximum, manual) in grades["ada"].items():
        assert (score, manual) == (maximum, False), f"ada {name}"
    assert all(score == 0 for score, _, _ in grades.get("bob", {}).values())
    for student in ("cyd", "dan"):
        for name, (score, maximum, _) in grades.get(student, {}).items():
            assert score == (0 if name == TEST_CELL else maximum), f"{student} {name}"
    # eve's file is no notebook: nothing scored, every cell left for manual grading.
    assert all(score is None and manual for score, _, manual in grades["eve"].values())
    total = sum(maximum for _, maximum, _ in grades["ada"].values())
    wrong = total - grades["ada"][TEST_CELL][1]
    expected = {"ada": total, "bob": 0, "cyd": wrong, "dan": wrong, "eve": 0}
    return {student: score for student, score in expected.items() if student in grades}


def _csv(path: Path) -> dict[str, float]:
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and list(rows[0]) == ["student", "assignment", "score", "max_score"]
    return {row["student"]: float(row["score"]) for row in rows if row["assignment"] == FIRST}


def _markers(course: Path) -> list[Path]:
    return sorted((course / ".autograder" / "graded").rglob("*.json"))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
def test_a_class_through_collect_autograde_feedback_export(tmp_path: Path) -> None:
    """Grades are right cell by cell, an endless loop is interrupted, a corrupt notebook
    fails alone, a rerun grades only what changed, feedback hides the hidden tests and the
    CSV matches the gradebook."""
    course, folder = tmp_path / "course", _class(tmp_path / "handed_in")
    # ada's submission came through nbgrader's exchange, which leaves these two files.
    (folder / "ada" / FIRST / "timestamp.txt").write_text("2026-01-05 10:00:00.000000 UTC")
    (folder / "ada" / FIRST / "submission_secret.txt").write_text("s3cret")
    collected = _cli("collect", "--course", course, "--from", folder)
    assert collected.returncode == 0, collected.stderr
    assert "collected 5 submission(s)" in collected.stdout

    first = _cli(
        "autograde", "--course", course, "--jobs", 2, "--cell-timeout", 30,
        "--out", tmp_path / "a.csv",
    )  # fmt: skip
    assert first.returncode == 1, first.stdout + first.stderr  # eve failed
    assert "graded 4 submission(s), 1 failed" in first.stdout
    assert f"FAILED eve/{FIRST}: NotJSONError" in first.stdout
    timed_out = [line for line in first.stdout.splitlines() if "TIMED OUT dan/" in line]
    assert len(timed_out) == 1
    assert EXERCISE in timed_out[0].split(": ", 1)[1].split(" (")[0].split(", ")
    assert "5/5" in first.stderr  # the progress bar reached the last student
    expected = _assert_class_graded_right(course)
    assert _csv(tmp_path / "a.csv") == expected
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        stamp = gradebook.find_submission(FIRST, "ada").timestamp
        assert (stamp.year, stamp.month, stamp.day, stamp.hour) == (2026, 1, 5, 10)
    assert not (course / "autograded" / "eve").exists()

    again = _cli("autograde", "--course", course)
    assert "graded 0 submission(s), 1 failed" in again.stdout, again.stdout + again.stderr
    assert "4 already graded" in again.stdout

    feedback = _cli("feedback", "--course", course, "--release")
    assert feedback.returncode == 0, feedback.stdout + feedback.stderr
    assert "generated feedback for 4 submission(s)" in feedback.stdout
    for student in ("ada", "bob", "cyd", "dan"):
        html = (course / "feedback" / student / FIRST / f"{FIRST}.html").read_text()
        assert "HIDDEN TESTS" not in html and "autograder.checks" not in html
    cyd = (course / "feedback" / "cyd" / FIRST / f"{FIRST}.html").read_text()
    assert f"Score: {expected['cyd']:.1f} / {expected['ada']:.1f}" in cyd
    released = course / "exchange" / COURSE_ID / "feedback"
    assert sorted(p.name for p in released.iterdir()) == [
        f"{notebook_hash(secret='s3cret', notebook_id=FIRST)}.html"
    ]
    assert "released 1 to nbgrader's exchange; 3 were not submitted through it" in feedback.stdout

    # bob hands in again, now with the answers: only bob is graded again, and his grade
    # replaces the old one.
    resubmitted = tmp_path / "late"
    _hand_in(resubmitted, "bob", with_answers(FIRST, reference_answers(FIRST)))
    assert _cli("collect", "--course", course, "--from", resubmitted).returncode == 0
    regrade = _cli("autograde", "--course", course)
    assert "graded 1 submission(s), 1 failed" in regrade.stdout, regrade.stdout
    bob = _grades(course)["bob"]
    assert all(score == maximum for score, maximum, _ in bob.values())
    exported = _cli("export", "--course", course, "--out", tmp_path / "b.csv")
    assert exported.returncode == 0, exported.stderr
    assert _csv(tmp_path / "b.csv") == expected | {"bob": expected["ada"]}


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_grades(tmp_path: Path) -> None:
    """kill -9 after the first student is graded: the grading processes exit, the gradebook
    stays readable, and running again grades only the rest, ending with the right grades."""
    course, folder = tmp_path / "course", _class(tmp_path / "handed_in", "ada cyd eve")
    assert _cli("collect", "--course", course, "--from", folder).returncode == 0
    command = [sys.executable, "-m", "autograder", "autograde", "--course", str(course)]
    with (tmp_path / "out.txt").open("w") as out:
        run = subprocess.Popen([*command, "--jobs", "2"], cwd=REPO, stdout=out, stderr=out)
        deadline = time.monotonic() + 1200
        while not _markers(course) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = [
            int(p.name.split("-")[1]) for p in (course / ".autograder").glob("work/*/worker-*")
        ]
        graded_before_kill = len(_markers(course))
        run.kill()
        run.wait()
    assert run.returncode == -9, (tmp_path / "out.txt").read_text()
    assert 1 <= graded_before_kill <= 2
    assert len(workers) == 2
    deadline = time.monotonic() + 30
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(_alive, workers)), "grading processes outlived the killed run"
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    rerun = _cli("autograde", "--course", course, "--jobs", 1, "--out", tmp_path / "grades.csv")
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr  # eve still fails
    already = int(rerun.stdout.split(" with a timed-out cell, ")[1].split()[0])
    assert already >= graded_before_kill
    assert f"graded {2 - already} submission(s), 1 failed" in rerun.stdout
    assert _csv(tmp_path / "grades.csv") == _assert_class_graded_right(course)
    assert not list((course / ".autograder").glob("work/*"))


def _stand_in(marker: str):
    """Runner factory for the stand-in tasks: ("ok", n), ("die", n) or ("hang", n)."""

    def run(kind: str, number: str) -> dict:
        if kind == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == "hang":
            time.sleep(3600)
        return {"ok": True, "pid": os.getpid(), "marker": marker}

    return run


@pytest.mark.slow
def test_grading_processes_survive_a_task_that_dies_or_hangs() -> None:
    """A process killed by its task, or stuck past the limit, fails that task alone; a
    fresh process takes the next ones, and none is left running."""
    tasks = [("ok", "1"), ("hang", "2"), ("ok", "3"), ("die", "4"), ("ok", "5")]
    done: dict[tuple, dict] = {}
    grading._run_in_processes(
        tasks,
        1,
        "tests.test_workflow:_stand_in",
        {"marker": "m"},
        lambda task, outcome: done.setdefault(task, outcome),
        hard_limit=5,
        startup=300,
    )
    assert list(done) == tasks
    assert done[("hang", "2")]["why"] == "gave up after 5 s: the grading process was stuck"
    assert done[("die", "4")]["why"] == "the grading process died (exit code -9)"
    pids = [done[task]["pid"] for task in tasks if task[0] == "ok"]
    assert all(done[task]["marker"] == "m" for task in tasks if task[0] == "ok")
    assert len(set(pids)) == 3  # a fresh process after the stuck one and the dead one
    assert not any(map(_alive, pids))


@pytest.mark.slow
def test_collect_from_an_lms_zip(tmp_path: Path) -> None:
    """nbgrader's zip_collect files LMS-named notebooks by student; other files are listed
    as skipped; a later zip replaces only the students in it."""
    notebook = nbformat.writes(student_notebook(FIRST))
    archive = tmp_path / "downloads.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr(f"ada_LATE_123_456_{FIRST}-1.ipynb", notebook)
        handle.writestr(f"bob_{FIRST}.ipynb", notebook)
        handle.writestr(f"cyd/{FIRST}.ipynb", notebook)
        handle.writestr("dan_homework.ipynb", notebook)
        handle.writestr("instructions.pdf", b"%PDF")
    course = tmp_path / "course"
    result = _cli("collect", "--course", course, "--zip", archive)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"collected 3 submission(s) of {FIRST}: ada, bob, cyd" in result.stdout
    assert "SKIPPED downloads/dan_homework.ipynb" in result.stdout
    assert "SKIPPED downloads/instructions.pdf" in result.stdout
    submitted = course / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["ada", "bob", "cyd"]
    assert (submitted / "ada" / FIRST / f"{FIRST}.ipynb").read_text() == notebook

    later = tmp_path / "later.zip"
    with zipfile.ZipFile(later, "w") as handle:
        handle.writestr(f"bob_{FIRST}.ipynb", notebook.replace("NotImplementedError", "Oops"))
    assert _cli("collect", "--course", course, "--zip", later).returncode == 0
    assert "Oops" in (submitted / "bob" / FIRST / f"{FIRST}.ipynb").read_text()
    assert (submitted / "ada" / FIRST / f"{FIRST}.ipynb").read_text() == notebook


@pytest.mark.parametrize(
    ("name", "student"),
    [
        (f"ada_{FIRST}.ipynb", "ada"),
        (f"ada/{FIRST}.ipynb", "ada"),
        (f"ada_lovelace_{FIRST}.ipynb", "ada_lovelace"),
        (f"ada_LATE_12345_67890_{FIRST}-1.ipynb", "ada"),
        (f"s001_4411_{FIRST}.ipynb", "s001"),
        ("ada_homework.ipynb", None),
        (f"ada_{FIRST}.ipynb.bak", None),
    ],
)
def test_default_zip_pattern_reads_lms_file_names(name: str, student: str | None) -> None:
    """The default pattern finds the student and the notebook, or rejects the file."""
    info = grading._collector(grading.default_zip_regex()).collect(f"/x/extracted/zip/{name}")
    if student is None:
        assert info is None
    else:
        assert (info["student_id"], info["file_id"]) == (student, FIRST)


def test_timed_out_cells_are_named_by_grade_id_or_position(tmp_path: Path) -> None:
    """Cells with nbgrader's CellTimeoutError output are reported; others are not."""
    timeout = {"output_type": "error", "ename": "CellTimeoutError", "evalue": "", "traceback": []}
    other = {"output_type": "error", "ename": "ValueError", "evalue": "", "traceback": []}
    cells = [new_code_cell("a"), new_code_cell("b"), new_code_cell("c"), new_code_cell("d")]
    cells[0].outputs = [nbformat.from_dict(timeout)]
    cells[1].outputs = [nbformat.from_dict(other)]
    cells[2].outputs = [nbformat.from_dict(timeout)]
    cells[2].metadata["nbgrader"] = {"grade_id": "correct_gd_step"}
    nbformat.write(new_notebook(cells=cells), tmp_path / "graded.ipynb")
    assert grading._timed_out_cells(tmp_path) == ["cell 1", "correct_gd_step"]


def test_failure_reason_is_the_students_error_not_nbgraders_wrapper() -> None:
    """The summary names the cause (NotJSONError), not nbgrader's closing exception."""
    log = (
        "[ERROR] There was an error processing assignment\n"
        "    nbformat.reader.NotJSONError: Notebook does not appear to be JSON\n"
        "nbgrader.converters.base.NbGraderException: Please see the above traceback"
    )
    reason = grading._reason({"log": log, "error": "Traceback...\nNbGraderException: Please"})
    assert reason == "NotJSONError: Notebook does not appear to be JSON"


def test_summary_report_lists_every_failure_and_timeout() -> None:
    """Each failed and timed-out submission gets its own line under the counts."""
    summary = grading.Summary(
        graded=[("ada", "01_x"), ("dan", "01_x")],
        failed=[("eve", "01_x", "NotJSONError: no")],
        timed_out=[("dan", "01_x", "gd_step")],
        up_to_date=[("bob", "01_x")],
        log=Path("/c/autograde.log"),
    )
    lines = summary.report().splitlines()
    assert lines[0].startswith("graded 2 submission(s), 1 failed, 1 with a timed-out cell, 1 ")
    assert "  FAILED eve/01_x: NotJSONError: no" in lines
    assert any(line.startswith("  TIMED OUT dan/01_x: gd_step") for line in lines)
    assert lines[-1] == "details: /c/autograde.log"


def test_autograde_without_a_course_needs_a_csv() -> None:
    """The scratch course is deleted afterwards, so grades must go to --out."""
    with pytest.raises(SystemExit) as stopped:
        main(["autograde", "--submitted", "somewhere"])
    assert "--out" in str(stopped.value.code)
