"""Run a class through nbgrader: release, collect, autograde, feedback and export.

Every step drives nbgrader's own API (:class:`nbgrader.apps.NbGraderAPI`, ``ZipCollectApp``
and the :class:`~nbgrader.api.Gradebook`) on a course directory: one the instructor keeps
(``--course``) or a scratch one. The directory is nbgrader's own layout plus two entries:

- ``autograde.log`` — everything nbgrader, the grading processes and the students' kernels
  print; the terminal shows only progress and a summary.
- ``.autograder/`` — ``graded/<student>/<assignment>.json`` records which submission (and which
  version of the tests) each grade comes from, so a rerun grades only what is new or changed;
  ``work/`` holds the grading processes' scratch course directories (safe to delete).

Autograding in parallel: each grading process has its own scratch course (the course's
``source/`` and a copy of its gradebook) and autogrades one submission at a time there with
nbgrader. This process is the only writer of the course's gradebook: as each submission
comes back it moves the autograded notebook into ``autograded/``, writes the grades and
comments in one go, then records the submission as graded. Killing the run loses at most the
submissions being graded at that moment; running it again grades them, and only them.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import importlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import wait
from pathlib import Path
from typing import IO, Any

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin

from autograder import verify
from autograder.course import (
    CELL_TIMEOUT,
    COURSE_ID,
    REPO,
    activate_grading_environment,
    assignments,
    nbgrader_config,
)

CSV_COLUMNS = ("student", "assignment", "score", "max_score")
#: Seconds a grading process may spend on one submission before it is killed (the
#: submission then fails). Notebooks run in well under a minute; this is for the pathological.
NOTEBOOK_TIMEOUT = 600
#: Extra seconds for a grading process's first task: it starts (imports nbgrader) first.
STARTUP_SECONDS = 120
LOG_NAME = "autograde.log"
STATE_DIR = ".autograder"
#: What a grade depends on besides the submission and the course's source notebook.
_GRADER_GLOBS = ("autograder/checks.py", "solutions/*.py", "descent/*.py")
_TIMEOUT_ERROR = "CellTimeoutError"  # the ename nbgrader's Execute gives a timed-out cell


def default_jobs() -> int:
    """Grading processes to use by default: one per core and one more, at most 5.

    A grading process leaves its core idle while its kernel starts and while nbgrader reads
    and writes notebooks and the gradebook; the extra process fills those gaps (on 2 cores,
    3 processes grade more notebooks per minute than 2: benchmarks/bench_autograde.py prints
    both). Each process and its kernel take about 300 MB.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    return min(cores + 1, 5)


@dataclass
class Summary:
    """What an autograde run did, for the closing report."""

    graded: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    #: Graded submissions with a cell interrupted by the timeout: (student, assignment, cells).
    timed_out: list[tuple[str, str, str]] = field(default_factory=list)
    #: Submissions skipped because their grade is current (same files, same tests).
    up_to_date: list[tuple[str, str]] = field(default_factory=list)
    #: What :func:`autograder.verify.enforce` did to graded submissions.
    findings: list[verify.Finding] = field(default_factory=list)
    log: Path | None = None

    def report(self) -> str:
        lines = [
            f"graded {len(self.graded)} submission(s), {len(self.failed)} failed, "
            f"{len(self.timed_out)} with a timed-out cell, "
            f"{len(self.up_to_date)} already graded (--regrade grades them again)"
        ]
        lines += [
            f"  FAILED {student}/{assignment}: {why}" for student, assignment, why in self.failed
        ]
        lines += [
            f"  TIMED OUT {student}/{assignment}: {cells} (interrupted at the cell timeout)"
            for student, assignment, cells in self.timed_out
        ]
        lines += [f"  {finding}" for finding in self.findings]
        if self.log is not None and (self.failed or self.timed_out):
            lines.append(f"details: {self.log}")
        return "\n".join(lines)


@dataclass
class Options:
    """How submissions are executed."""

    #: Seconds one cell may run before it is interrupted (and its test fails).
    cell_timeout: int = CELL_TIMEOUT
    #: Seconds a grading process may spend on one submission (with ``jobs`` > 1).
    notebook_timeout: int = NOTEBOOK_TIMEOUT


def _config(course_dir: Path, options: Options | None = None):
    config = nbgrader_config(course_dir)
    config.Execute.timeout = (options or Options()).cell_timeout
    return config


def _api(course_dir: Path, options: Options | None = None):
    from nbgrader.apps import NbGraderAPI

    activate_grading_environment()
    return NbGraderAPI(config=_config(course_dir, options))


