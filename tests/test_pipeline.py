"""The source → student version → book pipeline keeps its promises.

chapters/ is exactly what nbgrader generates from solutions/notebooks, holds no solution or
hidden test, and every source notebook follows the course's nbgrader conventions.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

import solutions
from autograder.build import generate_student_versions
from autograder.checks import CHECKS
from autograder.course import CHAPTERS, REPO, assignments, read_source
from tests.conftest import solution_lines, student_notebook

HIDDEN_REGION = re.compile(r"### BEGIN HIDDEN TESTS\n(?P<body>.*?)### END HIDDEN TESTS", re.DOTALL)
CHECK_CALL = re.compile(r'^from autograder\.checks import check\ncheck\("(\w+)", (\w+)\)\n$')


def _cells(assignment: str, kind: str) -> list[nbformat.NotebookNode]:
    """Answer cells (kind='solution') or graded test cells (kind='test') of a source."""
    cells = []
    for cell in read_source(assignment).cells:
        meta = cell.metadata.get("nbgrader", {})
        if kind == "solution" and meta.get("solution"):
            cells.append(cell)
        if kind == "test" and meta.get("grade") and not meta.get("solution"):
            cells.append(cell)
    return cells


@pytest.mark.slow
def test_committed_chapters_are_what_nbgrader_generates(tmp_path: Path) -> None:
    """Regenerating chapters/ from the sources reproduces the committed files exactly."""
    generated = generate_student_versions(tmp_path)
    committed = sorted(p.stem for p in CHAPTERS.glob("*.ipynb"))
    assert committed == sorted(generated), (
        "chapters/ and solutions/notebooks list different chapters"
    )
    for assignment, notebook in generated.items():
        expected = json.loads(nbformat.writes(notebook))
        actual = json.loads((CHAPTERS / f"{assignment}.ipynb").read_text())
        assert actual == expected, (
            f"chapters/{assignment}.ipynb is stale: run `python -m autograder generate`"
        )


def test_chapters_hold_only_student_notebooks() -> None:
    """chapters/ contains notebooks only: no reference module or other file."""
    stray = [p.name for p in CHAPTERS.iterdir() if p.suffix != ".ipynb"]
    assert stray == []


@pytest.mark.parametrize("assignment", assignments())
def test_student_version_has_no_solution_or_hidden_test(assignment: str) -> None:
    """No solution line, solution marker, hidden test or reference import reaches students."""
    text = (CHAPTERS / f"{assignment}.ipynb").read_text()
    markers = ["BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "autograder"]
    for marker in [*markers, "import solutions", "from solutions"]:
        assert marker not in text, f"{marker!r} found in chapters/{assignment}.ipynb"
    student_sources = "\n".join(cell.source for cell in student_notebook(assignment).cells)
    for grade_id, lines in solution_lines(assignment).items():
        leaked = [line for line in lines if line in student_sources]
        assert not leaked, f"{grade_id}: solution lines in the student version: {leaked}"


@pytest.mark.parametrize("assignment", assignments())
def test_student_version_has_no_outputs(assignment: str) -> None:
    """The committed student notebooks are stripped: no outputs, no execution counts."""
    for cell in student_notebook(assignment).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("assignment", assignments())
def test_each_answer_has_a_graded_test_with_a_hidden_check(assignment: str) -> None:
    """Answer `x` pairs with test `correct_x`: explicit points, a docstring, a hidden check."""
    answers = {c.metadata["nbgrader"]["grade_id"] for c in _cells(assignment, "solution")}
    tests = {c.metadata["nbgrader"]["grade_id"]: c for c in _cells(assignment, "test")}
    assert answers, f"{assignment} has no exercise"
    assert {f"correct_{a}" for a in answers} == set(tests)
    for grade_id, cell in tests.items():
        exercise = grade_id.removeprefix("correct_")
        assert cell.metadata["nbgrader"].get("points", 0) > 0, f"{grade_id}: no points"
        first_line = cell.source.splitlines()[0]
        assert first_line.startswith('"""') and first_line.endswith('"""'), (
            f"{grade_id} must open with a one-line docstring"
        )
        hidden = HIDDEN_REGION.search(cell.source)
        assert hidden, f"{grade_id}: no hidden test region"
        call = CHECK_CALL.match(hidden.group("body"))
        assert call, f"{grade_id}: the hidden region must be exactly the check(...) call"
        assert call.groups() == (exercise, exercise)
        assert exercise in CHECKS
        if exercise in solutions.__all__:
            assert callable(getattr(solutions, exercise))


def test_grade_ids_are_unique_across_the_course() -> None:
    """Every grade_id appears once per notebook and exercise names are not reused."""
    seen: dict[str, str] = {}
    for assignment in assignments():
        for cell in read_source(assignment).cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id and (
                cell.metadata["nbgrader"].get("solution") or grade_id.startswith("correct_")
            ):
                assert grade_id not in seen, f"{grade_id} in {assignment} and {seen.get(grade_id)}"
                seen[grade_id] = assignment


def test_toc_lists_every_chapter_in_order() -> None:
    """_toc.yml lists every chapter, in chapter order."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [entry["file"] for entry in toc["chapters"]]
    assert files == [f"chapters/{a}" for a in assignments()]


def test_source_notebooks_are_myst_text_without_outputs() -> None:
    """The one notebook format for sources: MyST Markdown; no .ipynb hides in solutions/."""
    assert not list((REPO / "solutions").rglob("*.ipynb"))
    for path in (REPO / "solutions" / "notebooks").glob("*.md"):
        header = path.read_text().split("---")[1]
        assert "format_name: myst" in header, path.name


def test_no_gradebook_or_absolute_paths_committed() -> None:
    """No gradebook.db is tracked, and no tracked text file holds this checkout's path."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked, "not a git checkout?"
    assert not [name for name in tracked if name.endswith("gradebook.db")]
    for name in tracked:
        path = REPO / name
        if path.suffix in {".ipynb", ".md", ".py", ".yml", ".toml", ".txt"} and path.exists():
            assert str(REPO) not in path.read_text(), f"absolute path in {name}"
