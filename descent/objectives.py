"""Test functions with known geometry, for contour plots and convergence experiments.

Shape convention: every ``value``/``grad`` accepts one point of shape ``(d,)`` or a stack of
points of shape ``(..., d)`` (e.g. a meshgrid stacked on the last axis, ``(ny, nx, 2)``).
Values have shape ``(...)`` (a float for one point), gradients have shape ``(..., d)``.
"""

from dataclasses import dataclass
from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def _points(w: ArrayLike, d: int) -> FloatArray:
    """Return ``w`` as a float array whose last axis has length ``d``."""
    w = np.asarray(w, dtype=float)
    if w.ndim == 0 or w.shape[-1] != d:
        raise ValueError(f"expected points of shape (..., {d}), got {w.shape}")
    return w


@dataclass(frozen=True, eq=False)
class Quadratic:
    """Quadratic f(w) = 1/2 w^T A w - b^T w with A symmetric positive definite, shape (d, d).

    grad f(w) = A w - b, the minimizer is w* = A^{-1} b, and f is m-strongly convex and L-smooth
    with m, L the smallest and largest eigenvalues of A. Gradient descent converges for step
    sizes lr < 2 / L, at a rate governed by the condition number kappa = L / m.
    """

    A: FloatArray
    b: FloatArray

    def __post_init__(self) -> None:
        A = np.array(self.A, dtype=float)
        b = np.array(self.b, dtype=float)
        if A.ndim != 2 or A.shape[0] != A.shape[1] or b.shape != (A.shape[0],):
            raise ValueError(f"expected A (d, d) and b (d,), got A {A.shape} and b {b.shape}")
        if not np.allclose(A, A.T):
            raise ValueError("A must be symmetric")
        if np.linalg.eigvalsh(A)[0] <= 0:
            raise ValueError("A must be positive definite (all eigenvalues > 0)")
        A.flags.writeable = b.flags.writeable = False
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)

    @classmethod
    def ravine(cls, kappa: float, L: float = 1.0, angle: float = 0.0) -> Self:
        """2-D quadratic with eigenvalues L and L / kappa, minimizer at the origin (b = 0).

        A = R diag(L, L / kappa) R^T, with R the rotation by ``angle`` radians: the steep
        direction is (cos angle, sin angle) and the flat one is perpendicular to it.
        """
        if kappa < 1 or L <= 0:
            raise ValueError(f"need kappa >= 1 and L > 0, got kappa={kappa}, L={L}")
        c, s = np.cos(angle), np.sin(angle)
        R = np.array([[c, -s], [s, c]])
        return cls(R @ np.diag([L, L / kappa]) @ R.T, np.zeros(2))

    @classmethod
    def random(cls, d: int, m: float = 1.0, L: float = 10.0, seed: int = 0) -> Self:
        """Random d-dimensional quadratic with eigenvalues evenly spread over [m, L].

        A = Q diag(linspace(m, L, d)) Q^T with Q a random orthogonal matrix, b ~ N(0, I);
        so the condition number is exactly L / m. Reproducible for a given ``seed``.
        """
        if d < 2 or not 0 < m <= L:
            raise ValueError(f"need d >= 2 and 0 < m <= L, got d={d}, m={m}, L={L}")
        rng = np.random.default_rng(seed)
        Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        A = Q @ np.diag(np.linspace(m, L, d)) @ Q.T
        return cls((A + A.T) / 2, rng.standard_normal(d))

    @property
    def dim(self) -> int:
        """Dimension d."""
        return self.b.shape[0]

    def value(self, w: ArrayLike) -> float | FloatArray:
        """f(w) = 1/2 w^T A w - b^T w for w of shape (d,) or (..., d); returns shape (...)."""
        w = _points(w, self.dim)
        return 0.5 * np.einsum("...i,ij,...j->...", w, self.A, w) - w @ self.b

    def grad(self, w: ArrayLike) -> FloatArray:
        """grad f(w) = A w - b for w of shape (d,) or (..., d); returns shape (..., d)."""
        return _points(w, self.dim) @ self.A - self.b  # A is symmetric: w A = (A w)^T

    @property
    def minimizer(self) -> FloatArray:
        """w* = A^{-1} b, shape (d,)."""
        return np.linalg.solve(self.A, self.b)

    @property
    def eigenvalues(self) -> FloatArray:
        """Eigenvalues of A in ascending order, shape (d,)."""
        return np.linalg.eigvalsh(self.A)

    @property
    def L(self) -> float:
        """Smoothness constant: the largest eigenvalue of A."""
        return float(self.eigenvalues[-1])

    @property
    def m(self) -> float:
        """Strong-convexity constant: the smallest eigenvalue of A."""
        return float(self.eigenvalues[0])

    @property
    def condition_number(self) -> float:
        """kappa = L / m >= 1."""
        return self.L / self.m


def rosenbrock(w: ArrayLike, a: float = 1.0, b: float = 100.0) -> float | FloatArray:
    """Rosenbrock's banana f(x, y) = (a - x)^2 + b (y - x^2)^2, minimum 0 at (a, a^2).

    ``w`` has shape (2,) or (..., 2); returns shape (...).
    """
    x, y = np.moveaxis(_points(w, 2), -1, 0)
    return (a - x) ** 2 + b * (y - x**2) ** 2


def rosenbrock_grad(w: ArrayLike, a: float = 1.0, b: float = 100.0) -> FloatArray:
    """Gradient of :func:`rosenbrock`: (-2 (a - x) - 4 b x (y - x^2), 2 b (y - x^2)).

    ``w`` has shape (2,) or (..., 2); returns shape (..., 2).
    """
    x, y = np.moveaxis(_points(w, 2), -1, 0)
    return np.stack([-2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)], axis=-1)
