"""Plausible student bugs lose exactly their own exercise's points.

For every exercise of autograder.checks, at least three buggy answers a student could write
(sign errors, a learning rate applied twice, forward instead of central differences, no
shuffling, a dropped partial batch, momentum with the wrong sign, Nesterov without the
look-ahead, a missing factor 2, sum instead of mean, an input modified in place ...), each a
whole answer cell. The fast test puts each mutant into its chapter in place of the reference
answer and runs the trusted re-check (autograder/verify.py: a child process per exercise,
the hidden check in this process) on every exercise of the chapter: the mutant's exercise
fails, every other one passes, and the screen sees no cheat in a bug. The slow test sends a
few mutants through the real nbgrader autograde to prove the wiring.
"""

from __future__ import annotations

import csv
import functools
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder import screen, verify
from autograder.checks import CHECKS
from autograder.course import REPO, assignments
from tests.conftest import reference_answers, with_answers
from tests.fixtures.submissions.catalogue import lean

#: Seconds a check may take in the child (the capstone trains twice).
TIMEOUT = 60


def _replaced(exercise: str, old: str, new: str) -> str:
    """The reference answer with ``old`` replaced: a mutant that follows the chapter."""
    source = _chapter_answers()[exercise]
    if old not in source:
        pytest.fail(f"{exercise}: the reference answer no longer contains {old!r}; update MUTANTS")
    return source.replace(old, new, 1)


@functools.cache
def _chapters() -> dict[str, str]:
    """The chapter (assignment) of each exercise that has one."""
    return {exercise: a for a in assignments() for exercise in reference_answers(a)}


@functools.cache
def _chapter_answers() -> dict[str, str]:
    return {e: src for a in assignments() for e, src in reference_answers(a).items()}


