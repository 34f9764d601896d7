"""The built HTML book is the student's view with the reference's figures.

Needs the book built into _build/html (`make book`; `make test` builds it first).
"""

from __future__ import annotations

import html
import re

import pytest

from autograder.course import REPO, assignments
from tests.conftest import solution_lines

HTML = REPO / "_build" / "html"


def _page(assignment: str) -> str:
    path = HTML / "chapters" / f"{assignment}.html"
    assert path.exists(), f"{path} missing: build the book first (`make book`)"
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def _raw(assignment: str) -> str:
    return (HTML / "chapters" / f"{assignment}.html").read_text()


@pytest.mark.parametrize("assignment", assignments())
def test_page_shows_stubs_and_no_solution_or_hidden_test(assignment: str) -> None:
    """Stubs are on the page; solution lines, markers and hidden checks are not."""
    text = _page(assignment)
    assert "YOUR CODE HERE" in text
    for marker in ("BEGIN SOLUTION", "HIDDEN TESTS", "autograder", "from solutions"):
        assert marker not in text, f"{marker!r} on the {assignment} page"
    for grade_id, lines in solution_lines(assignment).items():
        leaked = [line for line in lines if line in text]
        assert not leaked, f"{grade_id}: solution lines on the page: {leaked}"


@pytest.mark.parametrize("assignment", assignments())
def test_page_carries_the_reference_figures_and_no_errors(assignment: str) -> None:
    """The reference run's figures are present and no cell output is an error."""
    raw = _raw(assignment)
    assert re.search(r'<img[^>]+src="[^"]*_images/', raw), f"no figure on the {assignment} page"
    assert "output traceback" not in raw, f"an error output on the {assignment} page"
    assert "Traceback (most recent call last)" not in _page(assignment)


def test_every_chapter_is_in_the_navigation() -> None:
    """The landing page links every chapter."""
    index = (HTML / "intro.html").read_text()
    for assignment in assignments():
        assert f"chapters/{assignment}.html" in index
