"""Gradients: a numerical checker and the analytic gradients of the two course losses.

Shapes: ``X`` is ``(n, d)``, ``y`` is ``(n,)`` and ``w`` is ``(d,)``.
"""

from collections.abc import Callable
from numbers import Real

import numpy as np
from numpy.typing import ArrayLike, NDArray

from descent.losses import sigmoid


def _check_X_y(X: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return X, y as float arrays after checking X is (n, d), y is (n,) and n >= 1."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array of shape (n, d), got shape {X.shape}")
    if y.shape != (len(X),):
        raise ValueError(f"y must have shape (n,) = ({len(X)},) to match X, got shape {y.shape}")
    if len(X) == 0:
        raise ValueError("X and y must contain at least one example, got n = 0")
    return X, y


def _check_data(
    X: ArrayLike, y: ArrayLike, w: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Return X, y, w as float arrays after checking their shapes are (n, d), (n,), (d,)."""
    X, y = _check_X_y(X, y)
    w = np.asarray(w, dtype=float)
    if w.shape != (X.shape[1],):
        raise ValueError(f"w must have shape (d,) = ({X.shape[1]},) to match X, got {w.shape}")
    return X, y, w


def numerical_gradient(
    f: Callable[[NDArray[np.float64]], float], w: ArrayLike, eps: float = 1e-6
) -> NDArray[np.float64]:
    """Central-difference estimate of the gradient of a scalar function ``f`` at ``w``.

    For every coordinate i (``e_i`` is the i-th unit array of ``w``'s shape):

        grad_i = (f(w + eps * e_i) - f(w - eps * e_i)) / (2 * eps)

    ``w`` may have any shape; the result is a float array of the same shape. ``w`` is not
    modified. The error is O(eps^2) from truncation plus O(machine epsilon / eps) from rounding.
    """
    if not callable(f):
        raise TypeError(f"f must be a callable returning a scalar, got {type(f).__name__}")
    if not isinstance(eps, Real) or isinstance(eps, bool):
        raise TypeError(f"eps must be a real number, got {type(eps).__name__}")
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    w = np.asarray(w, dtype=float)
    grad = np.empty_like(w)
    for index in np.ndindex(w.shape):
        step = np.zeros_like(w)
        step[index] = eps
        grad[index] = (float(f(w + step)) - float(f(w - step))) / (2 * eps)
    return grad


def mse_gradient(X: ArrayLike, y: ArrayLike, w: ArrayLike) -> NDArray[np.float64]:
    """Gradient of the mean squared error L(w) = (1/n) ||Xw - y||^2.

        grad L(w) = (2/n) X^T (Xw - y)

    Shapes: X (n, d), y (n,), w (d,) -> (d,).
    """
    X, y, w = _check_data(X, y, w)
    return 2.0 / len(X) * (X.T @ (X @ w - y))


def logistic_gradient(X: ArrayLike, y: ArrayLike, w: ArrayLike) -> NDArray[np.float64]:
    """Gradient of the mean binary cross-entropy of sigmoid(Xw) against labels y in {0, 1}.

        grad L(w) = (1/n) X^T (sigmoid(Xw) - y)

    Shapes: X (n, d), y (n,), w (d,) -> (d,).
    """
    X, y, w = _check_data(X, y, w)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"y must contain only the labels 0 and 1, got values {np.unique(y)}")
    return X.T @ (sigmoid(X @ w) - y) / len(X)