MUTANTS: dict[str, dict[str, str | tuple[str, str]]] = {
    "numerical_gradient": {
        "forward difference": """
def numerical_gradient(f, w, eps=1e-6):
    w = np.array(w, dtype=float)
    grad = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        step = np.zeros_like(w)
        step[index] = eps
        grad[index] = (f(w + step) - f(w)) / eps
    return grad
""",
        "forgets the 2 of 2 eps": """
def numerical_gradient(f, w, eps=1e-6):
    w = np.array(w, dtype=float)
    grad = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        step = np.zeros_like(w)
        step[index] = eps
        grad[index] = (f(w + step) - f(w - step)) / eps
    return grad
""",
        "sign error": """
def numerical_gradient(f, w, eps=1e-6):
    w = np.array(w, dtype=float)
    grad = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        step = np.zeros_like(w)
        step[index] = eps
        grad[index] = (f(w - step) - f(w + step)) / (2 * eps)
    return grad
""",
        "perturbs w in place and does not restore it": """
def numerical_gradient(f, w, eps=1e-6):
    grad = np.zeros(np.shape(w))
    for index in np.ndindex(np.shape(w)):
        w[index] += eps
        up = f(w)
        w[index] -= 2 * eps
        down = f(w)
        grad[index] = (up - down) / (2 * eps)
    return grad
""",
    },
    "mse_gradient": {
        "missing factor 2": "def mse_gradient(X, y, w):\n    return X.T @ (X @ w - y) / len(y)\n",
        "sum instead of mean": "def mse_gradient(X, y, w):\n    return 2 * X.T @ (X @ w - y)\n",
        "sign error": "def mse_gradient(X, y, w):\n    return 2 * X.T @ (y - X @ w) / len(y)\n",
    },
    "logistic_gradient": {
        "sum instead of mean": """
def logistic_gradient(X, y, w):
    return X.T @ (0.5 * (1 + np.tanh(0.5 * (X @ w))) - y)
""",
        "forgets the sigmoid": """
def logistic_gradient(X, y, w):
    return X.T @ (X @ w - y) / len(y)
""",
        "mean over the features": """
def logistic_gradient(X, y, w):
    return X.T @ (0.5 * (1 + np.tanh(0.5 * (X @ w))) - y) / len(w)
""",
        "labels taken as -1/+1": """
def logistic_gradient(X, y, w):
    p = 1 / (1 + np.exp(-np.clip(X @ w, -500, 500)))
    return X.T @ (p - (2 * y - 1)) / len(y)
""",
    },
    "gd_step": {
        "sign error": "def gd_step(w, grad, lr):\n    return w + lr * grad\n",
        "lr applied twice": "def gd_step(w, grad, lr):\n    return w - lr * lr * grad\n",
        "updates w in place": "def gd_step(w, grad, lr):\n    w -= lr * grad\n    return w\n",
        "ignores lr": "def gd_step(w, grad, lr):\n    return w - grad\n",
    },
    "gradient_descent": {
        "path without w0": """
def gradient_descent(grad_fn, w0, lr, n_steps):
    w = np.array(w0, dtype=float)
    path = []
    for _ in range(n_steps):
        w = w - lr * grad_fn(w)
        path.append(w)
    return w, np.array(path)
""",
        "gradient always taken at w0": """
def gradient_descent(grad_fn, w0, lr, n_steps):
    w = np.array(w0, dtype=float)
    path = [w]
    for _ in range(n_steps):
        w = w - lr * grad_fn(w0)
        path.append(w)
    return w, np.array(path)
""",
        "lr applied twice": """
def gradient_descent(grad_fn, w0, lr, n_steps):
    w = np.array(w0, dtype=float)
    path = [w]
    for _ in range(n_steps):
        w = w - lr * lr * grad_fn(w)
        path.append(w)
    return w, np.array(path)
""",
        "one step short": """
def gradient_descent(grad_fn, w0, lr, n_steps):
    w = np.array(w0, dtype=float)
    path = [w]
    for _ in range(n_steps - 1):
        w = w - lr * grad_fn(w)
        path.append(w)
    path.append(w)
    return w, np.array(path)
""",
    },
    "sgd_epoch": {
        "forgets to shuffle": """
def sgd_epoch(X, y, w, grad_fn, lr, rng):
    w = np.array(w, dtype=float)
    for i in range(len(X)):
        w = w - lr * grad_fn(X[i : i + 1], y[i : i + 1], w)
    return w
""",
        "samples with replacement": """
def sgd_epoch(X, y, w, grad_fn, lr, rng):
    w = np.array(w, dtype=float)
    for i in rng.integers(0, len(X), size=len(X)):
        w = w - lr * grad_fn(X[i : i + 1], y[i : i + 1], w)
    return w
""",
        "drops the batch axis": """
def sgd_epoch(X, y, w, grad_fn, lr, rng):
    w = np.array(w, dtype=float)
    for i in rng.permutation(len(X)):
        w = w - lr * grad_fn(X[i], y[i], w)
    return w
""",
        "one full-batch step": """
def sgd_epoch(X, y, w, grad_fn, lr, rng):
    rng.permutation(len(X))
    return np.array(w, dtype=float) - lr * grad_fn(X, y, w)
""",
    },
    "next_batch": {
        "drops the last partial batch": """
def next_batch(X, y, batch_size):
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    return ((X[i : i + batch_size], y[i : i + batch_size])
            for i in range(0, len(X) - batch_size + 1, batch_size))
""",
        "shuffles": """
def next_batch(X, y, batch_size):
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order], y[order]
    return ((X[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(X), batch_size))
""",
        "no error for batch_size 0": """
def next_batch(X, y, batch_size):
    if batch_size < 1:
        return iter([])
    return ((X[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(X), batch_size))
""",
        "overlapping batches": """
def next_batch(X, y, batch_size):
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    return ((X[i : i + batch_size + 1], y[i : i + batch_size + 1])
            for i in range(0, len(X), batch_size))
""",
    },
    "minibatch_sgd": {
        "forgets to shuffle": """
def minibatch_sgd(X, y, w0, grad_fn, lr, batch_size, epochs, rng):
    w = np.array(w0, dtype=float)
    history = [w.copy()]
    for _ in range(epochs):
        for start in range(0, len(X), batch_size):
            w = w - lr * grad_fn(X[start : start + batch_size], y[start : start + batch_size], w)
        history.append(w.copy())
    return w, np.array(history)
""",
        "drops the last partial batch": """
def minibatch_sgd(X, y, w0, grad_fn, lr, batch_size, epochs, rng):
    w = np.array(w0, dtype=float)
    history = [w.copy()]
    for _ in range(epochs):
        order = rng.permutation(len(X))
        X_s, y_s = X[order], y[order]
        for start in range(0, len(X) - batch_size + 1, batch_size):
            w = w - lr * grad_fn(X_s[start:][:batch_size], y_s[start:][:batch_size], w)
        history.append(w.copy())
    return w, np.array(history)
""",
        "shuffles X but not y": """
def minibatch_sgd(X, y, w0, grad_fn, lr, batch_size, epochs, rng):
    w = np.array(w0, dtype=float)
    history = [w.copy()]
    for _ in range(epochs):
        X_s = X[rng.permutation(len(X))]
        for start in range(0, len(X), batch_size):
            w = w - lr * grad_fn(X_s[start : start + batch_size], y[start : start + batch_size], w)
        history.append(w.copy())
    return w, np.array(history)
""",
        "history without w0": """
def minibatch_sgd(X, y, w0, grad_fn, lr, batch_size, epochs, rng):
    w = np.array(w0, dtype=float)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(X))
        X_s, y_s = X[order], y[order]
        for start in range(0, len(X), batch_size):
            w = w - lr * grad_fn(X_s[start:][:batch_size], y_s[start:][:batch_size], w)
        history.append(w.copy())
    return w, np.array(history)
""",
    },
    "momentum_step": {
        "momentum with the wrong sign": """
def momentum_step(w, v, grad, lr, mu):
    v_new = -mu * v - lr * grad
    return w + v_new, v_new
""",
        "moves w by the old velocity": """
def momentum_step(w, v, grad, lr, mu):
    v_new = mu * v - lr * grad
    return w + v, v_new
""",
        "adds the gradient": """
def momentum_step(w, v, grad, lr, mu):
    v_new = mu * v + lr * grad
    return w + v_new, v_new
""",
        "returns (v_new, w_new)": """
def momentum_step(w, v, grad, lr, mu):
    v_new = mu * v - lr * grad
    return v_new, w + v_new
""",
    },
    "nesterov_step": {
        "no look-ahead": """
def nesterov_step(w, v, grad_fn, lr, mu):
    v_new = mu * v - lr * grad_fn(w)
    return w + v_new, v_new
""",
        "looks back instead of ahead": """
def nesterov_step(w, v, grad_fn, lr, mu):
    v_new = mu * v - lr * grad_fn(w - mu * v)
    return w + v_new, v_new
""",
        "look-ahead scaled by lr": """
def nesterov_step(w, v, grad_fn, lr, mu):
    v_new = mu * v - lr * grad_fn(w + lr * v)
    return w + v_new, v_new
""",
    },
    # The capstone's mutants follow its reference answer (see _replaced).
    "train": {
        "a single epoch": ("EPOCHS = 20", "EPOCHS = 1"),
        "no seed": (
            "generator = np.random.default_rng(seed)",
            "generator = np.random.default_rng()",
        ),
        "learning rate 0: no training": ("LEARNING_RATE = 0.1", "LEARNING_RATE = 0.0"),
        "loss of the last batch": (
            "losses.append(cross_entropy_loss(X, y, weights))",
            "losses.append(cross_entropy_loss(X[rows], y[rows], weights))",
        ),
    },
}

