"""A scratch class graded end to end through the instructor's command.

For every chapter one student hands in the reference answers (full marks) and one the
untouched stubs (0); for Chapter 1 a third gets one exercise wrong and loses exactly that
exercise's points. Grades come back through `python -m autograder autograde` as CSV.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.course import REPO, assignments
from tests.conftest import reference_answers, student_notebook, with_answers

pytestmark = pytest.mark.slow

WRONG_MSE_GRADIENT = '''def mse_gradient(X, y, w):
    """Forgets the factor 2 of the derivative of the square."""
    return X.T @ (X @ w - y) / len(y)
'''


def _hand_in(submitted: Path, student: str, assignment: str, notebook) -> None:
    folder = submitted / student / assignment
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{assignment}.ipynb")


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("class")
    submitted, course, out = root / "submitted", root / "course", root / "grades.csv"
    for assignment in assignments():
        _hand_in(
            submitted, "ada", assignment, with_answers(assignment, reference_answers(assignment))
        )
        _hand_in(submitted, "bob", assignment, student_notebook(assignment))
    first = assignments()[0]
    answers = reference_answers(first) | {"mse_gradient": WRONG_MSE_GRADIENT}
    _hand_in(submitted, "cyd", first, with_answers(first, answers))
    command = [
        sys.executable, "-m", "autograder", "autograde",
        "--submitted", str(submitted), "--out", str(out), "--course", str(course),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["student", "assignment", "score", "max_score"]
    return {(r["student"], r["assignment"]): r for r in rows}, course


@pytest.mark.parametrize("assignment", assignments())
def test_reference_answers_get_full_marks(graded_class, assignment: str) -> None:
    """The reference answers pasted into the stubs score the maximum."""
    row = graded_class[0][("ada", assignment)]
    assert float(row["max_score"]) > 0
    assert float(row["score"]) == float(row["max_score"])


@pytest.mark.parametrize("assignment", assignments())
def test_untouched_stubs_score_zero(graded_class, assignment: str) -> None:
    """A notebook handed in as released scores 0."""
    assert float(graded_class[0][("bob", assignment)]["score"]) == 0


def test_one_wrong_answer_loses_only_its_exercise(graded_class) -> None:
    """A wrong mse_gradient loses correct_mse_gradient's points and nothing else."""
    rows, course = graded_class
    first = assignments()[0]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission_notebook(first, first, "cyd")
        scores = {grade.name: (grade.score, grade.max_score) for grade in submission.grades}
    wrong_score, wrong_max = scores.pop("correct_mse_gradient")
    assert wrong_score == 0 and wrong_max > 0
    assert scores and all(score == maximum for score, maximum in scores.values())
    row = rows[("cyd", first)]
    assert float(row["score"]) == float(row["max_score"]) - wrong_max


def test_students_without_a_submission_score_zero(graded_class) -> None:
    """cyd handed in only Chapter 1: every other chapter is exported as 0."""
    rows = graded_class[0]
    for assignment in assignments()[1:]:
        assert float(rows[("cyd", assignment)]["score"]) == 0
