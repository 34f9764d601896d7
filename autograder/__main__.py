"""``python -m autograder``: the course's commands for developers and instructors."""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from autograder import build, grading
from autograder.course import assignments


def _course_dir(stack: ExitStack, given: Path | None) -> Path:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        return given.resolve()
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="descent-course-")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("generate", help="regenerate chapters/ (the student version)")
    commands.add_parser("book", help="build the HTML book into _build/html")

    release = commands.add_parser("release", help="generate the student version for a class")
    release.add_argument("--course", type=Path, required=True, help="nbgrader course directory")
    release.add_argument("assignment", nargs="*", help=f"default: all of {assignments()}")

    grade = commands.add_parser("autograde", help="autograde submissions and export grades")
    grade.add_argument(
        "--submitted", type=Path, required=True,
        help="folder of <student>/<assignment>/<notebook>.ipynb",
    )  # fmt: skip
    grade.add_argument("--out", type=Path, required=True, help="CSV to write")
    grade.add_argument("--course", type=Path, help="keep the course directory here")

    args = parser.parse_args(argv)
    if args.command == "generate":
        for path in build.write_chapters():
            print(f"wrote {path}")
    elif args.command == "book":
        print(f"built {build.build_book()}")
    elif args.command == "release":
        for path in grading.release(args.course.resolve(), args.assignment or None):
            print(f"released {path}")
    elif args.command == "autograde":
        with ExitStack() as stack:
            course_dir = _course_dir(stack, args.course)
            summary = grading.autograde(args.submitted.resolve(), course_dir)
            grading.export_grades(course_dir, args.out)
        print(summary.report())
        print(f"grades written to {args.out}")
        return 1 if summary.failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