CASES = [
    pytest.param(exercise, label, id=f"{exercise}: {label}")
    for exercise, mutants in MUTANTS.items()
    for label in mutants
]


def _source(exercise: str, label: str) -> str:
    mutant = MUTANTS[exercise][label]
    return _replaced(exercise, *mutant) if isinstance(mutant, tuple) else mutant.lstrip("\n")


def test_every_exercise_has_three_mutants() -> None:
    """Every hidden check whose chapter exists has at least three bugs in the catalogue."""
    written = {exercise for exercise in CHECKS if exercise in _chapters()}
    assert written and written <= set(MUTANTS)
    assert all(len(mutants) >= 3 for mutants in MUTANTS.values())


@functools.cache
def _reference_verdicts(chapter: str) -> dict[str, verify.Verdict]:
    cells = verify.read_cells(with_answers(chapter, reference_answers(chapter)))
    return {
        exercise: verify.verify_exercise(
            verify.child_cells(cells, exercise), exercise, timeout=TIMEOUT
        )
        for exercise in reference_answers(chapter)
    }


@pytest.mark.parametrize("chapter", assignments())
def test_reference_keeps_full_marks(chapter: str) -> None:
    """Each chapter's reference answers pass every trusted check."""
    failing = {e: v.reason for e, v in _reference_verdicts(chapter).items() if not v.passed}
    assert failing == {}


