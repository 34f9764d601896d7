"""No cheat gains a point and every honest answer keeps its points, whatever is handed in.

Fast tests take the defences one at a time: the static screen (autograder/screen.py), the
wire format between the grader and the child that runs an answer, the hardened child, and
the proof that a cheat which fools a test inside the kernel is caught by the trusted re-check
outside it (autograder/verify.py). The slow test grades the whole catalogue of broken and
adversarial submissions (tests/fixtures/submissions/catalogue.py) in ONE autograde run
through the instructor's command, then checks each outcome, the summary and the feedback
students receive.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbgrader.api import Gradebook

from autograder import screen, verify
from autograder.course import REPO, assignments, nbgrader_config, read_source
from tests.conftest import reference_answers, with_answers
from tests.fixtures.submissions.catalogue import (
    CATALOGUE,
    CHAPTER,
    REFERENCE,
    TARGET,
    WRONG,
    Fixture,
    hand_in,
)

#: Seconds a cell may run in the slow test (the CLI's --cell-timeout).
CELL_TIMEOUT = 15


# --------------------------------------------------------------------------------------------
# The static screen

CHEATS = {
    "np.allclose patched": "np.allclose = lambda *a, **k: True",
    "numpy.testing patched": "import numpy\nnumpy.testing.assert_allclose = print",
    "setattr on numpy": "setattr(np, 'allclose', lambda *a, **k: True)",
    "assert_close patched in its module": "import descent.checking\ndescent.checking.RTOL = 1.0",
    "alias of numpy patched": "n = np\nn.allclose = min",
    "check redefined": "def check(name, function):\n    return None",
    "assert_close redefined": "assert_close = lambda *a, **k: None",
    "np rebound": "np = None",
    "file read": "text = open('notes.txt').read()",
    "path of the reference": "path = '../solutions/gradients.py'",
    "sys.path and import solutions": "import sys\nsys.path.insert(0, '..')\nimport solutions",
    "import of the autograder": "from autograder.checks import CHECKS",
    "os": "import os\nos.system('ls')",
    "subprocess": "import subprocess",
    "exec": "exec('x = 1')",
    "eval": "eval('1')",
    "__import__": "m = __import__('os')",
    "globals()": "globals()['check'] = None",
    "dunder escape": "().__class__.__base__.__subclasses__()",
    "builtins": "import builtins",
    "shell escape": "!ls",
    "%run": "%run solutions/gradients.py",
    "get_ipython": "ip = get_ipython()",
}
HARMLESS = {
    "a plain answer": "def f(w):\n    return np.asarray(w, dtype=float) * 2.0",
    "allowed imports": "import math\nfrom functools import reduce\nfrom descent import losses",
    "a class with __init__": "class A:\n    def __init__(self):\n        self.v = 1",
    "attribute of an array": "x = np.zeros(3)\nx.shape = (3, 1)",
    "timing magic": "%timeit np.zeros(3)",
    "a docstring about solutions": 'def f():\n    """The solutions of x**2 = 1."""',
    "a syntax error": "def f(:\n    pass",
}


@pytest.mark.parametrize("source", CHEATS.values(), ids=CHEATS.keys())
def test_screen_flags_cheats_anywhere(source: str) -> None:
    """Each cheat is flagged in an answer cell and in any other cell a student can edit."""
    assert screen.screen_cell(source, answer=True)
    assert screen.screen_cell(source, answer=False)


@pytest.mark.parametrize("source", HARMLESS.values(), ids=HARMLESS.keys())
def test_screen_accepts_honest_code(source: str) -> None:
    """Ordinary answer code is not flagged."""
    assert screen.screen_cell(source, answer=True) == []


def test_screen_import_whitelist_is_for_answers_only() -> None:
    """scipy may be imported in a narrative cell, not in an answer."""
    assert screen.screen_cell("import scipy.linalg", answer=False) == []
    assert "may import only" in str(screen.screen_cell("import scipy.linalg", answer=True)[0])


def test_screen_names_construct_and_line() -> None:
    """A flag names the construct and its line, for the comment the student reads."""
    (flag,) = screen.screen_cell("x = 1\n\nnp.allclose = max\n", answer=True)
    assert flag.line == 3 and "np.allclose" in str(flag) and "line 3" in str(flag)


@pytest.mark.parametrize("assignment", assignments())
def test_course_notebooks_pass_the_screen(assignment: str) -> None:
    """The chapters' own cells and reference answers raise no flag: honest work is not
    neutralized."""
    answers = reference_answers(assignment)
    cells = []
    for cell in with_answers(assignment, answers).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and not (meta.get("grade") and not meta.get("solution")):
            cells.append((cell.source, bool(meta.get("solution"))))
    assert cells
    flagged = [
        (source[:60], [str(f) for f in flags])
        for (source, _), flags in zip(cells, screen.screen_notebook(cells), strict=True)
        if flags
    ]
    assert flagged == []


# --------------------------------------------------------------------------------------------
# The wire format


def _roundtrip(value, context=None):
    buffer = bytearray(verify._frame(value, verify._new_state()))

    def read_exact(size: int) -> bytes:
        out = bytes(buffer[:size])
        del buffer[:size]
        if len(out) < size:
            raise EOFError
        return out

    tree, buffers = verify._read_frame(read_exact)
    return verify._decode(tree, buffers, context or {})


def test_wire_format_carries_results_exactly() -> None:
    """Arrays (any numeric dtype, NaN, -0.0), scalars, tuples and big ints cross unchanged."""
    value = {
        "w": np.array([[1.5, np.nan], [-0.0, np.inf]]),
        "ints": np.arange(4, dtype=np.int32),
        "pair": (np.float64(2.5), 3, 10**30, None, True, "text", 1 + 2j),
        "batches": [(np.ones((2, 3)), np.zeros(2))],
    }
    back = _roundtrip(value)
    np.testing.assert_array_equal(back["w"], value["w"])
    assert back["ints"].dtype == np.int32
    assert back["pair"] == value["pair"] and isinstance(back["pair"], tuple)
    assert np.signbit(back["w"][1, 0])
    np.testing.assert_array_equal(back["batches"][0][0], np.ones((2, 3)))


def test_wire_format_yields_only_inert_data() -> None:
    """Objects, callables and generators from a child become placeholders or errors, never
    objects whose code could run in the grader."""

    class Sneaky:
        def __array__(self, *args, **kwargs):  # would run in the grader if it crossed
            raise RuntimeError("ran in the grader")

    back = _roundtrip({"x": Sneaky(), "f": print})
    assert isinstance(back["x"], verify.Opaque) and type(back["x"]).__name__ == "Sneaky"
    assert isinstance(back["f"], verify.Opaque)
    with pytest.raises(verify.CodecError):
        verify._decode({"t": "fn", "id": 0}, [], {})
    with pytest.raises(verify.CodecError):
        verify._decode({"t": "rng", "kind": "PCG64", "state": {"t": "none"}}, [], {})


@pytest.mark.parametrize(
    "tree, buffers",
    [
        ({"t": "nd", "dtype": "|O8", "shape": [1], "b": 0}, [b"\0" * 8]),
        ({"t": "nd", "dtype": "<f8", "shape": [3], "b": 0}, [b"\0" * 8]),
        ({"t": "nd", "dtype": "<f8", "shape": [1], "b": 5}, [b"\0" * 8]),
        ({"t": "int", "v": "1" * 5000}, []),
        ({"t": "pickle", "v": "gASV"}, []),
        ({"t": "list", "items": [{"t": "list", "items": []}] * 2}, []),
    ],
    ids=["object dtype", "short buffer", "bad index", "huge int", "unknown kind", "ok list"],
)
def test_wire_format_rejects_malformed_messages(tree: dict, buffers: list) -> None:
    """A child cannot smuggle object arrays, pickles or mismatched buffers to the grader."""
    if tree.get("t") == "list":
        assert verify._decode(tree, buffers, {}) == [[], []]
        return
    with pytest.raises(verify.CodecError):
        verify._decode(tree, buffers, {})


# --------------------------------------------------------------------------------------------
# The trusted re-check, on its own (no screen)


def _cells(answers: dict[str, str]) -> list[verify.NotebookCell]:
    notebook = with_answers(CHAPTER, REFERENCE | answers)
    return verify.read_cells(notebook)


def _verify(source: str, exercise: str = TARGET, timeout: float = 10) -> verify.Verdict:
    """Check ``source`` as the answer to ``exercise`` WITHOUT the screen's protection."""
    cells = [
        verify.ChildCell("cell 1", "import numpy as np\nfrom descent.checking import assert_close"),
        verify.ChildCell(f"your answer cell `{exercise}`", source, answer=True),
    ]
    return verify.verify_exercise(cells, exercise, timeout=timeout)