def _gradebook(course_dir: Path) -> Gradebook:
    activate_grading_environment()
    return Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", COURSE_ID)


# --------------------------------------------------------------------------------------------
# release


def release(course_dir: Path, selected: list[str] | None = None) -> list[Path]:
    """Generate the student version of each assignment into ``course_dir/release``.

    This also records the assignments, their cells and checksums in the course's gradebook,
    which autograding needs. Returns the released notebooks.
    """
    from autograder.build import generate_student_versions

    chosen = selected or assignments()
    generate_student_versions(course_dir, chosen)
    return [course_dir / "release" / a / f"{a}.ipynb" for a in chosen]


def _released(course_dir: Path) -> set[str]:
    if not (course_dir / "gradebook.db").exists():
        return set()
    with _gradebook(course_dir) as gradebook:
        return {assignment.name for assignment in gradebook.assignments}


def _ensure_released(course_dir: Path, needed: set[str]) -> None:
    missing = sorted(
        a
        for a in needed
        if a not in _released(course_dir)
        or not (course_dir / "release" / a / f"{a}.ipynb").exists()
    )
    if missing:
        release(course_dir, missing)


# --------------------------------------------------------------------------------------------
# collect


def find_submissions(submitted: Path) -> list[tuple[str, str]]:
    """``(student, assignment)`` pairs laid out as ``submitted/<student>/<assignment>/``."""
    known = set(assignments())
    pairs = []
    for student_dir in sorted(p for p in submitted.iterdir() if _visible_dir(p)):
        for assignment_dir in sorted(p for p in student_dir.iterdir() if _visible_dir(p)):
            if assignment_dir.name not in known:
                raise ValueError(
                    f"{assignment_dir}: unknown assignment {assignment_dir.name!r}; "
                    f"expected one of {sorted(known)}"
                )
            pairs.append((student_dir.name, assignment_dir.name))
    return pairs


def _visible_dir(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".")


def collect_folder(course_dir: Path, folder: Path) -> list[tuple[str, str]]:
    """Copy ``folder/<student>/<assignment>/`` into the course's ``submitted/``.

    A student's earlier submission of the same assignment is replaced. Returns the pairs.
    """
    pairs = find_submissions(folder)
    with _course_lock(course_dir):
        for student, assignment in pairs:
            target = course_dir / "submitted" / student / assignment
            staging = target.with_name(f".{assignment}.collecting")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(folder / student / assignment, staging)
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    return pairs


def default_zip_regex(known: list[str] | None = None) -> str:
    """The file-name pattern ``collect --zip`` uses unless given ``--regex``.

    It reads ``<student>_<notebook>.ipynb`` and ``<student>/<notebook>.ipynb``, with the extras
    LMS downloads add: Canvas's ``ada_LATE_12345_67890_01_gradients-1.ipynb`` gives student
    ``ada``, notebook ``01_gradients``. Notebook names are the course's assignments.
    """
    names = "|".join(re.escape(name) for name in (known or assignments()))
    return (
        r"(?:.*/)?(?P<student_id>[^/]+?)(?:_LATE)?(?:_\d+)*[_/]"
        rf"(?P<file_id>{names})(?:-\d+)?\.ipynb$"
    )


@dataclass
class Collected:
    """What ``collect --zip`` took from an archive."""

    #: Students collected, by assignment.
    students: dict[str, list[str]] = field(default_factory=dict)
    #: Files in the archive the pattern did not match (or naming no known notebook).
    skipped: list[str] = field(default_factory=list)
    #: nbgrader's error per assignment, when zip_collect itself failed.
    errors: dict[str, str] = field(default_factory=dict)

    def report(self) -> str:
        lines = [
            f"collected {len(students)} submission(s) of {assignment}: {', '.join(students)}"
            for assignment, students in sorted(self.students.items())
        ]
        lines += [f"  SKIPPED {name}: file name not understood" for name in self.skipped]
        lines += [f"  FAILED {assignment}: {why}" for assignment, why in self.errors.items()]
        if self.skipped:
            lines.append("  (pass --regex to read other file names; see --help)")
        return "\n".join(lines)


def _collector(regex: str):
    from nbgrader.plugins import FileNameCollectorPlugin

    plugin = FileNameCollectorPlugin()
    plugin.named_regexp = regex
    return plugin


