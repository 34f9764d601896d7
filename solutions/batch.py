"""Full-batch gradient descent: one step and a whole run.

Every function returns new arrays; its inputs are never modified.
"""

from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _check_lr(lr: float) -> None:
    """Raise unless the learning rate is a finite real number >= 0."""
    if not isinstance(lr, Real) or isinstance(lr, bool):
        raise TypeError(f"lr must be a real number, got {type(lr).__name__}")
    if not (np.isfinite(lr) and lr >= 0):
        raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")


def _check_count(value: int, name: str, minimum: int) -> None:
    """Raise unless ``value`` is an integer >= ``minimum``; ``name`` is used in the message."""
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def gd_step(w: ArrayLike, grad: ArrayLike, lr: float) -> NDArray[np.float64]:
    """One gradient-descent step: w_new = w - lr * grad.

    ``w`` and ``grad`` must have the same shape (no broadcasting); the result has that shape.
    """
    _check_lr(lr)
    w = np.asarray(w, dtype=float)
    grad = np.asarray(grad, dtype=float)
    if grad.shape != w.shape:
        raise ValueError(f"grad must have the same shape as w {w.shape}, got {grad.shape}")
    return w - lr * grad


def gradient_descent(
    grad_fn: Callable[[NDArray[np.float64]], ArrayLike], w0: ArrayLike, lr: float, n_steps: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Run ``n_steps`` steps of gradient descent from ``w0``.

        w_{k+1} = w_k - lr * grad_fn(w_k),  k = 0, ..., n_steps - 1

    Returns ``(w, path)``: the final weights (shape of ``w0``) and every iterate
    ``path[k] = w_k``, of shape ``(n_steps + 1, *w0.shape)``, so ``path[0]`` equals ``w0``.
    """
    _check_lr(lr)
    _check_count(n_steps, "n_steps", minimum=0)
    w = np.array(w0, dtype=float)
    path = np.empty((n_steps + 1, *w.shape))
    path[0] = w
    for k in range(n_steps):
        w = gd_step(w, grad_fn(w), lr)
        path[k + 1] = w
    return w, path
