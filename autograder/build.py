"""The student version of every chapter (``chapters/``) and the HTML book.

``chapters/NN_name.ipynb`` is exactly what ``nbgrader generate_assignment`` makes of the
source notebook — stubs and visible tests, no solutions, no hidden tests, no outputs — and it
is what both the student and the book see.

The book shows those notebooks *with the figures the reference solution draws*. Executing a
student notebook would only hit the stubs' ``NotImplementedError``, so instead the source
notebook is executed, turned into the student version by nbgrader with outputs kept, and its
outputs are placed in Jupyter Book's own execution cache (jupyter-cache) under the student
notebook. ``jupyter-book build`` then finds every chapter in the cache and executes nothing;
a chapter missing from the cache would be executed, fail on its stubs and, because the book
is built with warnings as errors, fail the build loudly.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from nbclient import NotebookClient

from autograder.course import (
    CHAPTERS,
    REPO,
    activate_grading_environment,
    assignments,
    grading_environment,
    nbgrader_config,
    write_sources,
)
from descent.sliders import STATIC_FRAMES_ENV

BOOK_CACHE = REPO / "_build" / ".jupyter_cache"
#: Seconds a source notebook may take to execute for the book.
EXECUTION_TIMEOUT = 600
#: Everything a chapter's rendered outputs depend on besides its own notebooks.
_FINGERPRINT_GLOBS = ("solutions/*.py", "descent/*.py", "autograder/checks.py")


def generate_student_versions(
    course_dir: Path, selected: list[str] | None = None, *, keep_outputs: bool = False
) -> dict[str, nbformat.NotebookNode]:
    """Run ``nbgrader generate_assignment`` on the source notebooks in ``course_dir``.

    With ``keep_outputs`` the source notebooks are executed first and nbgrader keeps their
    outputs, except in answer and test cells (those could reveal the solution or a hidden
    test's traceback). Returns the student notebooks by assignment.
    """
    from nbgrader.apps import NbGraderAPI

    activate_grading_environment()
    chosen = write_sources(course_dir, selected)
    if keep_outputs:
        for assignment in chosen:
            _execute_in_place(course_dir / "source" / assignment / f"{assignment}.ipynb")
    config = nbgrader_config(course_dir)
    config.ClearOutput.enabled = not keep_outputs
    api = NbGraderAPI(config=config)
    students = {}
    for assignment in chosen:
        result = api.generate_assignment(assignment, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(
                f"nbgrader generate_assignment failed for {assignment}:\n"
                f"{result.get('log', '')}\n{result.get('error', '')}"
            )
        released = course_dir / "release" / assignment / f"{assignment}.ipynb"
        notebook = nbformat.read(released, as_version=4)
        if keep_outputs:
            _clear_graded_outputs(notebook)
        students[assignment] = notebook
    return students


def _execute_in_place(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=EXECUTION_TIMEOUT,
        kernel_name="python3",
        record_timing=False,
        store_widget_state=False,
        resources={"metadata": {"path": str(CHAPTERS)}},
    )
    client.execute(env=grading_environment() | {STATIC_FRAMES_ENV: "1"})
    nbformat.write(notebook, path)


def _clear_graded_outputs(notebook: nbformat.NotebookNode) -> None:
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (meta.get("grade") or meta.get("solution")):
            cell.outputs = []


def write_chapters(selected: list[str] | None = None) -> list[Path]:
    """Regenerate ``chapters/`` from the source notebooks; returns the files written."""
    with tempfile.TemporaryDirectory(prefix="descent-generate-") as scratch:
        students = generate_student_versions(Path(scratch), selected)
    CHAPTERS.mkdir(exist_ok=True)
    written = []
    for assignment, notebook in students.items():
        path = CHAPTERS / f"{assignment}.ipynb"
        nbformat.write(notebook, path)
        written.append(path)
    return written


def fingerprint(assignment: str) -> str:
    """A hash of everything the book's outputs for ``assignment`` are computed from."""
    digest = hashlib.sha256()
    files = [REPO / "solutions" / "notebooks" / f"{assignment}.md"]
    files += sorted(p for pattern in _FINGERPRINT_GLOBS for p in REPO.glob(pattern))
    for path in files:
        digest.update(path.relative_to(REPO).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def prime_book_cache(selected: list[str] | None = None) -> list[str]:
    """Put the reference outputs of each chapter into the book's execution cache.

    Chapters whose cache entry is current (same fingerprint) are left alone. Returns the
    assignments that were executed.
    """
    cache = get_cache(BOOK_CACHE)
    stale = []
    for assignment in selected or assignments():
        chapter = nbformat.read(CHAPTERS / f"{assignment}.ipynb", as_version=4)
        try:
            record = cache.match_cache_notebook(chapter)
        except KeyError:
            stale.append(assignment)
            continue
        if record.description != fingerprint(assignment):
            stale.append(assignment)
    if not stale:
        return []
    with tempfile.TemporaryDirectory(prefix="descent-book-") as scratch:
        executed = generate_student_versions(Path(scratch), stale, keep_outputs=True)
    for assignment, rendered in executed.items():
        path = CHAPTERS / f"{assignment}.ipynb"
        chapter = nbformat.read(path, as_version=4)
        _copy_outputs(rendered, chapter, assignment)
        cache.cache_notebook_bundle(
            CacheBundleIn(nb=chapter, uri=str(path)),
            check_validity=False,
            overwrite=True,
            description=fingerprint(assignment),
        )
    return stale


def _copy_outputs(
    source: nbformat.NotebookNode, target: nbformat.NotebookNode, assignment: str
) -> None:
    if [c.source for c in source.cells] != [c.source for c in target.cells]:
        raise RuntimeError(
            f"chapters/{assignment}.ipynb is out of date with its source notebook: "
            "run `python -m autograder generate` and commit the result"
        )
    for rendered, cell in zip(source.cells, target.cells, strict=True):
        if cell.cell_type == "code":
            cell.outputs = rendered.outputs
            cell.execution_count = rendered.execution_count


def build_book() -> Path:
    """Prime the cache, then run ``jupyter-book build`` with warnings as errors."""
    prime_book_cache()
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(REPO), "--warningiserror", "--keep-going"]
    subprocess.run(command, check=True, cwd=REPO)
    return REPO / "_build" / "html"