def collect_zip(
    course_dir: Path, archive: Path, assignment: str | None = None, regex: str | None = None
) -> Collected:
    """Collect the submissions in a zip downloaded from an LMS, with nbgrader's zip_collect.

    The archive is placed in ``downloaded/<assignment>/archive/`` and nbgrader's
    ``ZipCollectApp`` extracts it and files each notebook into
    ``submitted/<student>/<assignment>/`` by the named groups ``student_id`` and ``file_id``
    of ``regex`` (see :func:`default_zip_regex`), replacing earlier submissions of the same
    students. Without ``assignment``, every assignment with a notebook in the archive is
    collected.
    """
    regex = regex or default_zip_regex()
    known = set(assignments())
    if assignment is not None and assignment not in known:
        raise ValueError(f"unknown assignment {assignment!r}; known: {sorted(known)}")
    collected = Collected()
    with _course_lock(course_dir), _console(course_dir / LOG_NAME):
        chosen = [assignment] if assignment else _assignments_in_zip(archive, regex, known)
        if not chosen:
            raise ValueError(
                f"{archive}: no file name matches a notebook of the course ({sorted(known)}); "
                "pass --assignment, or --regex to read the file names"
            )
        _log(f"collect {archive} into {course_dir}: {', '.join(chosen)}")
        _ensure_released(course_dir, set(chosen))
        for name in chosen:
            _zip_collect(course_dir, archive, name, regex, collected)
    return collected


def _zip_collect(
    course_dir: Path, archive: Path, name: str, regex: str, collected: Collected
) -> None:
    """Run nbgrader's ZipCollectApp on ``archive`` for assignment ``name``."""
    from nbgrader.apps import ZipCollectApp
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    downloaded = course_dir / "downloaded" / name
    shutil.rmtree(downloaded / "archive", ignore_errors=True)
    (downloaded / "archive").mkdir(parents=True)
    shutil.copy(archive, downloaded / "archive" / archive.name)
    config = _config(course_dir)
    config.ZipCollectApp.force = True  # replace a student's earlier submission
    config.ZipCollectApp.strict = True  # another assignment's notebook is not this one's
    config.ExtractorPlugin.force = True
    config.FileNameCollectorPlugin.named_regexp = regex
    app = ZipCollectApp(config=config)
    app.coursedir = CourseDirectory(config=config)
    app.coursedir.assignment_id = name
    result = capture_log(app)
    # Which files named whom, by the same plugin and pattern nbgrader used.
    extracted = downloaded / "extracted"
    known, plugin, students = set(assignments()), _collector(regex), set()
    for path in sorted(p for p in extracted.rglob("*") if p.is_file()):
        info = plugin.collect(str(path))
        notebook = Path(info["file_id"]).stem if info else None
        if notebook not in known:
            relative = path.relative_to(extracted).as_posix()
            if relative not in collected.skipped:
                collected.skipped.append(relative)
        elif notebook == name:
            students.add(info["student_id"])
    if not result["success"]:
        collected.errors[name] = _reason(result)
        return
    collected.students[name] = sorted(
        s for s in students if (course_dir / "submitted" / s / name).is_dir()
    )


def _assignments_in_zip(archive: Path, regex: str, known: set[str]) -> list[str]:
    plugin = _collector(regex)
    found = set()
    with zipfile.ZipFile(archive) as handle:
        for member in handle.namelist():
            info = plugin.collect(f"/{archive.stem}/{member}")
            if info and Path(info["file_id"]).stem in known:
                found.add(Path(info["file_id"]).stem)
    return sorted(found)


# --------------------------------------------------------------------------------------------
# autograde


def _digest(paths: list[Path], root: Path, seed: str = "") -> str:
    digest = hashlib.sha256(seed.encode())
    for path in paths:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _grader_fingerprint(course_dir: Path, assignment: str) -> str:
    """A hash of what grades ``assignment``: its source and the hidden tests' code."""
    graders = sorted(p for pattern in _GRADER_GLOBS for p in REPO.glob(pattern))
    return _digest(_files(course_dir / "source" / assignment), course_dir) + _digest(graders, REPO)


def _marker(course_dir: Path, student: str, assignment: str) -> Path:
    return course_dir / STATE_DIR / "graded" / student / f"{assignment}.json"


def _up_to_date(gradebook: Gradebook, course_dir: Path, pair: tuple[str, str], fp: str) -> bool:
    student, assignment = pair
    marker = _marker(course_dir, student, assignment)
    if not marker.exists() or not (course_dir / "autograded" / student / assignment).is_dir():
        return False
    try:
        if json.loads(marker.read_text()).get("fingerprint") != fp:
            return False
        submission = gradebook.find_submission(assignment, student)
    except (ValueError, MissingEntry):
        return False
    return all(
        grade.auto_score is not None or grade.manual_score is not None
        for notebook in submission.notebooks
        for grade in notebook.grades
    )


