"""Shared fixtures: the course's notebooks as students would hand them in."""

from __future__ import annotations

import functools
import re

import nbformat
import pytest

from autograder.course import CHAPTERS, assignments, read_source

_SOLUTION_REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.DOTALL)
_SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$\n?", re.MULTILINE)


def student_notebook(assignment: str) -> nbformat.NotebookNode:
    """The committed student version of ``assignment`` (stubs, visible tests)."""
    return nbformat.read(CHAPTERS / f"{assignment}.ipynb", as_version=4)


def reference_answers(assignment: str) -> dict[str, str]:
    """Answer-cell source by grade_id: the reference solution as a student would type it."""
    answers = {}
    for cell in read_source(assignment).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            answers[meta["grade_id"]] = _SOLUTION_MARKERS.sub("", cell.source)
    return answers


@functools.cache
def _solution_regions(assignment: str) -> dict[str, list[str]]:
    regions = {}
    for cell in read_source(assignment).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            inside = _SOLUTION_REGION.search(cell.source)
            assert inside, f"{meta['grade_id']}: answer cell without a solution region"
            lines = [line.strip() for line in inside.group(1).splitlines()]
            regions[meta["grade_id"]] = [line for line in lines if len(line) > 12]
    return regions


def solution_lines(assignment: str) -> dict[str, list[str]]:
    """The distinctive lines of each answer's solution region that students must not see.

    Only lines longer than 12 characters count (a bare ``return w`` could be a stub's too),
    and lines that an earlier chapter's answer also has are left out: later chapters may show
    earlier chapters' answers as given code.
    """
    earlier = assignments()[: assignments().index(assignment)]
    shown = {line for a in earlier for lines in _solution_regions(a).values() for line in lines}
    return {
        grade_id: [line for line in lines if line not in shown]
        for grade_id, lines in _solution_regions(assignment).items()
    }


def with_answers(assignment: str, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The student notebook with the given answer cells filled in (others left as stubs)."""
    notebook = student_notebook(assignment)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return notebook


@pytest.fixture(scope="session")
def all_assignments() -> list[str]:
    found = assignments()
    assert found, "no source notebooks found in solutions/notebooks"
    return found