MARKER = Path("/tmp/descent-fairness-marker")
ESCAPES = {
    "open() the reference": (
        f"def {TARGET}(*args, **kwargs):\n"
        f"    return open({str(REPO / 'solutions' / 'gradients.py')!r}).read()\n",
        "open",
    ),
    "FileIO through __subclasses__": (
        f"def {TARGET}(*args, **kwargs):\n"
        "    todo = [().__class__.__base__]\n"
        "    while todo:\n"
        "        kind = todo.pop()\n"
        "        if kind.__name__ == 'FileIO':\n"
        f"            return kind({str(REPO / 'solutions' / 'gradients.py')!r}).read()\n"
        "        try:\n"
        "            todo.extend(kind.__subclasses__())\n"
        "        except TypeError:\n"
        "            pass\n",
        "is not allowed while grading",
    ),
    "import solutions": (
        f"def {TARGET}(*args, **kwargs):\n"
        f"    import solutions\n    return solutions.{TARGET}(*args, **kwargs)\n",
        "may not import",
    ),
    "posix.system through the importer": (
        f"def {TARGET}(*args, **kwargs):\n"
        "    for kind in ().__class__.__base__.__subclasses__():\n"
        "        if kind.__name__ == 'BuiltinImporter':\n"
        f"            kind.load_module('posix').system('touch {MARKER}')\n",
        "os.system is not allowed",
    ),
    "kill the grader": (
        f"def {TARGET}(*args, **kwargs):\n"
        "    for kind in ().__class__.__base__.__subclasses__():\n"
        "        if kind.__name__ == 'BuiltinImporter':\n"
        "            posix = kind.load_module('posix')\n"
        "            posix.kill(posix.getppid(), 9)\n",
        "os.kill is not allowed",
    ),
    "np.loadtxt of the reference": (
        f"def {TARGET}(*args, **kwargs):\n"
        f"    return np.loadtxt({str(REPO / 'solutions' / 'gradients.py')!r}, dtype=str)\n",
        "",
    ),
    "patch np.allclose in the child": (
        WRONG + "\nnp.allclose = lambda *a, **k: True\n",
        "is wrong",
    ),
}