class _ScratchGrader:
    """Autogrades one submission at a time in a scratch course directory of its own.

    The scratch course holds the course's ``source/`` and a copy of its gradebook; nbgrader
    writes only there. :meth:`grade` returns everything the course's gradebook needs.
    """

    def __init__(self, course_dir: str, scratch: str, gradebook: str, options: Options):
        self.course_dir, self.scratch, self.options = Path(course_dir), Path(scratch), options
        self.scratch.mkdir(parents=True)
        shutil.copytree(self.course_dir / "source", self.scratch / "source")
        shutil.copy(gradebook, self.scratch / "gradebook.db")
        self.api = _api(self.scratch, options)

    def grade(self, student: str, assignment: str) -> dict[str, Any]:
        source = self.course_dir / "submitted" / student / assignment
        inbox = self.scratch / "submitted" / student
        shutil.rmtree(inbox, ignore_errors=True)
        shutil.copytree(source, inbox / assignment)
        expected = inbox / assignment / f"{assignment}.ipynb"
        try:
            if not expected.exists():
                found = ", ".join(p.name for p in _files(inbox / assignment)) or "nothing"
                return _failure(f"no {expected.name} in the submission (found: {found})")
            result = self.api.autograde(assignment, student, force=True, create=True)
        finally:
            shutil.rmtree(inbox, ignore_errors=True)
        if not result["success"]:
            return _failure(_reason(result), result)
        # Re-check outside the kernel what passed in it (zeroes what was faked).
        findings = verify.enforce(
            self.scratch, assignment, student, timeout=self.options.cell_timeout
        )
        autograded = self.scratch / "autograded" / student / assignment
        outcome: dict[str, Any] = {
            "ok": True,
            "dir": str(autograded),
            "notebooks": {},
            "timed_out": _timed_out_cells(autograded),
            "findings": findings,
        }
        with Gradebook(f"sqlite:///{self.scratch / 'gradebook.db'}", COURSE_ID) as gradebook:
            submission = gradebook.find_submission(assignment, student)
            stamp = submission.timestamp
            outcome["timestamp"] = stamp.isoformat() if stamp else None
            for notebook in submission.notebooks:
                outcome["notebooks"][notebook.name] = {
                    "grades": {grade.name: grade.auto_score for grade in notebook.grades},
                    "comments": {c.name: c.auto_comment for c in notebook.comments},
                    "late_penalty": notebook.late_submission_penalty,
                }
        return outcome


def _failure(why: str, result: dict | None = None) -> dict[str, Any]:
    log = "" if result is None else f"{result.get('log', '')}\n{result.get('error', '')}"
    return {"ok": False, "why": why, "log": log}


_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Exit|Interrupt)): (.+)$")


def _reason(result: dict) -> str:
    """The student-specific cause of a failed nbgrader call, from its log and traceback.

    nbgrader ends every failure with a generic ``NbGraderException: Please see the above
    traceback``; the cause is the last other exception line (e.g. ``NotJSONError: ...``).
    """
    text = f"{result.get('log', '')}\n{result.get('error', '')}"
    if "SystemExit" in result.get("error", ""):  # an nbgrader app's fail(): its last error
        errors = [line[8:] for line in text.splitlines() if line.startswith("[ERROR] ")]
        if errors:
            return errors[-1][:300]
    causes = [
        f"{match[1]}: {match[2]}"
        for line in text.splitlines()
        if (match := _EXCEPTION_LINE.match(line.strip())) and match[1] != "NbGraderException"
    ]
    return causes[-1][:300] if causes else _last_line(result)


def _last_line(result: dict) -> str:
    text = (result.get("error") or result.get("log") or "unknown error").strip()
    return text.splitlines()[-1] if text else "unknown error"


