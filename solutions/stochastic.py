"""Stochastic and mini-batch gradient descent over a data set (X, y).

Shapes: ``X`` is ``(n, d)`` and ``y`` is ``(n,)``. ``grad_fn(X_batch, y_batch, w)`` returns the
gradient of the loss on that batch, with the shape of ``w``. Inputs are never modified.
"""

from collections.abc import Callable, Iterator

import numpy as np
from numpy.typing import ArrayLike, NDArray

from solutions.batch import _check_count, _check_lr, gd_step
from solutions.gradients import _check_X_y

GradFn = Callable[[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]], ArrayLike]


def _check_rng(rng: np.random.Generator) -> None:
    """Raise unless ``rng`` is a NumPy Generator."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )


def sgd_epoch(
    X: ArrayLike,
    y: ArrayLike,
    w: ArrayLike,
    grad_fn: GradFn,
    lr: float,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """One epoch of stochastic gradient descent, one example per update.

    For i in rng.permutation(n) (drawn once):  w <- w - lr * grad_fn(X[i:i+1], y[i:i+1], w)

    The slices keep their batch axis: shapes (1, d) and (1,). Returns the new ``w``.
    """
    X, y = _check_X_y(X, y)
    _check_lr(lr)
    _check_rng(rng)
    w = np.array(w, dtype=float)
    for i in rng.permutation(len(X)):
        w = gd_step(w, grad_fn(X[i : i + 1], y[i : i + 1], w), lr)
    return w


def next_batch(
    X: ArrayLike, y: ArrayLike, batch_size: int
) -> Iterator[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Yield consecutive batches (X[i:i+b], y[i:i+b]) for i = 0, b, 2b, ... with b = batch_size.

    The last batch is smaller when b does not divide n. The arguments are checked when
    ``next_batch`` is called, not when the first batch is requested.
    """
    X, y = _check_X_y(X, y)
    _check_count(batch_size, "batch_size", minimum=1)
    return ((X[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(X), batch_size))


def minibatch_sgd(
    X: ArrayLike,
    y: ArrayLike,
    w0: ArrayLike,
    grad_fn: GradFn,
    lr: float,
    batch_size: int,
    epochs: int,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mini-batch SGD: each epoch shuffles once and takes one step per batch.

    Every epoch: order = rng.permutation(n); then for each (X_b, y_b) in
    next_batch(X[order], y[order], batch_size):  w <- w - lr * grad_fn(X_b, y_b, w)

    Returns ``(w, history)``: the final weights and ``history`` of shape
    ``(epochs + 1, *w0.shape)`` holding ``w0`` followed by the weights after each epoch.
    """
    X, y = _check_X_y(X, y)
    _check_lr(lr)
    _check_count(batch_size, "batch_size", minimum=1)
    _check_count(epochs, "epochs", minimum=0)
    _check_rng(rng)
    w = np.array(w0, dtype=float)
    history = np.empty((epochs + 1, *w.shape))
    history[0] = w
    for epoch in range(epochs):
        order = rng.permutation(len(X))
        for X_batch, y_batch in next_batch(X[order], y[order], batch_size):
            w = gd_step(w, grad_fn(X_batch, y_batch, w), lr)
        history[epoch + 1] = w
    return w, history