@pytest.mark.parametrize("source, reason", ESCAPES.values(), ids=ESCAPES.keys())
def test_child_keeps_answers_from_reference_and_system(source: str, reason: str) -> None:
    """Even unscreened, an answer in the child cannot read the reference, run programs, kill
    the grader or change what the grader compares with; it just fails."""
    MARKER.unlink(missing_ok=True)
    verdict = _verify(source)
    assert not verdict.passed
    assert reason in verdict.reason
    assert not MARKER.exists()


@pytest.mark.parametrize(
    "source, reason",
    [
        (f"def {TARGET}(*args, **kwargs):\n    while True:\n        pass\n", "did not finish"),
        (
            f"def {TARGET}(*args, **kwargs):\n    while True:\n        try:\n"
            "            pass\n        except BaseException:\n            pass\n",
            "did not finish",
        ),
        (f"def {TARGET}(*args, **kwargs):\n    raise SystemExit(3)\n", "SystemExit"),
        (f"def {TARGET}(*args, **kwargs):\n    return [0] * 10**10\n", "MemoryError"),
        (f"{TARGET} = 3\n", "should be a function"),
        ("x = 1 / 0\n", "is not defined"),
    ],
    ids=["endless loop", "swallowed interrupt", "exit", "memory", "not a function", "absent"],
)
def test_child_failures_are_reported_not_raised(source: str, reason: str) -> None:
    """Loops, exits, memory bombs and missing functions fail the check with a reason."""
    verdict = _verify(source, timeout=3)
    assert not verdict.passed and reason in verdict.reason


def test_child_reports_the_line_of_an_error() -> None:
    """An exception in the answer names its type and its line in the answer cell."""
    source = f"def {TARGET}(*args, **kwargs):\n    x = 1\n    return x / 0\n"
    verdict = _verify(source)
    assert "ZeroDivisionError" in verdict.reason and "line 3 of your answer cell" in verdict.reason


def test_answer_cells_get_the_notebooks_helpers() -> None:
    """A helper defined in another cell above the test, and the notebook's imports, are
    there when the answer is re-run: an honest answer using them keeps its points."""
    helper = "def double(x):\n    return 2 * x\n\nprint('not re-run')\nHALF = 0.5\n"
    notebook = with_answers(CHAPTER, REFERENCE)
    index = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code")
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(helper))
    answer = REFERENCE[TARGET] + f"\n\n_own = {TARGET}\n\n\ndef {TARGET}(*args, **kwargs):\n"
    answer += "    return double(_own(*args, **kwargs)) * HALF\n"
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == TARGET:
            cell.source = answer
    cells = verify.read_cells(notebook)
    assert verify.verify_exercise(verify.child_cells(cells, TARGET), TARGET, timeout=10).passed


