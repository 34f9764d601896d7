"""Heavy-ball (Polyak) momentum and Nesterov momentum: one step each.

The velocity ``v`` has the shape of ``w`` and starts at zero. Inputs are never modified.
"""

from collections.abc import Callable
from numbers import Real

import numpy as np
from numpy.typing import ArrayLike, NDArray

from solutions.batch import _check_lr


def _check_mu(mu: float) -> None:
    """Raise unless the momentum coefficient is a real number in [0, 1)."""
    if not isinstance(mu, Real) or isinstance(mu, bool):
        raise TypeError(f"mu must be a real number, got {type(mu).__name__}")
    if not 0 <= mu < 1:
        raise ValueError(f"mu must be in [0, 1), got {mu!r}")


def momentum_step(
    w: ArrayLike, v: ArrayLike, grad: ArrayLike, lr: float, mu: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One momentum step with the gradient ``grad`` taken at ``w``:

        v_new = mu * v - lr * grad
        w_new = w + v_new

    ``w``, ``v`` and ``grad`` must share one shape. Returns ``(w_new, v_new)``.
    """
    _check_lr(lr)
    _check_mu(mu)
    w, v, grad = (np.asarray(a, dtype=float) for a in (w, v, grad))
    if v.shape != w.shape or grad.shape != w.shape:
        raise ValueError(
            f"w, v and grad must have the same shape, got {w.shape}, {v.shape} and {grad.shape}"
        )
    v_new = mu * v - lr * grad
    return w + v_new, v_new


def nesterov_step(
    w: ArrayLike,
    v: ArrayLike,
    grad_fn: Callable[[NDArray[np.float64]], ArrayLike],
    lr: float,
    mu: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One Nesterov step: the gradient is taken at the look-ahead point w + mu * v.

        g     = grad_fn(w + mu * v)
        v_new = mu * v - lr * g
        w_new = w + v_new

    Returns ``(w_new, v_new)``, each of the shape of ``w``.
    """
    _check_lr(lr)
    _check_mu(mu)
    w = np.asarray(w, dtype=float)
    v = np.asarray(v, dtype=float)
    if v.shape != w.shape:
        raise ValueError(f"v must have the same shape as w {w.shape}, got {v.shape}")
    return momentum_step(w, v, grad_fn(w + mu * v), lr, mu)