@pytest.mark.parametrize("exercise, label", CASES)
def test_mutant_loses_only_its_own_points(exercise: str, label: str) -> None:
    """The mutant fails its exercise's trusted check, no other exercise of the chapter
    changes, and the screen does not mistake the bug for a cheat."""
    source = _source(exercise, label)
    assert screen.screen_cell(source, answer=True) == []
    chapter = _chapters().get(exercise)
    if chapter is None:  # a check without its chapter yet: the mutant must fail it alone
        cells = [verify.ChildCell("cell 1", "import numpy as np")]
        cells.append(verify.ChildCell(f"your answer cell `{exercise}`", source, answer=True))
        assert not verify.verify_exercise(cells, exercise, timeout=TIMEOUT).passed
        return
    answers = reference_answers(chapter)
    mutated = verify.read_cells(with_answers(chapter, answers | {exercise: source}))
    reference = verify.read_cells(with_answers(chapter, answers))
    for other in answers:
        cells = verify.child_cells(mutated, other)
        if other != exercise and cells == verify.child_cells(reference, other):
            verdict = _reference_verdicts(chapter)[other]  # what it sees is unchanged
        else:
            verdict = verify.verify_exercise(cells, other, timeout=TIMEOUT)
        assert verdict.passed == (other != exercise), (other, verdict.reason)


# --------------------------------------------------------------------------------------------
# A few mutants through the real autograde (slow)

THROUGH_NBGRADER = [
    ("numerical_gradient", "forward difference"),
    ("mse_gradient", "missing factor 2"),
    ("logistic_gradient", "sum instead of mean"),
    ("numerical_gradient", "perturbs w in place and does not restore it"),
]


@pytest.fixture(scope="module")
def autograded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    chapter = assignments()[0]
    answers = reference_answers(chapter)
    root = tmp_path_factory.mktemp("mutants")
    submitted, course, out = root / "submitted", root / "course", root / "grades.csv"
    students = {"reference": answers}
    for number, (exercise, label) in enumerate(THROUGH_NBGRADER):
        assert exercise in answers, f"{exercise} is not in {chapter} any more"
        students[f"mutant{number}"] = answers | {exercise: _source(exercise, label)}
    for student, given in students.items():
        folder = submitted / student / chapter
        folder.mkdir(parents=True)
        nbformat.write(lean(with_answers(chapter, given)), folder / f"{chapter}.ipynb")
    command = [
        sys.executable, "-m", "autograder", "autograde", "--submitted", str(submitted),
        "--course", str(course), "--out", str(out), "--jobs", "2",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3000)
    assert result.returncode == 0, result.stdout + result.stderr
    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in students:
            notebook = gradebook.find_submission_notebook(chapter, chapter, student)
            scores[student] = {g.name: (g.score, g.max_score) for g in notebook.grades}
    with out.open() as handle:
        totals = {row["student"]: float(row["score"]) for row in csv.DictReader(handle)}
    return {"scores": scores, "totals": totals}, course


@pytest.mark.slow
@pytest.mark.parametrize("number", range(len(THROUGH_NBGRADER)))
def test_mutant_loses_its_points_in_nbgrader(autograded: tuple[dict, Path], number: int) -> None:
    """Graded by nbgrader and re-checked, a mutant scores 0 on its exercise, full elsewhere."""
    exercise, _ = THROUGH_NBGRADER[number]
    scores = autograded[0]["scores"][f"mutant{number}"]
    for name, (score, maximum) in scores.items():
        assert score == (0 if name == f"correct_{exercise}" else maximum), name
    reference = autograded[0]["scores"]["reference"]
    assert all(score == maximum > 0 for score, maximum in reference.values())
