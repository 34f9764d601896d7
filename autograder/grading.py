"""Release and autograde a class with nbgrader, and export its grades.

Everything here drives nbgrader's own API (:class:`nbgrader.apps.NbGraderAPI`) and gradebook
on a course directory: a directory the instructor keeps (``--course``) or a scratch one.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin

from autograder.build import generate_student_versions
from autograder.course import activate_grading_environment, assignments, nbgrader_config

CSV_COLUMNS = ("student", "assignment", "score", "max_score")


@dataclass
class Summary:
    """What an autograde run did, for the closing report."""

    graded: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"graded {len(self.graded)} submission(s), {len(self.failed)} failed"]
        lines += [
            f"  FAILED {student}/{assignment}: {why}" for student, assignment, why in self.failed
        ]
        return "\n".join(lines)


def _api(course_dir: Path):
    from nbgrader.apps import NbGraderAPI

    activate_grading_environment()
    return NbGraderAPI(config=nbgrader_config(course_dir))


def _gradebook(course_dir: Path) -> Gradebook:
    activate_grading_environment()
    return Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}")


def release(course_dir: Path, selected: list[str] | None = None) -> list[Path]:
    """Generate the student version of each assignment into ``course_dir/release``.

    This also records the assignments, their cells and checksums in the course's gradebook,
    which autograding needs. Returns the released notebooks.
    """
    chosen = selected or assignments()
    generate_student_versions(course_dir, chosen)
    return [course_dir / "release" / a / f"{a}.ipynb" for a in chosen]


def _released(course_dir: Path) -> set[str]:
    if not (course_dir / "gradebook.db").exists():
        return set()
    with _gradebook(course_dir) as gradebook:
        return {assignment.name for assignment in gradebook.assignments}


def find_submissions(submitted: Path) -> list[tuple[str, str]]:
    """``(student, assignment)`` pairs laid out as ``submitted/<student>/<assignment>/``."""
    known = set(assignments())
    pairs = []
    for student_dir in sorted(p for p in submitted.iterdir() if p.is_dir()):
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir()):
            if assignment_dir.name not in known:
                raise ValueError(
                    f"{assignment_dir}: unknown assignment {assignment_dir.name!r}; "
                    f"expected one of {sorted(known)}"
                )
            pairs.append((student_dir.name, assignment_dir.name))
    return pairs


def autograde(submitted: Path, course_dir: Path) -> Summary:
    """Copy the submissions into the course and autograde each with nbgrader."""
    pairs = find_submissions(submitted)
    needed = sorted({assignment for _, assignment in pairs} - _released(course_dir))
    if needed:
        release(course_dir, needed)
    api = _api(course_dir)
    summary = Summary()
    for student, assignment in pairs:
        target = course_dir / "submitted" / student / assignment
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(submitted / student / assignment, target)
        result = api.autograde(assignment, student, force=True, create=True)
        if result["success"]:
            summary.graded.append((student, assignment))
        else:
            summary.failed.append((student, assignment, _last_line(result)))
    return summary


def _last_line(result: dict) -> str:
    text = (result.get("error") or result.get("log") or "unknown error").strip()
    return text.splitlines()[-1] if text else "unknown error"


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