def _timed_out_cells(folder: Path) -> list[str]:
    """Cells of the autograded notebooks in ``folder`` that were interrupted by the timeout."""
    cells = []
    for path in sorted(folder.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for index, cell in enumerate(notebook.cells):
            outputs = cell.get("outputs", [])
            if any(o.get("ename") == _TIMEOUT_ERROR for o in outputs):
                name = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
                cells.append(name)
    return cells


def _record(gradebook: Gradebook, student: str, assignment: str, outcome: dict) -> None:
    """Write one submission's autograde results into the course's gradebook.

    The same as nbgrader's own autograde writes: scores and comments of every cell, the late
    penalty, and a submission needing manual grading where there is a manual score or no
    automatic one. A failed submission keeps no stale automatic score: each grade is cleared
    and marked for manual grading.
    """
    gradebook.update_or_create_student(student)
    stamp = outcome.get("timestamp")
    submission = gradebook.update_or_create_submission(
        assignment, student, **({"timestamp": stamp} if stamp else {})
    )
    results = outcome.get("notebooks", {})
    for notebook in submission.notebooks:
        got = results.get(notebook.name, {})
        for grade in notebook.grades:
            grade.auto_score = got.get("grades", {}).get(grade.name)
            grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
        for comment in notebook.comments:
            comment.auto_comment = got.get("comments", {}).get(comment.name)
        notebook.late_submission_penalty = got.get("late_penalty")
    gradebook.db.commit()


def _install(course_dir: Path, trash: Path, student: str, assignment: str, result: Path) -> None:
    """Put an autograded folder in place of the student's previous one."""
    target = course_dir / "autograded" / student / assignment
    target.parent.mkdir(parents=True, exist_ok=True)
    _discard(target, trash)
    result.rename(target)


def _discard(folder: Path, trash: Path) -> None:
    if folder.exists():
        trash.mkdir(parents=True, exist_ok=True)
        doomed = trash / uuid.uuid4().hex
        folder.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=1))
    partial.replace(path)


@contextlib.contextmanager
def _course_lock(course_dir: Path) -> Iterator[None]:
    state = course_dir / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another autograder command is working on {course_dir}; wait for it to finish"
            ) from None
        yield


