"""Unit tests of the capstone's model, ``descent.models`` (softmax regression)."""

import warnings

import numpy as np
import pytest

from descent.models import (
    TARGET_ACCURACY,
    accuracy,
    cross_entropy_gradient,
    cross_entropy_loss,
    log_softmax,
    loss_and_accuracy,
    predict,
    softmax,
)


def random_problem(seed=0, n=12, d=4, K=3):
    """Random X (n, d), integer labels y (n,) covering every class, and weights W (d, K)."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(K), rng.integers(0, K, n - K)])
    return rng.normal(size=(n, d)), y, rng.normal(size=(d, K))


def finite_difference_gradient(X, y, W, h=1e-6):
    """Central differences of the loss, one weight at a time."""
    grad = np.zeros_like(W)
    for index in np.ndindex(W.shape):
        step = np.zeros_like(W)
        step[index] = h
        grad[index] = (cross_entropy_loss(X, y, W + step) - cross_entropy_loss(X, y, W - step)) / (
            2 * h
        )
    return grad


# --- softmax --------------------------------------------------------------------------------


def test_softmax_rows_are_probabilities_without_overflow():
    Z = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4], [-1e4, -1e4 + 1.0, -1e4], [1.0, 2.0, 3.0]])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        P = softmax(Z)
        log_P = log_softmax(Z)
    assert np.all(np.isfinite(P)) and np.all(P >= 0) and np.all(np.isfinite(log_P))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(P[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(P[1], [1 / 3, 1 / 3, 1 / 3])
    e = np.exp([0.0, 1.0, 0.0])
    np.testing.assert_allclose(P[2], e / e.sum(), rtol=1e-12)
    np.testing.assert_allclose(P[3], np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum())
    assert log_P[0, 2] == pytest.approx(-2e4)  # exp would underflow to 0; its log is exact
    np.testing.assert_allclose(np.exp(log_P), P, rtol=1e-12)


def test_softmax_is_shift_invariant_and_works_on_stacks():
    Z = np.random.default_rng(1).normal(size=(2, 5, 4))
    np.testing.assert_allclose(softmax(Z + 100.0), softmax(Z), rtol=1e-12)
    np.testing.assert_allclose(softmax(Z)[1, 3], softmax(Z[1, 3]))


# --- loss and gradient ----------------------------------------------------------------------


def test_loss_at_zero_weights_is_log_K():
    X, y, W = random_problem(K=4)
    assert cross_entropy_loss(X, y, np.zeros_like(W)) == pytest.approx(np.log(4), rel=1e-15)


def test_loss_and_gradient_by_hand():
    # two examples, two features, two classes, W = 0: every probability is 1/2, so
    # loss = log 2 and grad = (1/n) X^T (P - Y) = 1/2 [[1, 0], [0, 1]]^T [[-1/2, 1/2], [1/2, -1/2]]
    X, y, W = np.eye(2), np.array([0, 1]), np.zeros((2, 2))
    assert cross_entropy_loss(X, y, W) == pytest.approx(np.log(2))
    np.testing.assert_allclose(cross_entropy_gradient(X, y, W), [[-0.25, 0.25], [0.25, -0.25]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_matches_finite_differences(seed):
    X, y, W = random_problem(seed)
    np.testing.assert_allclose(
        cross_entropy_gradient(X, y, W), finite_difference_gradient(X, y, W), rtol=1e-6, atol=1e-9
    )


def test_gradient_is_mean_of_per_example_gradients_and_loss_matches_naive_formula():
    X, y, W = random_problem(3, n=7)
    per_example = [cross_entropy_gradient(X[i : i + 1], y[i : i + 1], W) for i in range(7)]
    np.testing.assert_allclose(cross_entropy_gradient(X, y, W), np.mean(per_example, axis=0))
    P = np.exp(X @ W) / np.exp(X @ W).sum(axis=1, keepdims=True)
    naive = -np.mean(np.log(P[np.arange(7), y]))
    assert cross_entropy_loss(X, y, W) == pytest.approx(naive, rel=1e-12)


def test_loss_of_a_perfect_model_goes_to_zero():
    # feature j is on exactly for class j: W = c * I scores the right class c, the others 0
    X, y = np.eye(3), np.array([0, 1, 2])
    losses = [cross_entropy_loss(X, y, c * np.eye(3)) for c in (1.0, 5.0, 10.0)]
    assert losses[0] > losses[1] > losses[2] > 0
    assert losses[2] == pytest.approx(np.log(1 + 2 * np.exp(-10.0)), rel=1e-6)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert cross_entropy_loss(X, y, 1e4 * np.eye(3)) == 0.0
        np.testing.assert_allclose(cross_entropy_gradient(X, y, 1e4 * np.eye(3)), 0.0, atol=0)
    assert accuracy(X, y, np.eye(3)) == 1.0


def test_huge_wrong_scores_give_a_finite_loss():
    X, y = np.eye(2), np.array([1, 0])  # the model below is confidently wrong on both
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = cross_entropy_loss(X, y, 1e4 * np.eye(2))
        grad = cross_entropy_gradient(X, y, 1e4 * np.eye(2))
    assert loss == pytest.approx(1e4)
    np.testing.assert_allclose(grad, [[0.5, -0.5], [-0.5, 0.5]])


# --- predictions, stacks and validation -----------------------------------------------------


def test_predict_and_accuracy_by_hand():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    W = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, 1.0]])  # scores [2,0,1], [0,3,1], [2,3,2]
    np.testing.assert_array_equal(predict(X, W), [0, 1, 1])
    assert accuracy(X, np.array([0, 1, 2]), W) == pytest.approx(2 / 3)
    loss, acc = loss_and_accuracy(X, np.array([0, 1, 2]), W)
    assert acc == pytest.approx(2 / 3)
    assert loss == pytest.approx(cross_entropy_loss(X, np.array([0, 1, 2]), W))


def test_a_stack_of_weights_gives_one_result_per_model():
    X, y, _ = random_problem(4)
    stack = np.random.default_rng(5).normal(size=(2, 3, X.shape[1], 3))
    loss, grad = cross_entropy_loss(X, y, stack), cross_entropy_gradient(X, y, stack)
    acc, (loss2, acc2) = accuracy(X, y, stack), loss_and_accuracy(X, y, stack)
    assert loss.shape == acc.shape == (2, 3) and grad.shape == stack.shape
    for i, j in np.ndindex(2, 3):
        assert loss[i, j] == pytest.approx(cross_entropy_loss(X, y, stack[i, j]), rel=1e-12)
        assert acc[i, j] == accuracy(X, y, stack[i, j]) == acc2[i, j]
        assert loss2[i, j] == pytest.approx(loss[i, j], rel=1e-12)
        np.testing.assert_allclose(grad[i, j], cross_entropy_gradient(X, y, stack[i, j]))
    assert isinstance(cross_entropy_loss(X, y, stack[0, 0]), float)


def test_float_labels_are_accepted_and_inputs_are_not_modified():
    X, y, W = random_problem(6)
    X0, W0 = X.copy(), W.copy()
    np.testing.assert_array_equal(
        cross_entropy_gradient(X, y.astype(float), W), cross_entropy_gradient(X, y, W)
    )
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(W, W0)


@pytest.mark.parametrize(
    "X, y, W, message",
    [
        (np.ones((3, 2)), np.array([0, 1, 1]), np.ones((3, 2)), "expected X"),
        (np.ones((3, 2)), np.array([0, 1]), np.ones((2, 2)), "expected X"),
        (np.ones((3, 2)), np.array([0.0, 0.5, 1.0]), np.ones((2, 2)), "integer class ids"),
        (np.ones((3, 2)), np.array([0, 1, 2]), np.ones((2, 2)), r"lie in \[0, 2\)"),
        (np.ones((3, 2)), np.array([0, -1, 1]), np.ones((2, 2)), r"lie in \[0, 2\)"),
        (np.ones((0, 2)), np.array([], dtype=int), np.ones((2, 2)), "at least one example"),
    ],
)
def test_bad_inputs_raise_informative_errors(X, y, W, message):
    with pytest.raises(ValueError, match=message):
        cross_entropy_gradient(X, y, W)


def test_target_accuracy_is_a_fraction():
    assert 0.0 < TARGET_ACCURACY < 1.0
