"""How fast a class is autograded: nbgrader's own CLI against ``python -m autograder``.

A synthetic class (default 50 students x every chapter) hands in a mix of notebooks: the
reference answers, the untouched stubs and one wrong exercise, in turn. Each contender grades
the same class on a freshly released copy of the same course directory:

- ``nbgrader autograde <chapter>`` — the real nbgrader CLI, sequential, run in the course
  directory with the course's configuration (an ``nbgrader_config.py`` loading
  :func:`autograder.course.nbgrader_config`);
- ``python -m autograder autograde --course DIR --jobs N`` for each N of ``--jobs``, which
  also re-checks every passed test outside the kernel (``autograder.verify``), work the
  plain CLI does not do.

It prints seconds and notebooks per minute side by side, then how our default grows with the
class (``--sizes``). Figures only; no assertions. The machine's load average is printed too:
other work on the machine slows every contender, unevenly.

    .venv/bin/python benchmarks/bench_autograde.py                  # 50 students, all chapters
    .venv/bin/python benchmarks/bench_autograde.py --students 10 --chapters 01_gradients \\
        --sizes 4,10 --jobs 1,2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.course import assignments, grading_environment  # noqa: E402
from autograder.grading import default_jobs  # noqa: E402
from tests.conftest import reference_answers, student_notebook, with_answers  # noqa: E402

NBGRADER_CONFIG = """\
import sys
from pathlib import Path

sys.path.insert(0, {repo!r})
from autograder.course import nbgrader_config

c.merge(nbgrader_config(Path({course!r})))
"""


def hand_in(folder: Path, students: int, chapters: list[str]) -> int:
    """Write the synthetic class's submissions; returns how many notebooks."""
    for chapter in chapters:
        answers = reference_answers(chapter)
        first = next(iter(answers))
        wrong = answers | {first: f"def {first}(*args, **kwargs):\n    return 0.0\n"}
        kinds = [with_answers(chapter, answers), student_notebook(chapter)]
        kinds.append(with_answers(chapter, wrong))
        for index in range(students):
            target = folder / f"student{index:03d}" / chapter
            target.mkdir(parents=True)
            nbformat.write(kinds[index % 3], target / f"{chapter}.ipynb")
    return students * len(chapters)


def released_course(scratch: Path, chapters: list[str]) -> Path:
    """A course directory with the chapters released (untimed, copied for each run)."""
    course = scratch / "released"
    command = [sys.executable, "-m", "autograder", "release", "--course", str(course)]
    subprocess.run([*command, *chapters], cwd=REPO, check=True, capture_output=True)
    return course


def fresh_course(template: Path, submitted: Path, target: Path, students: int) -> Path:
    shutil.copytree(template, target)
    for index in range(students):
        name = f"student{index:03d}"
        shutil.copytree(submitted / name, target / "submitted" / name)
    return target


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, env=grading_environment(), capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1):  # 1: some submission failed, which is graded too
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def nbgrader_cli(course: Path, chapters: list[str]) -> float:
    (course / "nbgrader_config.py").write_text(
        NBGRADER_CONFIG.format(repo=str(REPO), course=str(course))
    )
    nbgrader = str(Path(sys.executable).with_name("nbgrader"))
    return sum(timed([nbgrader, "autograde", chapter], course) for chapter in chapters)


def ours(course: Path, jobs: int) -> float:
    command = [sys.executable, "-m", "autograder", "autograde", "--course", str(course)]
    return timed([*command, "--jobs", str(jobs)], REPO)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--chapters", default=",".join(assignments()))
    parser.add_argument("--jobs", default=f"1,2,{default_jobs()}", help="our --jobs to time")
    parser.add_argument("--sizes", default="10,50", help="class sizes for the scaling figure")
    parser.add_argument("--skip-nbgrader", action="store_true")
    args = parser.parse_args()
    chapters = args.chapters.split(",")
    jobs = sorted({int(j) for j in args.jobs.split(",")})
    sizes = sorted({min(int(n), args.students) for n in args.sizes.split(",")})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    with tempfile.TemporaryDirectory(prefix="bench-autograde-") as scratch_name:
        scratch = Path(scratch_name)
        notebooks = hand_in(scratch / "class", args.students, chapters)
        template = released_course(scratch, chapters)
        print(
            f"class: {args.students} students x {len(chapters)} chapter(s) = {notebooks} "
            f"notebooks; {cores} cores; load average {load()}"
        )

        def course(name: str, students: int = args.students) -> Path:
            return fresh_course(template, scratch / "class", scratch / name, students)

        rows: list[tuple[str, float]] = []
        measured: dict[int, float] = {}  # our seconds by --jobs, for the whole class
        if not args.skip_nbgrader:
            rows.append(("nbgrader autograde (sequential)", nbgrader_cli(course("cli"), chapters)))
        for n in jobs:
            label = f"python -m autograder autograde --jobs {n}"
            if n == default_jobs():
                label += " (default)"
            measured[n] = ours(course(f"jobs{n}"), n)
            rows.append((label, measured[n]))
        baseline = rows[0][1] if not args.skip_nbgrader else None
        width = max(len(label) for label, _ in rows)
        print(f"{'':{width}} {'seconds':>8} {'notebooks/min':>14} {'speed-up':>9}")
        for label, seconds in rows:
            speedup = f"{baseline / seconds:8.2f}x" if baseline else ""
            print(f"{label:{width}} {seconds:8.1f} {notebooks / seconds * 60:14.1f} {speedup:>9}")

        default = default_jobs()
        print(f"\nclass size (python -m autograder autograde --jobs {default}):")
        for students in sizes:
            count = students * len(chapters)
            if students == args.students and default in measured:
                seconds = measured[default]
            else:
                seconds = ours(course(f"size{students}", students), default)
            print(
                f"  {students:4d} students {count:5d} notebooks {seconds:8.1f} s "
                f"{seconds / count:6.2f} s/notebook {count / seconds * 60:7.1f} notebooks/min"
            )
        print(f"load average at the end: {load()}")


if __name__ == "__main__":
    main()
