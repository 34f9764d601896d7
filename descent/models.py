"""Softmax regression (multinomial logistic regression): the model the capstone trains.

Only the model lives here — scores, probabilities, loss, gradient, predictions. How the weights
are updated (the optimizers) is the course's exercises and never appears in this module.

Shapes: ``X`` is ``(n, d)`` with the bias as its last column (:func:`descent.data.add_bias`),
``y`` is ``(n,)`` of class ids ``0..K-1`` and the weights ``W`` are ``(d, K)``, one column of
scores per class. Labels may be integers or floats holding integers (the course's optimizers
pass ``y`` on as floats). ``W`` may carry leading axes, ``(..., d, K)``: a stack of models
evaluated at once on the same data (e.g. one per learning rate of a grid); every result then
carries those leading axes too.

The model: scores ``Z = X W``, probabilities ``P = softmax(Z)`` row by row, and the mean
cross-entropy ``L(W) = -(1/n) sum_i log P[i, y_i]`` with gradient ``(1/n) X^T (P - Y)``, where
``Y`` is the one-hot encoding of ``y``.
"""

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

#: The capstone's pass mark: the test accuracy a trained model must reach on
#: ``descent.data.digits_split()``. The notebook's visible test and the hidden check share it.
TARGET_ACCURACY = 0.95


def softmax(Z: ArrayLike) -> FloatArray:
    """Row-wise softmax along the last axis: P[..., k] = exp(Z[..., k]) / sum_j exp(Z[..., j]).

    The row maximum is subtracted first (softmax(z) = softmax(z - c) for any constant c), so
    the largest exponent is exp(0) = 1: no overflow, even for scores of 1e4. Same shape as Z.
    """
    Z = np.asarray(Z, dtype=float)
    E = np.exp(Z - Z.max(axis=-1, keepdims=True))
    return E / E.sum(axis=-1, keepdims=True)


def log_softmax(Z: ArrayLike) -> FloatArray:
    """log(softmax(Z)) along the last axis, computed as (Z - max) - log(sum(exp(Z - max))).

    Finite for any finite scores, including probabilities that would underflow to 0.
    """
    Z = np.asarray(Z, dtype=float)
    shifted = Z - Z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _check(X: ArrayLike, y: ArrayLike, W: ArrayLike) -> tuple[FloatArray, np.ndarray, FloatArray]:
    """X, y, W as arrays after checking shapes; y becomes integer class ids in [0, K)."""
    X = np.asarray(X, dtype=float)
    W = np.asarray(W, dtype=float)
    y = np.asarray(y)
    if X.ndim != 2 or W.ndim < 2 or W.shape[-2] != X.shape[1] or y.shape != (X.shape[0],):
        raise ValueError(
            f"expected X (n, d), y (n,) and W (..., d, K); got X {X.shape}, y {y.shape}, "
            f"W {W.shape}"
        )
    if X.shape[0] == 0:
        raise ValueError("X and y must contain at least one example, got n = 0")
    if y.dtype.kind in "iu":
        labels = y
    else:
        labels = y.astype(np.int64)
        if not np.array_equal(labels, y):
            raise ValueError(f"y must hold integer class ids, got values such as {y[:5]}")
    K = W.shape[-1]
    if labels.min() < 0 or labels.max() >= K:
        raise ValueError(
            f"class ids must lie in [0, {K}) for W with {K} columns, "
            f"got range [{labels.min()}, {labels.max()}]"
        )
    return X, labels, W


def _loss_from_scores(Z: FloatArray, labels: np.ndarray) -> FloatArray:
    """Mean of log(sum_k exp(z_ik)) - z_i,y_i over the rows of scores Z (..., n, K)."""
    top = Z.max(axis=-1)
    log_sum_exp = top + np.log(np.exp(Z - top[..., None]).sum(axis=-1))
    return (log_sum_exp - Z[..., np.arange(len(labels)), labels]).mean(axis=-1)


def _scalar_or_array(value: FloatArray) -> float | FloatArray:
    return float(value) if value.ndim == 0 else value


def cross_entropy_loss(X: ArrayLike, y: ArrayLike, W: ArrayLike) -> float | FloatArray:
    """Mean cross-entropy L(W) = -(1/n) sum_i log softmax(x_i W)[y_i].

    Computed as the mean of logsumexp(z_i) - z_i[y_i] with the row maximum factored out of the
    logsumexp (as in :func:`log_softmax`), so it stays finite for any finite weights. A float
    for W of shape (d, K); an array of shape (...) for a stack of models (..., d, K).
    """
    X, labels, W = _check(X, y, W)
    return _scalar_or_array(_loss_from_scores(X @ W, labels))


def cross_entropy_gradient(X: ArrayLike, y: ArrayLike, W: ArrayLike) -> FloatArray:
    """Gradient of :func:`cross_entropy_loss` with respect to W: (1/n) X^T (P - Y).

    P = softmax(X W) and Y is one-hot(y); P - Y is formed by subtracting 1 at each example's
    true class. Returns the shape of W: (d, K), or (..., d, K) for a stack of models.
    """
    X, labels, W = _check(X, y, W)
    residual = softmax(X @ W)  # (..., n, K), a new array: safe to modify
    residual[..., np.arange(len(labels)), labels] -= 1.0
    return X.T @ residual / len(labels)


def predict(X: ArrayLike, W: ArrayLike) -> NDArray[np.int64]:
    """Predicted class ids: the highest-scoring class of each row, shape (..., n)."""
    return np.argmax(np.asarray(X, dtype=float) @ np.asarray(W, dtype=float), axis=-1)


def accuracy(X: ArrayLike, y: ArrayLike, W: ArrayLike) -> float | FloatArray:
    """Fraction of rows whose predicted class equals y: a float, or shape (...) for a stack."""
    X, labels, W = _check(X, y, W)
    return _scalar_or_array((predict(X, W) == labels).mean(axis=-1))


def loss_and_accuracy(
    X: ArrayLike, y: ArrayLike, W: ArrayLike
) -> tuple[float | FloatArray, float | FloatArray]:
    """``(cross_entropy_loss(X, y, W), accuracy(X, y, W))`` from one product X W.

    Half the work of calling both, for recording learning curves once per epoch.
    """
    X, labels, W = _check(X, y, W)
    Z = X @ W
    hits = (np.argmax(Z, axis=-1) == labels).mean(axis=-1)
    return _scalar_or_array(_loss_from_scores(Z, labels)), _scalar_or_array(hits)
