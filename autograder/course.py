"""Where the course's files live, and the nbgrader configuration that grades them.

The nbgrader *source* notebooks are kept as reviewable MyST Markdown (jupytext) in
``solutions/notebooks/NN_name.md``. Each one is an assignment of a single notebook, both
named ``NN_name``. nbgrader itself always works on a scratch course directory that this
module lays out, so the repository is never dirtied by a gradebook or generated files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jupytext
import nbformat
from traitlets.config import Config

REPO = Path(__file__).resolve().parent.parent
SOURCE_NOTEBOOKS = REPO / "solutions" / "notebooks"
CHAPTERS = REPO / "chapters"
COURSE_ID = "descent"

#: Seconds one cell may run during autograding before it is interrupted.
CELL_TIMEOUT = 60


def assignments() -> list[str]:
    """The course's assignments in chapter order (one per source notebook)."""
    return sorted(path.stem for path in SOURCE_NOTEBOOKS.glob("[0-9][0-9]_*.md"))


def read_source(assignment: str) -> nbformat.NotebookNode:
    """The nbgrader source notebook of ``assignment``, read from its MyST text."""
    path = SOURCE_NOTEBOOKS / f"{assignment}.md"
    if not path.exists():
        known = ", ".join(assignments())
        raise ValueError(f"unknown assignment {assignment!r}; known: {known}")
    notebook = jupytext.read(path)
    notebook.metadata.pop("jupytext", None)
    for index, cell in enumerate(notebook.cells):
        # Stable ids (jupytext draws random ones) keep the generated chapters reproducible.
        cell.id = f"{assignment}-{index:03d}"
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def write_sources(course_dir: Path, selected: list[str] | None = None) -> list[str]:
    """Lay the source notebooks out as nbgrader expects: ``source/<a>/<a>.ipynb``."""
    chosen = selected or assignments()
    for assignment in chosen:
        target = course_dir / "source" / assignment / f"{assignment}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(read_source(assignment), target)
    return chosen


def grading_environment() -> dict[str, str]:
    """Environment for nbgrader and the kernels it starts.

    nbgrader shells out to ``alembic``, which lives beside this Python; the hidden tests import
    :mod:`autograder.checks` (and through it the reference solutions) from the repository.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # One BLAS thread per kernel: graders run several kernels side by side, and a threaded
    # BLAS in each would oversubscribe the cores.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def activate_grading_environment() -> None:
    """Make this process (and so nbgrader and its kernels) use :func:`grading_environment`."""
    os.environ.update(grading_environment())


def nbgrader_config(course_dir: Path) -> Config:
    """The nbgrader configuration for a course directory (the one place it is set)."""
    config = Config()
    config.CourseDirectory.root = str(course_dir)
    config.CourseDirectory.course_id = COURSE_ID
    config.CourseDirectory.db_url = f"sqlite:///{course_dir / 'gradebook.db'}"
    # On a hub every server has DESCENT_EXCHANGE (hub/jupyterhub_config.py); elsewhere the
    # exchange is a folder of the course directory.
    config.Exchange.root = os.environ.get("DESCENT_EXCHANGE") or str(course_dir / "exchange")
    # A cell that runs too long is interrupted and graded as failed; a student's loop that
    # swallows KeyboardInterrupt must not make nbgrader drop the whole notebook.
    config.Execute.timeout = CELL_TIMEOUT
    config.Execute.interrupt_on_timeout = True
    config.Execute.raise_on_iopub_timeout = False
    # Submissions are untrusted (autograder/verify.py): tampered or duplicated nbgrader cells
    # are repaired and cells the screen flags never run; deleted test cells are put back; a
    # kernel that dies or ignores the interrupt is restarted; a cell's output is capped.
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, Execute, GetGrades

    from autograder.verify import HideTestTracebacks, ResilientExecute, SanitizeSubmission

    sanitize = Autograde.class_traits()["sanitize_preprocessors"].default()
    config.Autograde.sanitize_preprocessors = [
        *(step for step in sanitize if step is ClearOutput),
        SanitizeSubmission,
        *(step for step in sanitize if step is not ClearOutput),
    ]
    config.OverwriteCells.add_missing_cells = True
    run = Autograde.class_traits()["autograde_preprocessors"].default()
    config.Autograde.autograde_preprocessors = [
        ResilientExecute if step is Execute else step for step in run
    ]
    # Feedback goes to students: it must never show hidden tests, nor their tracebacks.
    config.GenerateFeedback.preprocessors = [
        GetGrades,
        ClearHiddenTests,
        HideTestTracebacks,
        CSSHTMLHeaderPreprocessor,
    ]
    return config
