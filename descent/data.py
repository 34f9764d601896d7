"""Data sets and preprocessing for the course. Nothing is ever downloaded.

Conventions: ``X`` is ``(n, d)`` float, ``y`` is ``(n,)``; the bias is the LAST column of ``X``
(see :func:`add_bias`), so the bias weight is ``w[-1]``.
"""

from typing import Literal, NamedTuple, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


class Split(NamedTuple):
    """A train/test split, in scikit-learn's ``train_test_split`` order."""

    X_train: FloatArray
    X_test: FloatArray
    y_train: NDArray[np.float64] | NDArray[np.int64]
    y_test: NDArray[np.float64] | NDArray[np.int64]


def _matrix(X: ArrayLike, name: str = "X") -> FloatArray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d), got shape {X.shape}")
    return X


def add_bias(X: ArrayLike) -> FloatArray:
    """Append a column of ones as the last column: (n, d) -> (n, d + 1), so x . w includes w[-1]."""
    X = _matrix(X)
    return np.hstack([X, np.ones((X.shape[0], 1))])


@overload
def standardize(X_train: ArrayLike, X_test: None = None) -> FloatArray: ...
@overload
def standardize(X_train: ArrayLike, X_test: ArrayLike) -> tuple[FloatArray, FloatArray]: ...
def standardize(
    X_train: ArrayLike, X_test: ArrayLike | None = None
) -> FloatArray | tuple[FloatArray, FloatArray]:
    """Standardize columns with the TRAINING mean and std: x -> (x - mean_train) / std_train.

    The test set (if given) is transformed with the same training statistics, so nothing leaks
    from it. Columns that are constant on the training set (std 0, e.g. a bias column of ones
    or an always-blank pixel) are passed through unchanged instead of dividing by zero.
    Returns ``X_train_std`` alone, or ``(X_train_std, X_test_std)`` when ``X_test`` is given.
    """
    X_train = _matrix(X_train, "X_train")
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    constant = std == 0
    mean[constant], std[constant] = 0.0, 1.0
    if X_test is None:
        return (X_train - mean) / std
    X_test = _matrix(X_test, "X_test")
    if X_test.shape[1] != X_train.shape[1]:
        raise ValueError(f"X_test has {X_test.shape[1]} columns, X_train has {X_train.shape[1]}")
    return (X_train - mean) / std, (X_test - mean) / std


def linear_regression_data(
    n: int = 200,
    d: int = 2,
    noise: float = 0.1,
    seed: int = 0,
    feature_scales: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Synthetic regression y = X w_true + noise * eps, without a bias column.

    Features are x_j ~ N(0, feature_scales[j]^2) (default all 1), w_true ~ N(0, I) and
    eps ~ N(0, 1). Unequal ``feature_scales`` such as ``(1, 10)`` give the MSE an
    ill-conditioned Hessian (2/n) X^T X, which is what :func:`standardize` fixes.
    Returns ``(X, y, w_true)`` with shapes (n, d), (n,), (d,).
    """
    scales = np.ones(d) if feature_scales is None else np.asarray(feature_scales, dtype=float)
    if scales.shape != (d,) or np.any(scales <= 0):
        raise ValueError(f"feature_scales must be {d} positive numbers, got {scales}")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * scales
    w_true = rng.standard_normal(d)
    y = X @ w_true + noise * rng.standard_normal(n)
    return X, y, w_true


def blobs_experiment() -> Split:
    """The course's binary-classification experiment, exactly as in the sources.

    ``make_blobs(n_samples=1000, n_features=2, centers=2, cluster_std=1.5, random_state=1)``,
    a bias column appended (X becomes (1000, 3)), then
    ``train_test_split(X, y, test_size=0.5, random_state=42)``: 500 train and 500 test rows,
    labels as float 0.0/1.0 of shape (n,).
    """
    from sklearn.datasets import make_blobs  # sklearn is imported lazily: it is slow to load
    from sklearn.model_selection import train_test_split

    X, y = make_blobs(n_samples=1000, n_features=2, centers=2, cluster_std=1.5, random_state=1)
    X_train, X_test, y_train, y_test = train_test_split(
        add_bias(X), y.astype(float), test_size=0.5, random_state=42
    )
    return Split(X_train, X_test, y_train, y_test)


def digits_split(
    test_size: float = 0.25, seed: int = 0, scale: Literal["unit", "standard"] = "unit"
) -> Split:
    """scikit-learn's bundled 8x8 digits (1797 images, 10 classes), stratified train/test split.

    Features are the 64 pixels, scaled to [0, 1] (``scale="unit"``, pixel / 16) or standardized
    with the training statistics (``scale="standard"``), then a bias column is appended:
    X is (n, 65). Labels are integer class ids 0..9 of shape (n,); see :func:`one_hot`.
    """
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download
    from sklearn.model_selection import train_test_split

    if scale not in ("unit", "standard"):
        raise ValueError(f"scale must be 'unit' or 'standard', got {scale!r}")
    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=test_size, random_state=seed, stratify=digits.target
    )
    if scale == "unit":
        X_train, X_test = X_train / 16.0, X_test / 16.0
    else:
        X_train, X_test = standardize(X_train, X_test)
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    return Split(add_bias(X_train), add_bias(X_test), y_train, y_test)


def one_hot(y: ArrayLike, n_classes: int | None = None) -> FloatArray:
    """One-hot encode integer labels: (n,) -> (n, K) float with Y[i, y[i]] = 1.

    ``n_classes`` (K) defaults to max(y) + 1; pass it explicitly for a subset that may miss
    some classes.
    """
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be a 1-D array of integer labels, got {y.dtype} {y.shape}")
    K = int(y.max()) + 1 if n_classes is None else n_classes
    if y.size and (y.min() < 0 or y.max() >= K):
        raise ValueError(f"labels must lie in [0, {K}), got range [{y.min()}, {y.max()}]")
    return np.eye(K)[y]
