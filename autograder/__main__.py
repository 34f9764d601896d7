"""``python -m autograder``: the course's commands for developers and instructors.

Running a class, each step on the same course directory (COURSE):

  release    COURSE/release/<a>/<a>.ipynb: the notebooks to hand out
  collect    students' notebooks, from a folder or an LMS zip, into COURSE/submitted/
  autograde  grades into COURSE/gradebook.db (again only what is new or changed)
  feedback   COURSE/feedback/<student>/<a>/<a>.html, one report per student
  export     a CSV of student,assignment,score,max_score
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from autograder import build, grading
from autograder.course import CELL_TIMEOUT, assignments


def _course_dir(stack: ExitStack, given: Path | None) -> Path:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        return given.resolve()
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="descent-course-")))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m autograder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    every = f"default: all of {' '.join(assignments())}"

    commands.add_parser("generate", help="regenerate chapters/ (the student version)")
    commands.add_parser("book", help="build the HTML book into _build/html")

    release = commands.add_parser("release", help="generate the student version for a class")
    release.add_argument("--course", type=Path, required=True, help="nbgrader course directory")
    release.add_argument("assignment", nargs="*", help=every)

    collect = commands.add_parser(
        "collect",
        help="copy submissions into COURSE/submitted/ (replacing a student's earlier one)",
        description=(
            "--from FOLDER takes FOLDER/<student>/<assignment>/<assignment>.ipynb. "
            "--zip ARCHIVE takes the zip of submissions an LMS downloads, through nbgrader's "
            "zip_collect: each file name gives the student and the notebook. By default "
            "'ada_01_gradients.ipynb', 'ada/01_gradients.ipynb' and Canvas's "
            "'ada_LATE_12345_67890_01_gradients-1.ipynb' all read as student ada, "
            "assignment 01_gradients; for other names pass --regex with the named groups "
            "(?P<student_id>...) and (?P<file_id>...) (the notebook name), matched against "
            "the extracted file's path."
        ),
    )
    collect.add_argument("--course", type=Path, required=True, help="nbgrader course directory")
    source = collect.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="folder", type=Path, help="folder of submissions")
    source.add_argument("--zip", type=Path, help="zip of submissions downloaded from an LMS")
    collect.add_argument("--assignment", help="with --zip: default, every one found in it")
    collect.add_argument("--regex", help="with --zip: how to read the file names (see above)")

    grade = commands.add_parser(
        "autograde",
        help="autograde the submissions not graded yet",
        description=(
            "Autogrades every submission in COURSE/submitted/ that is new, changed, or graded "
            "with other tests, in parallel processes. Interrupted (even killed), it loses only "
            "the submissions being graded at that moment: run it again to finish. "
            "With --submitted, those submissions are collected first."
        ),
    )
    grade.add_argument(
        "--submitted", type=Path,
        help="folder of <student>/<assignment>/<notebook>.ipynb to collect first",
    )  # fmt: skip
    grade.add_argument("--out", type=Path, help="also export the grades to this CSV")
    grade.add_argument("--course", type=Path, help="the course directory (kept)")
    grade.add_argument("--student", action="append", help="only this student (repeatable)")
    grade.add_argument(
        "--jobs", type=int, default=grading.default_jobs(),
        help="grading processes at once; 1 grades in this process (default: %(default)s)",
    )  # fmt: skip
    grade.add_argument("--regrade", action="store_true", help="grade already graded ones again")
    grade.add_argument(
        "--cell-timeout", type=int, default=CELL_TIMEOUT,
        help="seconds a cell may run before it is interrupted and fails (default: %(default)s)",
    )  # fmt: skip
    grade.add_argument(
        "--notebook-timeout", type=int, default=grading.NOTEBOOK_TIMEOUT,
        help="with --jobs > 1: seconds one submission may take before its grading process "
        "is killed and it fails (default: %(default)s)",
    )  # fmt: skip
    grade.add_argument("assignment", nargs="*", help=every)

    feedback = commands.add_parser(
        "feedback", help="HTML feedback per student: COURSE/feedback/<student>/<a>/<a>.html"
    )
    feedback.add_argument("--course", type=Path, required=True, help="nbgrader course directory")
    feedback.add_argument("--student", action="append", help="only this student (repeatable)")
    feedback.add_argument("--jobs", type=int, default=grading.default_jobs())
    feedback.add_argument(
        "--release", action="store_true",
        help="also release it through nbgrader's exchange (submissions collected from it)",
    )  # fmt: skip
    feedback.add_argument("assignment", nargs="*", help=every)

    export = commands.add_parser("export", help="grades as CSV: student,assignment,score,max_score")
    export.add_argument("--course", type=Path, required=True, help="nbgrader course directory")
    export.add_argument("--out", type=Path, required=True, help="CSV to write")
    return parser


def _autograde(args: argparse.Namespace) -> int:
    if args.submitted is None and args.course is None:
        sys.exit("autograde: give --course (or --submitted with --out)")
    if args.course is None and args.out is None:
        sys.exit("autograde: without --course, give --out (the scratch course is deleted)")
    options = grading.Options(args.cell_timeout, args.notebook_timeout)
    settings = {"jobs": args.jobs, "regrade": args.regrade, "options": options}
    with ExitStack() as stack:
        course_dir = _course_dir(stack, args.course)
        try:
            if args.submitted is not None:
                summary = grading.autograde(args.submitted.resolve(), course_dir, **settings)
            else:
                summary = grading.autograde_course(
                    course_dir, args.assignment or None, students=args.student, **settings
                )
        except KeyboardInterrupt:
            print("interrupted: the grades recorded so far are kept; run the same command "
                  "again to grade the rest", file=sys.stderr)  # fmt: skip
            return 130
        if args.out is not None:
            grading.export_grades(course_dir, args.out)
    print(summary.report())
    if args.out is not None:
        print(f"grades written to {args.out}")
    return 1 if summary.failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("generate", "book"):
        return _run(args)
    try:
        return _run(args)
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        # An unknown assignment, a course in use by another command, a missing file.
        print(f"python -m autograder {args.command}: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "generate":
        for path in build.write_chapters():
            print(f"wrote {path}")
    elif args.command == "book":
        print(f"built {build.build_book()}")
    elif args.command == "release":
        for path in grading.release(args.course.resolve(), args.assignment or None):
            print(f"released {path}")
    elif args.command == "collect":
        course_dir = args.course.resolve()
        course_dir.mkdir(parents=True, exist_ok=True)
        if args.folder is not None:
            pairs = grading.collect_folder(course_dir, args.folder.resolve())
            print(f"collected {len(pairs)} submission(s) into {course_dir / 'submitted'}")
            return 0
        collected = grading.collect_zip(course_dir, args.zip.resolve(), args.assignment, args.regex)
        print(collected.report())
        return 1 if collected.errors else 0
    elif args.command == "autograde":
        return _autograde(args)
    elif args.command == "feedback":
        summary = grading.feedback(
            args.course.resolve(),
            args.assignment or None,
            students=args.student,
            jobs=args.jobs,
            release_to_exchange=args.release,
        )
        print(summary.report())
        return 1 if summary.failed else 0
    elif args.command == "export":
        print(f"grades written to {grading.export_grades(args.course.resolve(), args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
