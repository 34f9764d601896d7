"""Loss functions shared by the course notebooks, the solutions and the tests.

Shapes: ``X`` is ``(n, d)``, ``y`` is ``(n,)`` and ``w`` is ``(d,)``; both losses return a float.
"""

import numpy as np
from numpy.typing import ArrayLike, NDArray


def sigmoid(z: ArrayLike) -> NDArray[np.float64]:
    """Logistic function sigma(z) = 1 / (1 + exp(-z)), elementwise, without overflow.

    Only exp(-|z|), which lies in (0, 1], is ever computed:
    sigma(z) = 1 / (1 + exp(-|z|)) for z >= 0 and exp(-|z|) / (1 + exp(-|z|)) for z < 0,
    so no warning is raised even for |z| = 1e4. The result has the shape of ``z``.
    """
    z = np.asarray(z, dtype=float)
    exp_minus_abs = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + exp_minus_abs), exp_minus_abs / (1.0 + exp_minus_abs))


def _as_xyw(
    X: ArrayLike, y: ArrayLike, w: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Convert to float arrays and check X is (n, d), y is (n,) and w is (d,)."""
    X, y, w = (np.asarray(a, dtype=float) for a in (X, y, w))
    if X.ndim != 2 or y.shape != (X.shape[0],) or w.shape != (X.shape[1],):
        raise ValueError(
            f"expected X (n, d), y (n,), w (d,); got X {X.shape}, y {y.shape}, w {w.shape}"
        )
    return X, y, w


def mse_loss(X: ArrayLike, y: ArrayLike, w: ArrayLike) -> float:
    """Mean squared error L(w) = (1/n) * sum_i (x_i . w - y_i)^2."""
    X, y, w = _as_xyw(X, y, w)
    return float(np.mean((X @ w - y) ** 2))


def logistic_loss(X: ArrayLike, y: ArrayLike, w: ArrayLike) -> float:
    """Mean binary cross-entropy of sigma(Xw) against labels y in {0, 1}.

    L(w) = -(1/n) * sum_i [y_i log sigma(z_i) + (1 - y_i) log(1 - sigma(z_i))], z = Xw,
    computed in the equivalent overflow-free form (1/n) * sum_i [log(1 + exp(z_i)) - y_i z_i]
    (``np.logaddexp(0, z)``), so it stays finite for any finite logits.
    """
    X, y, w = _as_xyw(X, y, w)
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("logistic_loss expects labels y in {0, 1} (not -1/+1 or class ids)")
    z = X @ w
    return float(np.mean(np.logaddexp(0.0, z) - y * z))