@contextlib.contextmanager
def _console(log: Path) -> Iterator[IO[str]]:
    """Send this process's (and its children's) output to ``log``; yield the terminal.

    nbgrader, SQLAlchemy and every kernel print warnings; the instructor sees progress and
    the summary only, and the rest is in the log.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    target = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)
    try:
        yield terminal
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        terminal.close()


def _progress(total: int, description: str, terminal: IO[str]):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="notebook", file=terminal, mininterval=0.5)


def _log(line: str) -> None:
    print(f"[{datetime.now():%Y-%m-%d %H:%M:%S}] {line}", file=sys.stderr, flush=True)


def autograde_course(
    course_dir: Path,
    selected: list[str] | None = None,
    *,
    students: list[str] | None = None,
    jobs: int | None = None,
    regrade: bool = False,
    options: Options | None = None,
) -> Summary:
    """Autograde what is in ``course_dir/submitted`` and is not graded yet.

    A submission is graded again when its files or the tests changed since it was graded, or
    with ``regrade``. ``jobs`` grading processes run at once (``1``: in this process).
    Assignments not yet released are released first.
    """
    options = options or Options()
    jobs = default_jobs() if jobs is None else max(1, jobs)
    summary = Summary(log=course_dir / LOG_NAME)
    submitted = course_dir / "submitted"
    pairs = find_submissions(submitted) if submitted.is_dir() else []
    pairs = [
        (s, a)
        for s, a in pairs
        if (not selected or a in selected) and (not students or s in students)
    ]
    with _course_lock(course_dir), _console(summary.log) as terminal:
        _log(f"autograde {course_dir}: {len(pairs)} submission(s), {jobs} process(es)")
        _ensure_released(course_dir, {a for _, a in pairs})
        work = course_dir / STATE_DIR / "work"
        shutil.rmtree(work, ignore_errors=True)  # scratch of an interrupted run
        run = work / uuid.uuid4().hex[:8]
        run.mkdir(parents=True)
        graders = {a: _grader_fingerprint(course_dir, a) for a in {a for _, a in pairs}}
        fingerprints = {
            (s, a): _digest(_files(submitted / s / a), submitted, graders[a]) for s, a in pairs
        }
        with _gradebook(course_dir) as gradebook:
            todo = []
            for pair in pairs:
                if not regrade and _up_to_date(gradebook, course_dir, pair, fingerprints[pair]):
                    summary.up_to_date.append(pair)
                else:
                    todo.append(pair)
            template = run / "gradebook.db"
            shutil.copy(course_dir / "gradebook.db", template)
            progress = _progress(len(todo), "autograde", terminal)

            def finish(pair: tuple[str, str], outcome: dict) -> None:
                _merge(course_dir, gradebook, run / "trash", pair, fingerprints[pair], outcome,
                       summary)  # fmt: skip
                progress.set_postfix_str("/".join(pair), refresh=False)
                progress.update()
                if not outcome["ok"]:
                    progress.write(f"FAILED {pair[0]}/{pair[1]}: {outcome['why']}", file=terminal)

            grader = {
                "course_dir": str(course_dir),
                "scratch": str(run),
                "gradebook": str(template),
                "options": options,
            }
            try:
                run_tasks(
                    todo,
                    jobs,
                    "autograder.grading:_autograde_runner",
                    grader,
                    finish,
                    options.notebook_timeout,
                )
            finally:
                progress.close()
        shutil.rmtree(run, ignore_errors=True)
        _log(summary.report())
    return summary


def _merge(
    course_dir: Path,
    gradebook: Gradebook,
    trash: Path,
    pair: tuple[str, str],
    fingerprint: str,
    outcome: dict,
    summary: Summary,
) -> None:
    """Bring one graded (or failed) submission into the course, then record it.

    The gradebook is written here only, in this process: one writer, one submission at a
    time; the submission counts as graded (``.autograder/graded``) once all is in place.
    """
    student, assignment = pair
    marker = _marker(course_dir, student, assignment)
    try:
        marker.unlink(missing_ok=True)
        if outcome["ok"]:
            _install(course_dir, trash, student, assignment, Path(outcome["dir"]))
        else:
            _discard(course_dir / "autograded" / student / assignment, trash)
        _record(gradebook, student, assignment, outcome)
    except Exception:
        gradebook.db.rollback()
        outcome = _crashed()
        outcome["why"] = f"could not record the grade: {outcome['why']}"
    if not outcome["ok"]:
        _log(f"FAILED {student}/{assignment}: {outcome['why']}\n{outcome.get('log', '')}")
        summary.failed.append((student, assignment, outcome["why"]))
        return
    # The submission is graded and recorded.
    _write_json(
        marker,
        {
            "fingerprint": fingerprint,
            "graded_at": datetime.now().isoformat(timespec="seconds"),
            "timed_out": outcome["timed_out"],
        },
    )
    summary.graded.append(pair)
    summary.findings += outcome["findings"]
    if outcome["timed_out"]:
        summary.timed_out.append((student, assignment, ", ".join(outcome["timed_out"])))
    _log(f"graded {student}/{assignment}")


def autograde(
    submitted: Path,
    course_dir: Path,
    *,
    jobs: int | None = None,
    regrade: bool = False,
    options: Options | None = None,
) -> Summary:
    """Copy the submissions in ``submitted/<student>/<assignment>/`` into the course, then
    autograde them (see :func:`autograde_course`)."""
    pairs = collect_folder(course_dir, submitted)
    chosen = sorted({a for _, a in pairs})
    students = sorted({s for s, _ in pairs})
    if not pairs:
        return Summary()
    return autograde_course(
        course_dir, chosen, students=students, jobs=jobs, regrade=regrade, options=options
    )


# --------------------------------------------------------------------------------------------
# grading processes


class _FeedbackMaker:
    """Generates one student's feedback at a time on the course itself (read-only use of
    the gradebook, so several can run at once)."""

    def __init__(self, course_dir: str):
        self.api = _api(Path(course_dir))

    def generate(self, student: str, assignment: str) -> dict[str, Any]:
        result = self.api.generate_feedback(assignment, student, force=True)
        return {"ok": True} if result["success"] else _failure(_reason(result), result)


def _autograde_runner(course_dir: str, scratch: str, gradebook: str, options: Options):
    """Grades in ``scratch/worker-<pid>``, a scratch course of this process's own."""
    here = Path(scratch) / f"worker-{os.getpid()}"
    return _ScratchGrader(course_dir, str(here), gradebook, options).grade


def _feedback_runner(course_dir: str):
    return _FeedbackMaker(course_dir).generate


Task = tuple[str, ...]
Outcome = dict[str, Any]


def run_tasks(
    tasks: list[Task],
    jobs: int,
    factory: str,
    kwargs: dict,
    finish: Callable[[Task, Outcome], None],
    hard_limit: float,
) -> None:
    """Run each task with the runner ``factory(**kwargs)`` makes; ``finish`` it here.

    ``factory`` is ``"module:function"``; the runner it returns is called as
    ``runner(*task)`` and returns an outcome dict with ``ok`` (and ``why`` when not ok).
    With ``jobs`` > 1 (and more than one task) each of ``jobs`` spawned processes makes its
    own runner; otherwise the tasks run here, one after the other.
    """
    if jobs > 1 and len(tasks) > 1:
        _run_in_processes(tasks, jobs, factory, kwargs, finish, hard_limit)
        return
    runner = None
    for task in tasks:
        try:
            runner = runner or _load(factory)(**kwargs)
            outcome = runner(*task)
        except Exception:
            outcome = _crashed()
        finish(task, outcome)