def test_each_check_starts_clean_from_one_zygote() -> None:
    """Every check forks a fresh child from the same long-lived zygote: what one answer did
    to NumPy in its child is gone in the next check, and the zygote is not restarted."""
    vandal = REFERENCE[TARGET] + "\nnp.zeros_like = np.ndindex = None\n"
    assert "zeros_like" in REFERENCE[TARGET] and "ndindex" in REFERENCE[TARGET]
    assert not _verify(vandal).passed  # the patch breaks the reference's own code ...
    zygote = verify._Zygote.get().process.pid
    assert _verify(REFERENCE[TARGET]).passed  # ... in that child only
    assert verify._Zygote.get().process.pid == zygote


def test_a_dead_zygote_is_replaced() -> None:
    """If the zygote dies between checks, the next check starts a new one and still grades."""
    zygote = verify._Zygote.get().process
    zygote.kill()
    zygote.wait(timeout=10)
    assert _verify(REFERENCE[TARGET]).passed
    assert verify._Zygote.get().process.pid != zygote.pid


def test_an_answer_cannot_reach_the_zygote() -> None:
    """The child closes the zygote's control socket before any student code runs: an answer
    that writes to every descriptor it might have inherited cannot ask for anything."""
    probe = (
        f"def {TARGET}(*args, **kwargs):\n"
        "    for kind in ().__class__.__base__.__subclasses__():\n"
        "        if kind.__name__ == 'BuiltinImporter':\n"
        "            posix = kind.load_module('posix')\n"
        "    for fd in range(3, 64):\n"
        "        try:\n"
        '            posix.write(fd, b\'{"op": "fork"}\')\n'
        "        except OSError:\n"
        "            pass\n"
        "    return 0.0\n"
    )
    zygote = verify._Zygote.get()
    assert not _verify(probe).passed
    assert zygote.process.poll() is None
    assert zygote.request({"op": "wait", "pid": 1, "timeout": 0}, 10) == {"code": None}
    assert _verify(REFERENCE[TARGET]).passed


# --------------------------------------------------------------------------------------------
# The proof: a cheat that fools the kernel's test is caught outside it

KERNEL_FOOLERS = {
    "np.allclose patched": WRONG + "\nnp.allclose = lambda *args, **kwargs: True\n",
    "assert_close patched": WRONG
    + "\nimport descent.checking\n"
    + "descent.checking.assert_close = lambda *args, **kwargs: None\n",
    "reference read from disk": textwrap.dedent(
        f"""
        namespace = {{}}
        for name in ("gradients", "batch", "momentum", "stochastic"):
            path = {str(REPO / "solutions")!r} + "/" + name + ".py"
            exec(open(path).read(), namespace)
        {TARGET} = namespace[{TARGET!r}]
        """
    ),
    "reference imported": f"import sys\nsys.path.insert(0, {str(REPO)!r})\n"
    + f"from solutions import {TARGET}\n",
}


