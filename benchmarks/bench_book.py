"""How long the book takes to build, and how fast each interactive figure redraws.

1. **Book builds**, in a scratch copy of the working tree (the repository's own _build/ is
   left alone): a *clean* build (no _build/ at all: every chapter's source notebook executed,
   MathJax fetched, all pages written), a *cached* rebuild (_build/html removed, the primed
   Jupyter Book execution cache and the assets kept: nothing executes) and a *no-op* rebuild
   (nothing changed). Each is ``python -m autograder book``.
2. **Sliders**, per chapter: each chapter's source notebook is executed with an extra first
   cell that records every ``descent.sliders.Explorer`` the chapter shows (instead of
   displaying it) and an extra last cell that times, for each Explorer and each of its
   sliders, one ``update(...)`` + ``fig.canvas.draw()`` (``Explorer.time_update``: what a
   reader waits for in JupyterLab on every slider move, before the PNG encoding), and the
   making of its static frames for the book (``to_jshtml``: time and size). Target: an update
   under 100 ms.

It prints figures and never asserts: timings depend on the machine (two shared cores here).

    python benchmarks/bench_book.py [--skip-build] [--repeats 20] [chapter ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.course import CHAPTERS, REPO, assignments, grading_environment, read_source

TARGET_MS = 100.0
#: Copied into the scratch tree for a build: what `python -m autograder book` reads.
_SKIP = {".git", ".venv", "_build", ".ruff_cache", ".pytest_cache", "course", "artifacts"}

_RECORD = """\
import descent.sliders as _bench_sliders

_BENCH_SHOWN = []


def _bench_show(self, vary=None):
    _BENCH_SHOWN.append((self, vary, get_ipython().execution_count))


_bench_sliders.Explorer.show = _bench_show
"""

_REPORT = """\
import json as _bench_json
import time as _bench_time


_bench_rows = []
for _bench_explorer, _bench_vary, _bench_cell in _BENCH_SHOWN:
    _bench_vary = _bench_vary or next(iter(_bench_explorer.params))
    _bench_start = _bench_time.perf_counter()
    _bench_html = _bench_explorer.to_jshtml(_bench_vary)
    _bench_rows.append({
        "cell": _bench_cell,
        "vary": _bench_vary,
        "frames": len(_bench_explorer.params[_bench_vary].values),
        "static_s": _bench_time.perf_counter() - _bench_start,
        "static_kb": len(_bench_html) / 1024,
        "update_ms": _bench_explorer.time_update(repeats=REPEATS),
        "cpu_ms": _bench_explorer.time_update(repeats=REPEATS, clock=_bench_time.process_time),
        "sizes": {n: len(p.values) for n, p in _bench_explorer.params.items()},
    })
print("BENCH_EXPLORERS " + _bench_json.dumps(_bench_rows))
"""


def _copy_tree(target: Path) -> None:
    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in _SKIP} if Path(directory) == REPO else set()

    shutil.copytree(REPO, target, ignore=ignore, symlinks=True)


def _build(tree: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "autograder", "book"],
        cwd=tree,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    return time.perf_counter() - start


def bench_builds() -> None:
    with tempfile.TemporaryDirectory(prefix="descent-bench-book-") as scratch:
        tree = Path(scratch) / "descent"
        _copy_tree(tree)
        clean = _build(tree)
        pages = sorted((tree / "_build" / "html" / "chapters").glob("*.html"))
        shutil.rmtree(tree / "_build" / "html")
        shutil.rmtree(tree / "_build" / "jupyter_execute", ignore_errors=True)
        cached = _build(tree)
        noop = _build(tree)
        print(f"book builds ({len(pages)} chapter pages), `python -m autograder book`:")
        print(f"  clean (executes every chapter, fetches MathJax): {clean:7.1f} s")
        print(f"  cached rebuild (execution cache primed, no HTML): {cached:7.1f} s")
        print(f"  no-op rebuild (nothing changed):                  {noop:7.1f} s")
        print("chapter pages:")
        for page in pages:
            print(f"  {page.name:<28} {page.stat().st_size / 1e6:6.2f} MB")
        print()


def bench_explorers(assignment: str, repeats: int) -> tuple[float, list[dict]]:
    """Execute the source notebook with the recording cells; the Explorers' figures."""
    notebook = read_source(assignment)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(_RECORD))
    notebook.cells.append(nbformat.v4.new_code_cell(f"REPEATS = {repeats}\n{_REPORT}"))
    client = NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(CHAPTERS)}},
    )
    start = time.perf_counter()
    client.execute(env=grading_environment(), stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    for output in notebook.cells[-1].outputs:
        for line in output.get("text", "").splitlines():
            if line.startswith("BENCH_EXPLORERS "):
                return elapsed, json.loads(line.removeprefix("BENCH_EXPLORERS "))
    raise RuntimeError(f"{assignment}: no timing printed: {notebook.cells[-1].outputs}")


def print_explorers(chapters: list[str], repeats: int) -> None:
    print(
        f"Explorer updates: update + canvas.draw, mean of {repeats}, wall ms "
        f"(Explorer.time_update) and kernel CPU ms; target < {TARGET_MS:g} ms, judged on CPU "
        f"ms (wall time grows with the machine's load: {os.getloadavg()[0]:.1f} now)"
    )
    header = (
        f"{'chapter':<16} {'cell':>4}  {'slider':<14} {'values':>6} {'wall ms':>8} "
        f"{'cpu ms':>7}       {'book frames':>11} {'KB':>6} {'make s':>6}"
    )
    print(header)
    print("-" * len(header))
    slow = total = 0
    for assignment in chapters:
        elapsed, explorers = bench_explorers(assignment, repeats)
        if not explorers:
            print(f"{assignment:<16} (no Explorer; notebook ran in {elapsed:.1f} s)")
        for row in explorers:
            for index, (name, wall) in enumerate(row["update_ms"].items()):
                cpu = row["cpu_ms"][name]
                total += 1
                slow += cpu >= TARGET_MS
                static = (
                    f"{row['frames']:>11} {row['static_kb']:>6.0f} {row['static_s']:>6.2f}"
                    if index == 0
                    else ""
                )
                label = f"{name}{'*' if name == row['vary'] else ''}"
                print(
                    f"{assignment:<16} {row['cell']:>4}  {label:<14} {row['sizes'][name]:>6} "
                    f"{wall:>8.1f} {cpu:>7.1f} {'ok' if cpu < TARGET_MS else 'SLOW':<5} {static}"
                )
        if explorers:
            print(f"{'':<16} (source notebook ran in {elapsed:.1f} s)")
    print("-" * len(header))
    print(f"{total - slow} of {total} slider updates under {TARGET_MS:g} ms of CPU")
    print("(* = the slider whose frames the book shows; cell = execution count in the run;")
    print(" book frames/KB/make s = the static animation: frames, HTML size, seconds to make)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help=f"default: all of {assignments()}")
    parser.add_argument("--skip-build", action="store_true", help="only time the sliders")
    parser.add_argument("--repeats", type=int, default=20, help="redraws per slider")
    args = parser.parse_args(argv)
    if not args.skip_build:
        bench_builds()
    print_explorers(args.chapters or assignments(), args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