def _load(factory: str) -> Callable[..., Callable[..., Outcome]]:
    module, name = factory.split(":")
    return getattr(importlib.import_module(module), name)


def _crashed() -> Outcome:
    text = traceback.format_exc()
    return {"ok": False, "why": text.strip().splitlines()[-1], "log": text}


def _exit_with_parent() -> None:
    """Exit when the process that started this one is gone (e.g. killed with -9)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _worker_main(connection, factory: str, kwargs: dict) -> None:
    """A grading process: runs the tasks it receives until told to stop."""
    _exit_with_parent()
    os.setpgrp()  # Ctrl-C reaches the parent only; it stops its workers itself
    try:
        runner = _load(factory)(**kwargs)
    except Exception:
        broken = {"error": traceback.format_exc()}

        def runner(*task: str) -> Outcome:
            return _failure("the grading process could not start", broken)

    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            outcome = runner(*task)
        except Exception:
            outcome = _crashed()
        connection.send(outcome)


class _Worker:
    def __init__(self, context, factory: str, kwargs: dict):
        self.connection, child = context.Pipe()
        arguments = (child, factory, kwargs)
        self.process = context.Process(target=_worker_main, args=arguments, daemon=True)
        self.process.start()
        child.close()
        self.task: Task | None = None
        self.deadline = 0.0
        self.started = False

    def start(self, task: Task, limit: float, startup: float) -> bool:
        self.task = task
        self.deadline = time.monotonic() + limit + (0 if self.started else startup)
        self.started = True
        try:
            self.connection.send(task)
        except OSError:
            return False
        return True

    def result(self) -> Outcome | None:
        try:
            if self.connection.poll():
                return self.connection.recv()
        except (EOFError, OSError):
            pass
        return None

    def stop(self, now: bool = False) -> None:
        if not now and self.process.is_alive():
            with contextlib.suppress(OSError):
                self.connection.send(None)
            self.process.join(timeout=5)
        if self.process.is_alive():
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.kill()
            self.process.join(timeout=5)
        self.connection.close()


def _run_in_processes(
    tasks: list[Task],
    jobs: int,
    factory: str,
    kwargs: dict,
    finish: Callable[[Task, Outcome], None],
    hard_limit: float,
    startup: float = STARTUP_SECONDS,
) -> None:
    """Run ``tasks`` in ``jobs`` spawned processes; ``finish`` each here as it comes back.

    A process that dies, or spends more than ``hard_limit`` seconds on one task (plus
    ``startup`` on its first), fails that task only; a fresh process takes its place.
    """
    context = multiprocessing.get_context("spawn")
    queue = deque(tasks)
    workers = [_Worker(context, factory, kwargs) for _ in range(min(jobs, len(tasks)))]
    try:
        while queue or any(w.task for w in workers):
            for worker in workers:
                if worker.task is None and queue:
                    worker.start(queue.popleft(), hard_limit, startup)
            busy = [w for w in workers if w.task is not None]
            wait([w.connection for w in busy] + [w.process.sentinel for w in busy], timeout=1)
            for index, worker in enumerate(workers):
                if worker.task is None:
                    continue
                outcome = worker.result()
                if outcome is not None:
                    task, worker.task = worker.task, None
                    finish(task, outcome)
                    continue
                overdue = time.monotonic() > worker.deadline
                if worker.process.is_alive() and not overdue:
                    continue
                task = worker.task
                if overdue:
                    why = f"gave up after {hard_limit:.0f} s: the grading process was stuck"
                else:
                    why = f"the grading process died (exit code {worker.process.exitcode})"
                worker.stop(now=True)
                finish(task, _failure(why))
                workers[index] = _Worker(context, factory, kwargs)
    except BaseException:  # Ctrl-C: stop at once, the tasks in flight are graded next time
        for worker in workers:
            worker.stop(now=True)
        raise
    for worker in workers:
        worker.stop()


# --------------------------------------------------------------------------------------------
# feedback


@dataclass
class FeedbackSummary:
    """What a feedback run made."""

    generated: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    released: list[tuple[str, str]] = field(default_factory=list)
    #: Feedback not released: the submission did not come through nbgrader's exchange.
    not_released: list[tuple[str, str]] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"generated feedback for {len(self.generated)} submission(s)"]
        lines += [f"  FAILED {s}/{a}: {why}" for s, a, why in self.failed]
        if self.released or self.not_released:
            lines.append(
                f"released {len(self.released)} to nbgrader's exchange; "
                f"{len(self.not_released)} were not submitted through it: hand their "
                "feedback/<student>/<assignment>/*.html back through your LMS"
            )
        return "\n".join(lines)


def feedback(
    course_dir: Path,
    selected: list[str] | None = None,
    *,
    students: list[str] | None = None,
    jobs: int | None = None,
    release_to_exchange: bool = False,
) -> FeedbackSummary:
    """Generate ``feedback/<student>/<assignment>/<assignment>.html`` for every graded
    submission (nbgrader's generate_feedback; hidden tests removed). With
    ``release_to_exchange``, also release it through nbgrader's exchange (JupyterHub)."""
    jobs = default_jobs() if jobs is None else max(1, jobs)
    summary = FeedbackSummary()
    graded = course_dir / "autograded"
    pairs = [
        (s.name, a.name)
        for s in (sorted(graded.iterdir()) if graded.is_dir() else [])
        if _visible_dir(s)
        for a in sorted(s.iterdir())
        if _visible_dir(a)
        and (not selected or a.name in selected)
        and (not students or s.name in students)
    ]
    with _course_lock(course_dir), _console(course_dir / LOG_NAME) as terminal:
        _log(f"feedback {course_dir}: {len(pairs)} submission(s)")
        progress = _progress(len(pairs), "feedback", terminal)

        def finish(pair: tuple[str, str], outcome: dict) -> None:
            if outcome["ok"]:
                summary.generated.append(pair)
            else:
                summary.failed.append((*pair, outcome["why"]))
                _log(f"FAILED feedback {pair[0]}/{pair[1]}: {outcome.get('log', '')}")
            progress.set_postfix_str("/".join(pair), refresh=False)
            progress.update()

        try:
            # A conversion takes about a second, starting a process a few: few, do them here.
            run_tasks(
                pairs,
                1 if len(pairs) < 4 * jobs else jobs,
                "autograder.grading:_feedback_runner",
                {"course_dir": str(course_dir)},
                finish,
                NOTEBOOK_TIMEOUT,
            )
        finally:
            progress.close()
        if release_to_exchange:
            _release_feedback(course_dir, summary)
    return summary


def _release_feedback(course_dir: Path, summary: FeedbackSummary) -> None:
    """Release through the exchange nbgrader is configured with (on a hub, the shared one)."""
    api = _api(course_dir)
    if Path(api.config.Exchange.root) == course_dir / "exchange":
        (course_dir / "exchange").mkdir(exist_ok=True)  # the course's own, off a hub
    for student, assignment in summary.generated:
        folder = course_dir / "feedback" / student / assignment
        if not (folder / "submission_secret.txt").exists():
            summary.not_released.append((student, assignment))
            continue
        result = api.release_feedback(assignment, student)
        if result["success"]:
            summary.released.append((student, assignment))
        else:
            summary.failed.append((student, assignment, f"release: {_reason(result)}"))


# --------------------------------------------------------------------------------------------
# export


class GradesCsvExporter(ExportPlugin):
    """nbgrader export plugin: one row per student and assignment, with
    ``student,assignment,score,max_score``; a missing submission scores 0.

    Usable from nbgrader itself too:
    ``nbgrader export --exporter=autograder.grading.GradesCsvExporter``.
    """

    def export(self, gradebook: Gradebook) -> None:
        destination = self.to or "grades.csv"
        with open(destination, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for assignment in sorted(gradebook.assignments, key=lambda a: a.name):
                for student in sorted(gradebook.students, key=lambda s: s.id):
                    try:
                        submission = gradebook.find_submission(assignment.name, student.id)
                        score = submission.score
                    except MissingEntry:
                        score = 0.0
                    writer.writerow(
                        [student.id, assignment.name, f"{score:g}", f"{assignment.max_score:g}"]
                    )


def export_grades(course_dir: Path, out: Path) -> Path:
    """Write the course's grades as CSV through :class:`GradesCsvExporter`."""
    exporter = GradesCsvExporter(to=str(out))
    with _gradebook(course_dir) as gradebook:
        exporter.export(gradebook)
    return out