def _in_a_kernel(source: str) -> subprocess.CompletedProcess:
    """Run ``source`` and then the hidden test the way nbgrader does: in one process that
    can import the autograder (PYTHONPATH), with the notebook's imports."""
    program = (
        "import numpy as np\nfrom descent.checking import assert_close\n"
        + source
        + f"\nfrom autograder.checks import check\ncheck({TARGET!r}, {TARGET})\nprint('PASSED')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("source", KERNEL_FOOLERS.values(), ids=KERNEL_FOOLERS.keys())
def test_cheat_fooling_the_kernel_is_caught_outside_it(source: str) -> None:
    """The threat is real (the plain hidden test passes inside the student's process), the
    screen flags it, and the trusted re-check fails it even without the screen."""
    fooled = _in_a_kernel(source)
    assert fooled.returncode == 0 and "PASSED" in fooled.stdout, fooled.stderr[-2000:]
    assert screen.screen_cell(source, answer=True)
    assert not _verify(source).passed


def test_reference_answers_pass_the_trusted_check() -> None:
    """Sanity of the re-check itself: the reference answer to the target passes it."""
    verdict = verify.verify_exercise(
        verify.child_cells(_cells({}), TARGET), TARGET, timeout=CELL_TIMEOUT
    )
    assert verdict.passed, verdict.reason


def test_a_check_the_child_cannot_receive_is_the_graders_bug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An argument the wire format cannot carry stops grading loudly; it never costs the
    student the points."""
    monkeypatch.setitem(verify.checks.CHECKS, "echo", lambda student: student(object()))
    cells = [
        verify.ChildCell("your answer cell `echo`", "def echo(x):\n    return x\n", answer=True)
    ]
    with pytest.raises(verify.Unsendable):
        verify.verify_exercise(cells, "echo", timeout=10)


def test_changed_course_files_are_reported_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """If a kernel wrote to the repository during grading, the summary says so (once)."""
    start = dict(verify._GUARDED_AT_START)
    start["solutions/gradients.py"] = "0" * 64
    monkeypatch.setattr(verify, "_GUARDED_AT_START", start)
    monkeypatch.setattr(verify, "_tamper_reported", False)
    (finding,) = verify._tampering("mallory", CHAPTER)
    assert finding.kind == "tampered" and "solutions/gradients.py" in finding.message
    assert verify._tampering("mallory", CHAPTER) == []


# --------------------------------------------------------------------------------------------
# The feedback's traceback filter, on its own


def test_feedback_filter_drops_tracebacks_of_test_cells_only() -> None:
    """A failed test cell shows the error message, not the lines of the hidden test."""
    error = nbformat.v4.new_output(
        "error",
        ename="AssertionError",
        evalue="f(x) is wrong",
        traceback=["Cell In[3], line 7", "from autograder.checks import check", "check('f', f)"],
    )
    test = nbformat.v4.new_code_cell("check('f', f)", outputs=[error])
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "correct_f"}
    copied = nbformat.from_dict(json.loads(json.dumps(error)))
    answer = nbformat.v4.new_code_cell("1/0", outputs=[copied])
    answer.metadata["nbgrader"] = {"grade": False, "solution": True, "grade_id": "f"}
    step = verify.HideTestTracebacks()
    step.preprocess_cell(test, {}, 0)
    step.preprocess_cell(answer, {}, 1)
    assert test.outputs[0].traceback == ["AssertionError: f(x) is wrong"]
    assert len(answer.outputs[0].traceback) == 3


# --------------------------------------------------------------------------------------------
# The catalogue, graded in one run (slow)


@dataclass
class Graded:
    result: subprocess.CompletedProcess
    rows: dict[str, dict]
    scores: dict[str, dict[str, tuple[float, float]]]
    comments: dict[str, dict[str, str]]
    course: Path

    def summary(self, student: str) -> str:
        return "\n".join(
            line for line in self.result.stdout.splitlines() if f" {student}/{CHAPTER}" in line
        )

    def autograded(self, student: str) -> nbformat.NotebookNode:
        path = self.course / "autograded" / student / CHAPTER / f"{CHAPTER}.ipynb"
        return nbformat.read(path, as_version=4)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    root = tmp_path_factory.mktemp("fairness")
    submitted, course, out = root / "submitted", root / "course", root / "grades.csv"
    for fixture in CATALOGUE:
        hand_in(submitted, fixture)
    command = [
        sys.executable, "-m", "autograder", "autograde",
        "--submitted", str(submitted), "--course", str(course), "--out", str(out),
        "--cell-timeout", str(CELL_TIMEOUT), "--jobs", "2",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3000)
    assert out.exists(), result.stdout + result.stderr
    with out.open() as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    comments: dict[str, dict[str, str]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for fixture in CATALOGUE:
            try:
                notebook = gradebook.find_submission_notebook(CHAPTER, CHAPTER, fixture.name)
            except Exception:
                continue
            scores[fixture.name] = {g.name: (g.score, g.max_score) for g in notebook.grades}
            comments[fixture.name] = {c.name: c.comment or "" for c in notebook.comments}
    return Graded(result, rows, scores, comments, course)


@pytest.mark.slow
@pytest.mark.parametrize("fixture", CATALOGUE, ids=[f.name for f in CATALOGUE])
def test_submission_is_graded_fairly(graded: Graded, fixture: Fixture) -> None:
    """Attacked exercises score 0, every other exercise keeps its points, a broken file
    fails alone, and the summary and the comment say why (see the catalogue's stories)."""
    summary = graded.summary(fixture.name)
    for text in fixture.summary:
        assert text.lower() in summary.lower(), f"{fixture.story}: {text!r} not in {summary!r}"
    row = graded.rows[fixture.name]
    if fixture.failed:
        assert f"FAILED {fixture.name}/{CHAPTER}" in summary
        assert float(row["score"]) == 0
        return
    scores = graded.scores[fixture.name]
    for exercise in REFERENCE:
        score, maximum = scores[f"correct_{exercise}"]
        expected = 0 if exercise in fixture.zero else maximum
        assert maximum > 0 and score == expected, f"{fixture.story}: {exercise} scored {score}"
    assert float(row["score"]) == sum(
        maximum for exercise, (_, maximum) in _by_exercise(scores).items()
        if exercise not in fixture.zero
    )  # fmt: skip
    comment = graded.comments[fixture.name].get(TARGET, "")
    for text in fixture.comment:
        assert text in comment, f"{fixture.story}: {text!r} not in comment {comment!r}"
    if fixture.fooled_kernel:
        test_cell = _cell(graded.autograded(fixture.name), f"correct_{TARGET}")
        assert not [o for o in test_cell.outputs if o.output_type == "error"]
    for name in fixture.checks:
        EXTRA_CHECKS[name](graded, fixture)


def _by_exercise(scores: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    return {name.removeprefix("correct_"): value for name, value in scores.items()}


def _cell(notebook: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(
        c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )


def _texts(notebook: nbformat.NotebookNode) -> str:
    return json.dumps([c.get("outputs", []) for c in notebook.cells])


def _restarted(graded: Graded, fixture: Fixture) -> None:
    assert "ignored the interrupt" in _texts(graded.autograded(fixture.name))


def _kernel_died(graded: Graded, fixture: Fixture) -> None:
    assert "KernelDied" in _texts(graded.autograded(fixture.name))


def _output_capped(graded: Graded, fixture: Fixture) -> None:
    path = graded.course / "autograded" / fixture.name / CHAPTER / f"{CHAPTER}.ipynb"
    assert path.stat().st_size < 2_000_000
    assert "output cut by the autograder" in _texts(graded.autograded(fixture.name))


def _max_score_unchanged(graded: Graded, fixture: Fixture) -> None:
    released = {
        cell.metadata["nbgrader"]["grade_id"]: cell.metadata["nbgrader"]["points"]
        for cell in read_source(CHAPTER).cells
        if cell.metadata.get("nbgrader", {}).get("grade")
    }
    got = {name: maximum for name, (_, maximum) in graded.scores[fixture.name].items()}
    assert got == released
    assert float(graded.rows[fixture.name]["max_score"]) == sum(released.values())


EXTRA_CHECKS = {
    "restarted": _restarted,
    "kernel_died": _kernel_died,
    "output_capped": _output_capped,
    "max_score_unchanged": _max_score_unchanged,
}


@pytest.mark.slow
def test_broken_submissions_do_not_stop_the_class(graded: Graded) -> None:
    """Every student is in the grades; only the unreadable submissions failed, and the
    command says so with a non-zero exit."""
    assert set(graded.rows) == {fixture.name for fixture in CATALOGUE}
    failed = {line.split()[1].split("/")[0] for line in graded.result.stdout.splitlines()
              if line.strip().startswith("FAILED")}  # fmt: skip
    assert failed == {fixture.name for fixture in CATALOGUE if fixture.failed}
    assert graded.result.returncode == 1


@pytest.mark.slow
def test_feedback_never_shows_hidden_tests(graded: Graded) -> None:
    """The HTML a student receives holds no hidden test nor its traceback, but does hold
    the visible tests and the comment explaining a zeroed answer."""
    from nbgrader.apps import NbGraderAPI

    students = ["honest", "raises", "evades_the_screen", "patches_allclose"]
    api = NbGraderAPI(config=nbgrader_config(graded.course))
    for student in students:
        result = api.generate_feedback(CHAPTER, student, force=True)
        assert result["success"], result.get("log")
        page = (graded.course / "feedback" / student / CHAPTER / f"{CHAPTER}.html").read_text()
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        for secret in ("BEGIN HIDDEN", "HIDDEN TESTS", "autograder.checks", "autograder/checks",
                       "check(\"", "solutions/"):  # fmt: skip
            assert secret not in text, f"{secret!r} in the feedback of {student}"
        assert "assert_close(" in text
        if student == "evades_the_screen":
            assert "run again" in text and "is wrong" in text
