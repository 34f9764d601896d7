"""Unit tests of the reference solutions in ``solutions/``.

Checks: single steps worked out by hand with explicit numbers; analytic gradients against
central differences; equivalences between the optimisers (momentum with mu = 0 is gradient
descent, Nesterov with a constant gradient is momentum, mini-batch SGD with one batch is
gradient descent and with batches of one is ``sgd_epoch``); the shuffling contract of the
stochastic methods; that no function modifies its inputs; the validation error messages; and
that ``sigmoid`` is overflow-free.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import descent.losses
import solutions
from solutions import (
    gd_step,
    gradient_descent,
    logistic_gradient,
    logistic_loss,
    minibatch_sgd,
    momentum_step,
    mse_gradient,
    mse_loss,
    nesterov_step,
    next_batch,
    numerical_gradient,
    sgd_epoch,
    sigmoid,
)

SEEDS = range(5)


def regression_data(seed: int, n: int = 8, d: int = 3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=n), rng.normal(size=d)


def classification_data(seed: int, n: int = 8, d: int = 3):
    X, _, w = regression_data(seed, n, d)
    y = (np.random.default_rng(seed + 100).random(n) < 0.5).astype(float)
    return X, y, w


# --- the flat namespace -------------------------------------------------------------------------


def test_losses_are_reexported_from_descent_losses():
    assert solutions.sigmoid is descent.losses.sigmoid
    assert solutions.mse_loss is descent.losses.mse_loss
    assert solutions.logistic_loss is descent.losses.logistic_loss
    assert all(callable(getattr(solutions, name)) for name in solutions.__all__)


# --- one step by hand ---------------------------------------------------------------------------


def test_mse_gradient_by_hand():
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([1.0, 2.0])
    w = np.array([1.0, -1.0])
    # Xw = [-1, -1], residual Xw - y = [-2, -3], X^T r = [-11, -16], times 2/n = 1
    assert_allclose(mse_gradient(X, y, w), [-11.0, -16.0])


def test_logistic_gradient_by_hand():
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([1.0, 0.0])
    # sigmoid(X @ 0) = [0.5, 0.5], minus y = [-0.5, 0.5], X^T (...) = [1, 1], divided by n = 2
    assert_allclose(logistic_gradient(X, y, np.zeros(2)), [0.5, 0.5])


def test_losses_by_hand():
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert mse_loss(X, np.array([1.0, 2.0]), np.array([1.0, -1.0])) == pytest.approx(6.5)
    # every prediction is sigmoid(0) = 1/2, whatever the label: loss = log 2
    assert logistic_loss(X, np.array([1.0, 0.0]), np.zeros(2)) == pytest.approx(np.log(2))


def test_gd_step_by_hand():
    new_w = gd_step(np.array([1.0, 2.0]), np.array([0.5, -1.0]), lr=0.1)
    assert_allclose(new_w, [0.95, 2.1])


def test_gradient_descent_by_hand():
    # f(w) = w^2, grad 2w; with lr = 0.25 every step halves w
    w, path = gradient_descent(lambda w: 2 * w, np.array([1.0]), lr=0.25, n_steps=3)
    assert_allclose(path, [[1.0], [0.5], [0.25], [0.125]])
    assert_allclose(w, [0.125])


def test_momentum_step_by_hand():
    w, v = momentum_step(np.array([1.0]), np.array([0.5]), np.array([2.0]), lr=0.1, mu=0.9)
    # v_new = 0.9 * 0.5 - 0.1 * 2 = 0.25, w_new = 1 + 0.25
    assert_allclose(v, [0.25])
    assert_allclose(w, [1.25])


def test_nesterov_step_by_hand():
    calls = []

    def grad_fn(w):
        calls.append(w.copy())
        return 2 * w

    w, v = nesterov_step(np.array([1.0]), np.array([0.5]), grad_fn, lr=0.1, mu=0.9)
    # look-ahead 1 + 0.9 * 0.5 = 1.45, g = 2.9, v_new = 0.45 - 0.29 = 0.16, w_new = 1.16
    assert_allclose(np.concatenate(calls), [1.45])
    assert_allclose(v, [0.16])
    assert_allclose(w, [1.16])


# --- gradients ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_mse_gradient_matches_numerical_gradient(seed):
    X, y, w = regression_data(seed)
    numerical = numerical_gradient(lambda w: mse_loss(X, y, w), w)
    assert_allclose(mse_gradient(X, y, w), numerical, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
def test_logistic_gradient_matches_numerical_gradient(seed):
    X, y, w = classification_data(seed)
    numerical = numerical_gradient(lambda w: logistic_loss(X, y, w), w)
    assert_allclose(logistic_gradient(X, y, w), numerical, rtol=1e-6, atol=1e-8)


def test_mse_gradient_vanishes_at_least_squares_solution():
    X, y, _ = regression_data(0, n=20)
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    assert_allclose(mse_gradient(X, y, w_star), 0.0, atol=1e-12)


def test_numerical_gradient_on_2d_weights():
    rng = np.random.default_rng(0)
    B = rng.normal(size=(3, 4))
    W = rng.normal(size=(3, 4))
    # f(W) = sum(B * W) + sum(W^3) has gradient B + 3 W^2, same shape as W
    grad = numerical_gradient(lambda W: np.sum(B * W) + np.sum(W**3), W)
    assert grad.shape == (3, 4)
    assert_allclose(grad, B + 3 * W**2, rtol=1e-6, atol=1e-8)


def test_numerical_gradient_is_exact_on_a_quadratic():
    # central differences have no truncation error on a quadratic: only rounding remains
    rng = np.random.default_rng(1)
    M = rng.normal(size=(4, 4))
    A = M @ M.T
    b = rng.normal(size=4)
    w = rng.normal(size=4)
    grad = numerical_gradient(lambda w: 0.5 * w @ A @ w - b @ w, w, eps=1e-3)
    assert_allclose(grad, A @ w - b, rtol=1e-9, atol=1e-10)


def test_numerical_gradient_of_a_scalar_and_of_integer_weights():
    assert_allclose(numerical_gradient(lambda w: w**2, np.array(3.0)), 6.0, rtol=1e-8)
    grad = numerical_gradient(lambda w: np.sum(w**2), np.array([1, 2]))
    assert grad.dtype == np.float64
    assert_allclose(grad, [2.0, 4.0], rtol=1e-8)


# --- equivalences between optimisers ------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_momentum_with_zero_mu_is_gradient_descent(seed):
    rng = np.random.default_rng(seed)
    w, v, grad = rng.normal(size=(3, 4))
    new_w, new_v = momentum_step(w, v, grad, lr=0.3, mu=0.0)
    assert_allclose(new_w, gd_step(w, grad, lr=0.3), rtol=0, atol=1e-15)
    assert_allclose(new_v, -0.3 * grad, rtol=0, atol=1e-15)


def test_nesterov_with_constant_gradient_is_momentum():
    rng = np.random.default_rng(0)
    grad = rng.normal(size=3)
    w_nesterov = w_momentum = rng.normal(size=3)
    v_nesterov = v_momentum = np.zeros(3)
    for _ in range(10):
        w_nesterov, v_nesterov = nesterov_step(w_nesterov, v_nesterov, lambda w: grad, 0.1, 0.9)
        w_momentum, v_momentum = momentum_step(w_momentum, v_momentum, grad, 0.1, 0.9)
    assert_allclose(w_nesterov, w_momentum, rtol=1e-14)
    assert_allclose(v_nesterov, v_momentum, rtol=1e-14)


def test_gradient_descent_converges_to_least_squares_solution():
    X, y, _ = regression_data(2, n=30)
    w, path = gradient_descent(lambda w: mse_gradient(X, y, w), np.zeros(3), lr=0.1, n_steps=500)
    assert path.shape == (501, 3)
    assert_array_equal(path[0], np.zeros(3))
    assert_array_equal(path[-1], w)
    assert_allclose(w, np.linalg.lstsq(X, y, rcond=None)[0], atol=1e-8)


def test_gradient_descent_with_zero_steps_returns_a_copy_of_w0():
    w0 = np.array([[1.0, 2.0], [3.0, 4.0]])
    w, path = gradient_descent(lambda w: w, w0, lr=0.1, n_steps=0)
    assert path.shape == (1, 2, 2)
    assert_array_equal(path[0], w0)
    assert_array_equal(w, w0)
    assert not np.shares_memory(w, w0)


# --- stochastic methods -------------------------------------------------------------------------


def test_sgd_epoch_visits_each_example_once_in_permutation_order():
    n = 6
    X = np.arange(2.0 * n).reshape(n, 2)
    y = 10.0 * np.arange(n)
    seen = []

    def spy(X_batch, y_batch, w):
        seen.append((X_batch.copy(), y_batch.copy(), w.copy()))
        return np.ones_like(w)

    rng = np.random.default_rng(3)
    w = sgd_epoch(X, y, np.zeros(2), spy, lr=0.5, rng=rng)

    reference_rng = np.random.default_rng(3)
    order = reference_rng.permutation(n)
    assert not np.array_equal(order, np.arange(n)), "pick a seed whose permutation shuffles"
    assert rng.bit_generator.state == reference_rng.bit_generator.state, "one permutation only"
    assert len(seen) == n
    for k, ((X_batch, y_batch, w_seen), i) in enumerate(zip(seen, order, strict=True)):
        assert X_batch.shape == (1, 2)
        assert y_batch.shape == (1,)
        assert_array_equal(X_batch, X[i : i + 1])
        assert_array_equal(y_batch, y[i : i + 1])
        assert_allclose(w_seen, [-0.5 * k, -0.5 * k])  # k updates of -lr * 1 so far
    assert_allclose(w, [-0.5 * n, -0.5 * n])


@pytest.mark.parametrize(
    ("n", "batch_size", "expected_sizes"),
    [(7, 3, [3, 3, 1]), (6, 3, [3, 3]), (7, 7, [7]), (7, 10, [7]), (3, 1, [1, 1, 1])],
)
def test_next_batch_sizes_and_contents(n, batch_size, expected_sizes):
    X = np.arange(2.0 * n).reshape(n, 2)
    y = np.arange(float(n))
    batches = list(next_batch(X, y, batch_size))
    assert [len(X_batch) for X_batch, _ in batches] == expected_sizes
    assert [len(y_batch) for _, y_batch in batches] == expected_sizes
    assert_array_equal(np.concatenate([X_batch for X_batch, _ in batches]), X)
    assert_array_equal(np.concatenate([y_batch for _, y_batch in batches]), y)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_next_batch_rejects_batch_size_below_one_when_called(batch_size):
    X, y, _ = regression_data(0)
    with pytest.raises(ValueError, match=r"batch_size must be >= 1"):
        next_batch(X, y, batch_size)  # no next(): the check must not be lazy


def test_minibatch_sgd_history_shape_and_start():
    X, y, w0 = regression_data(0)
    rng = np.random.default_rng(0)
    w, history = minibatch_sgd(X, y, w0, mse_gradient, 0.05, 3, 4, rng)
    assert history.shape == (5, 3)
    assert_array_equal(history[0], w0)
    assert_array_equal(history[-1], w)
    assert not np.allclose(history[1], history[0])


def test_minibatch_sgd_shuffles_once_per_epoch_and_batches_consecutively():
    n, batch_size, epochs = 5, 2, 3
    X = np.arange(2.0 * n).reshape(n, 2)
    y = np.arange(float(n))
    seen_labels = []

    def spy(X_batch, y_batch, w):
        seen_labels.append(y_batch.copy())
        return np.zeros_like(w)

    rng = np.random.default_rng(5)
    minibatch_sgd(X, y, np.zeros(2), spy, 0.1, batch_size, epochs, rng)

    reference_rng = np.random.default_rng(5)
    orders = [reference_rng.permutation(n) for _ in range(epochs)]
    assert rng.bit_generator.state == reference_rng.bit_generator.state
    assert [len(labels) for labels in seen_labels] == [2, 2, 1] * epochs
    assert_array_equal(np.concatenate(seen_labels), y[np.concatenate(orders)])


def test_minibatch_sgd_with_one_batch_is_gradient_descent_on_the_mean_gradient():
    X, y, w0 = regression_data(1, n=10)
    _, history = minibatch_sgd(X, y, w0, mse_gradient, 0.05, len(X), 6, np.random.default_rng(0))
    _, path = gradient_descent(lambda w: mse_gradient(X, y, w), w0, 0.05, 6)
    assert_allclose(history, path, rtol=1e-12, atol=1e-14)


def test_minibatch_sgd_with_batches_of_one_is_sgd_epoch():
    X, y, w0 = regression_data(2, n=10)
    _, history = minibatch_sgd(X, y, w0, mse_gradient, 0.05, 1, 4, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    w = w0
    for epoch in range(4):
        w = sgd_epoch(X, y, w, mse_gradient, 0.05, rng)
        assert_allclose(history[epoch + 1], w, rtol=1e-14, atol=1e-15)


# --- inputs are never modified ------------------------------------------------------------------

CALLS = {
    "numerical_gradient": lambda a: numerical_gradient(
        lambda w: mse_loss(a["X"], a["y"], w), a["w"]
    ),
    "mse_gradient": lambda a: mse_gradient(a["X"], a["y"], a["w"]),
    "logistic_gradient": lambda a: logistic_gradient(a["X"], a["y"], a["w"]),
    "gd_step": lambda a: gd_step(a["w"], a["grad"], 0.1),
    "gradient_descent": lambda a: gradient_descent(lambda w: a["grad"], a["w"], 0.1, 3),
    "sgd_epoch": lambda a: sgd_epoch(
        a["X"], a["y"], a["w"], mse_gradient, 0.1, np.random.default_rng(0)
    ),
    "minibatch_sgd": lambda a: minibatch_sgd(
        a["X"], a["y"], a["w"], mse_gradient, 0.1, 2, 2, np.random.default_rng(0)
    ),
    "momentum_step": lambda a: momentum_step(a["w"], a["v"], a["grad"], 0.1, 0.9),
    "nesterov_step": lambda a: nesterov_step(a["w"], a["v"], lambda w: a["grad"], 0.1, 0.9),
}


@pytest.mark.parametrize("name", CALLS)
def test_inputs_are_not_modified_and_outputs_are_new_arrays(name):
    X, y, w = classification_data(0)
    rng = np.random.default_rng(1)
    inputs = {"X": X, "y": y, "w": w, "v": rng.normal(size=3), "grad": rng.normal(size=3)}
    copies = {key: value.copy() for key, value in inputs.items()}

    result = CALLS[name](inputs)

    for key, value in inputs.items():
        assert_array_equal(value, copies[key], err_msg=f"{name} modified its input {key}")
    outputs = result if isinstance(result, tuple) else (result,)
    for output in outputs:
        assert not any(np.shares_memory(output, value) for value in inputs.values())


def test_next_batch_does_not_modify_its_inputs():
    X, y, _ = regression_data(0)
    X_copy, y_copy = X.copy(), y.copy()
    assert len(list(next_batch(X, y, 3))) == 3
    assert_array_equal(X, X_copy)
    assert_array_equal(y, y_copy)


# --- validation ---------------------------------------------------------------------------------

X4, Y4, W4 = regression_data(0, n=4)
ONES = np.ones(3)
RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: mse_gradient(X4, np.ones(5), W4), ValueError, r"y must have shape \(n,\) = \(4"),
        (lambda: mse_gradient(X4, Y4, np.ones(2)), ValueError, r"w must have shape \(d,\) = \(3"),
        (lambda: mse_gradient(np.ones(4), Y4, W4), ValueError, r"X must be a 2-D array"),
        (lambda: mse_gradient(X4[:0], Y4[:0], W4), ValueError, r"at least one example"),
        (lambda: logistic_gradient(X4, np.sign(Y4), W4), ValueError, r"only the labels 0 and 1"),
        (lambda: numerical_gradient(np.sum, W4, eps=0.0), ValueError, r"eps must be a finite"),
        (lambda: numerical_gradient("f", W4), TypeError, r"f must be a callable"),
        (lambda: gd_step(ONES, ONES, np.nan), ValueError, r"lr must be a finite number >= 0"),
        (lambda: gd_step(ONES, ONES, np.inf), ValueError, r"lr must be a finite number >= 0"),
        (lambda: gd_step(ONES, ONES, -0.1), ValueError, r"lr must be a finite number >= 0"),
        (lambda: gd_step(ONES, ONES, "0.1"), TypeError, r"lr must be a real number, got str"),
        (lambda: gd_step(ONES, ONES[:, None], 0.1), ValueError, r"grad must have the same shape"),
        (lambda: gradient_descent(abs, ONES, 0.1, -1), ValueError, r"n_steps must be >= 0"),
        (lambda: gradient_descent(abs, ONES, 0.1, 2.0), TypeError, r"n_steps must be an integer"),
        (lambda: momentum_step(ONES, ONES, ONES, 0.1, 1.0), ValueError, r"mu must be in \[0, 1\)"),
        (lambda: momentum_step(ONES, ONES, ONES, 0.1, -0.1), ValueError, r"mu must be in \[0, 1\)"),
        (lambda: momentum_step(ONES, ONES[:2], ONES, 0.1, 0.5), ValueError, r"the same shape"),
        (lambda: nesterov_step(ONES, ONES, np.negative, 0.1, np.nan), ValueError, r"mu must be in"),
        (lambda: nesterov_step(ONES, ONES[:2], np.negative, 0.1, 0.5), ValueError, r"v must have"),
        (lambda: sgd_epoch(X4, Y4, W4, mse_gradient, 0.1, 42), TypeError, r"rng must be a numpy"),
        (lambda: sgd_epoch(X4, Y4[:3], W4, mse_gradient, 0.1, RNG), ValueError, r"y must have"),
        (lambda: next_batch(X4, Y4, 1.5), TypeError, r"batch_size must be an integer"),
        (lambda: minibatch_sgd(X4, Y4, W4, mse_gradient, 0.1, 0, 1, RNG), ValueError, r"batch_si"),
        (lambda: minibatch_sgd(X4, Y4, W4, mse_gradient, 0.1, 2, -1, RNG), ValueError, r"epochs"),
    ],
)
def test_invalid_arguments_raise_informative_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- sigmoid ------------------------------------------------------------------------------------


def test_sigmoid_is_overflow_free_and_saturates():
    z = np.concatenate([-np.logspace(4, -3, 50), [0.0], np.logspace(-3, 4, 50)])  # sorted
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        s = sigmoid(z)
    assert np.all((s >= 0) & (s <= 1))
    assert sigmoid(1e4) == 1.0
    assert sigmoid(-1e4) == 0.0
    assert np.all(np.diff(s) >= 0)


def test_sigmoid_values():
    assert sigmoid(0.0) == 0.5
    z = np.linspace(-30, 30, 61)
    assert_allclose(sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-14)
    assert_allclose(sigmoid(z) + sigmoid(-z), 1.0, rtol=0, atol=1e-15)


def test_logistic_gradient_is_finite_for_huge_margins():
    X, y, _ = classification_data(0)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        grad = logistic_gradient(X, y, np.full(3, 1e4))
    assert np.all(np.isfinite(grad))
