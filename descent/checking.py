"""Assertions for the notebooks' tests, with messages a student can act on.

Every comparison in the course's tests — the visible ones in the chapters and the hidden ones
the autograder adds — goes through :func:`assert_close`, so the tolerances live here only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Relative and absolute tolerance for comparing a student's result with the expected one.
RTOL = 1e-6
ATOL = 1e-9


def _summary(value: Any) -> str:
    array = np.asarray(value)
    if array.size > 8:
        return f"array of shape {array.shape} (first values {np.ravel(array)[:4]} ...)"
    return np.array2string(array, precision=8) if array.ndim else repr(value)


def assert_close(
    actual: Any, expected: Any, *, call: str, rtol: float = RTOL, atol: float = ATOL
) -> None:
    """Check that ``actual`` equals ``expected`` up to the course tolerances.

    ``call`` describes what produced ``actual`` (e.g. ``"gd_step(w=[1, 2], grad=[1, 1],
    lr=0.5)"``); it starts every failure message, followed by what was expected and what
    came back, so the message says which input failed and how.
    """
    expected = np.asarray(expected, dtype=float)
    if actual is None:
        raise AssertionError(f"{call} returned None: did you forget `return`?")
    try:
        got = np.asarray(actual, dtype=float)
    except (TypeError, ValueError) as error:
        raise AssertionError(
            f"{call} returned {type(actual).__name__}, which is not an array of numbers"
        ) from error
    if got.shape != expected.shape:
        raise AssertionError(f"{call} returned shape {got.shape}, expected shape {expected.shape}")
    if not np.all(np.isfinite(got)):
        raise AssertionError(f"{call} returned non-finite values: {_summary(got)}")
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        worst = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape) if got.ndim else ()
        raise AssertionError(
            f"{call} is wrong.\n  expected: {_summary(expected)}\n  got:      {_summary(got)}"
            + (f"\n  largest difference at index {tuple(int(i) for i in worst)}" if worst else "")
        )
