"""Fast unit tests of the helper package ``descent`` (no notebooks, no network)."""

import itertools
import re
import warnings

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets
import numpy as np
import pytest
from matplotlib.lines import Line2D

from descent import sliders
from descent.data import (
    add_bias,
    blobs_experiment,
    digits_split,
    linear_regression_data,
    one_hot,
    standardize,
)
from descent.losses import logistic_loss, mse_loss, sigmoid
from descent.objectives import Quadratic, rosenbrock, rosenbrock_grad
from descent.plotting import contour, loss_curve, path_line, subplots
from descent.sliders import Explorer, Param


def finite_difference(f, w, h=1e-6):
    """Central-difference gradient of a scalar function at one point."""
    w = np.asarray(w, dtype=float)
    return np.array([(f(w + h * e) - f(w - h * e)) / (2 * h) for e in np.eye(len(w))])


# --- losses ---------------------------------------------------------------------------------


def test_sigmoid_is_stable_and_symmetric():
    z = np.array([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        s, s_neg = sigmoid(z), sigmoid(-z)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    np.testing.assert_allclose(s_neg, 1 - s, atol=1e-15)
    np.testing.assert_allclose(sigmoid(z[1:-1]), 1 / (1 + np.exp(-z[1:-1])), rtol=1e-12)


def test_losses_match_naive_formulas_on_moderate_inputs():
    rng = np.random.default_rng(0)
    X, w = rng.standard_normal((30, 3)), rng.standard_normal(3)
    y_real, y_bin = rng.standard_normal(30), rng.integers(0, 2, 30).astype(float)
    assert mse_loss(X, y_real, w) == pytest.approx(np.sum((X @ w - y_real) ** 2) / 30)
    p = 1 / (1 + np.exp(-(X @ w)))
    naive = -np.mean(y_bin * np.log(p) + (1 - y_bin) * np.log(1 - p))
    assert logistic_loss(X, y_bin, w) == pytest.approx(naive, rel=1e-12)


def test_logistic_loss_is_finite_and_correct_for_huge_logits():
    X, y = np.array([[1.0], [1.0]]), np.array([1.0, 0.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = logistic_loss(X, y, np.array([1e4]))
    # the correct example costs ~0, the wrong one costs its logit: mean = 1e4 / 2
    assert np.isfinite(loss) and loss == pytest.approx(5e3)


def test_losses_reject_bad_shapes_and_labels():
    X = np.ones((4, 2))
    with pytest.raises(ValueError, match="expected X"):
        mse_loss(X, np.ones(4), np.ones(3))
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        logistic_loss(X, np.array([-1.0, 1.0, 1.0, -1.0]), np.zeros(2))


# --- objectives -----------------------------------------------------------------------------


def test_quadratic_gradient_minimizer_and_constants():
    q = Quadratic.random(4, m=0.5, L=8.0, seed=3)
    w = np.array([0.3, -1.2, 2.0, 0.7])
    np.testing.assert_allclose(q.grad(w), finite_difference(q.value, w), atol=1e-6)
    np.testing.assert_allclose(q.grad(q.minimizer), 0.0, atol=1e-12)
    assert q.value(q.minimizer) < q.value(q.minimizer + 0.1)
    assert (q.m, q.L, q.condition_number) == pytest.approx((0.5, 8.0, 16.0))


@pytest.mark.parametrize("kappa, angle", [(1.0, 0.0), (10.0, 0.3), (250.0, 2.0)])
def test_ravine_has_requested_condition_number(kappa, angle):
    q = Quadratic.ravine(kappa, L=2.0, angle=angle)
    assert q.condition_number == pytest.approx(kappa)
    np.testing.assert_allclose(q.eigenvalues, [2.0 / kappa, 2.0])
    steep = np.array([np.cos(angle), np.sin(angle)])  # eigenvector of the largest eigenvalue
    np.testing.assert_allclose(q.A @ steep, 2.0 * steep, atol=1e-12)
    np.testing.assert_allclose(q.minimizer, 0.0, atol=1e-12)


def test_quadratic_rejects_non_spd_matrices():
    with pytest.raises(ValueError, match="symmetric"):
        Quadratic(np.array([[1.0, 2.0], [0.0, 1.0]]), np.zeros(2))
    with pytest.raises(ValueError, match="positive definite"):
        Quadratic(np.diag([1.0, -1.0]), np.zeros(2))


@pytest.mark.parametrize(
    "value, grad",
    [(Quadratic.random(2, seed=1).value, Quadratic.random(2, seed=1).grad),
     (rosenbrock, rosenbrock_grad)],
)  # fmt: skip
def test_stacked_evaluation_equals_per_point(value, grad):
    W = np.random.default_rng(0).standard_normal((3, 4, 2))
    assert value(W).shape == (3, 4) and grad(W).shape == (3, 4, 2)
    for i, j in np.ndindex(3, 4):
        assert value(W)[i, j] == pytest.approx(value(W[i, j]))
        np.testing.assert_allclose(grad(W)[i, j], grad(W[i, j]))


def test_rosenbrock_gradient_and_minimum():
    for w in ([-1.2, 1.0], [0.5, 0.1], [2.0, -1.0]):
        np.testing.assert_allclose(
            rosenbrock_grad(w), finite_difference(rosenbrock, w), rtol=1e-6, atol=1e-4
        )
    assert rosenbrock([1.0, 1.0]) == 0.0
    np.testing.assert_array_equal(rosenbrock_grad([1.0, 1.0]), [0.0, 0.0])
    assert rosenbrock([2.0, 4.0], a=2.0, b=5.0) == 0.0


# --- data -----------------------------------------------------------------------------------


def test_blobs_experiment_shapes_bias_and_reproducibility():
    split = blobs_experiment()
    X_train, X_test, y_train, y_test = split
    assert X_train.shape == (500, 3) and X_test.shape == (500, 3)
    assert y_train.shape == (500,) and y_test.shape == (500,) and y_train.dtype == float
    np.testing.assert_array_equal(X_train[:, -1], 1.0)
    assert set(np.unique(np.concatenate([y_train, y_test]))) == {0.0, 1.0}
    again = blobs_experiment()
    for a, b in zip(split, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_digits_split_is_stratified_without_leakage():
    X_train, X_test, y_train, y_test = digits_split(test_size=0.25, seed=0)
    assert X_train.shape[1] == X_test.shape[1] == 65
    assert len(X_train) + len(X_test) == 1797 and len(X_test) == 450
    assert np.issubdtype(y_train.dtype, np.integer) and set(y_train) == set(range(10))
    np.testing.assert_array_equal(X_train[:, -1], 1.0)
    assert X_train[:, :-1].min() >= 0.0 and X_train[:, :-1].max() <= 1.0
    # no test image also appears in the training set
    train_rows = {row.tobytes() for row in X_train}
    assert sum(row.tobytes() in train_rows for row in X_test) == 0
    np.testing.assert_allclose(np.bincount(y_test) / 450, np.bincount(y_train) / 1347, atol=0.01)


def test_standardize_uses_training_statistics_only():
    X_train = np.array([[1.0, 5.0, 1.0], [3.0, 5.0, 1.0]])  # column 2 constant, column 3 bias
    X_test = np.array([[5.0, 7.0, 1.0]])
    Z_train, Z_test = standardize(X_train, X_test)
    np.testing.assert_allclose(Z_train, [[-1.0, 5.0, 1.0], [1.0, 5.0, 1.0]])
    np.testing.assert_allclose(Z_test, [[3.0, 7.0, 1.0]])  # (5 - 2) / 1, constants unchanged
    np.testing.assert_allclose(standardize(X_train), Z_train)
    X_tr, X_te, _, _ = digits_split(scale="standard")
    np.testing.assert_allclose(X_tr[:, :-1].mean(axis=0), 0.0, atol=1e-12)
    assert abs(X_te[:, :-1].mean()) > 1e-6  # test set is not re-centered on its own stats


def test_add_bias_one_hot_and_regression_data():
    np.testing.assert_array_equal(add_bias([[2.0], [3.0]]), [[2.0, 1.0], [3.0, 1.0]])
    np.testing.assert_array_equal(one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="labels"):
        one_hot([0, 3], n_classes=3)
    X, y, w_true = linear_regression_data(n=2000, d=2, noise=0.0, feature_scales=[1.0, 10.0])
    assert X.shape == (2000, 2) and y.shape == (2000,) and w_true.shape == (2,)
    np.testing.assert_allclose(X.std(axis=0), [1.0, 10.0], rtol=0.05)
    np.testing.assert_allclose(y, X @ w_true)


# --- plotting -------------------------------------------------------------------------------


def test_plotting_helpers_return_updatable_artists():
    fig, (ax1, ax2) = subplots(1, 2)
    cs = contour(ax1, Quadratic.ravine(10).value, (-2, 2), (-1, 1), levels=12)
    assert len(cs.levels) == 13 and ax1.get_xlim() == (-2, 2)
    line = path_line(ax1, np.zeros((0, 2)))
    line.set_data([0.0, 1.0], [0.0, 0.5])
    assert isinstance(line, Line2D) and line.get_marker() == "o"
    curve = loss_curve(ax2, [1.0, 0.1, 0.01], label="gd")
    assert ax2.get_yscale() == "log" and list(curve.get_xdata()) == [0, 1, 2]
    with pytest.raises(ValueError, match="returned shape"):
        contour(ax1, lambda w: w, (-1, 1), (-1, 1))
    matplotlib.pyplot.close(fig)


# --- sliders --------------------------------------------------------------------------------


@pytest.fixture
def explorer():
    fig, ax = subplots(figsize=(3, 2))
    ax.set(xlim=(0, 4), ylim=(0, 4))
    line = path_line(ax, [])
    calls = []

    def update(a, b):
        calls.append((a, b))
        line.set_data([0, a], [0, b])

    ex = Explorer(
        fig, update, {"a": Param("a", [1, 2, 3], 2), "b": Param("b", (0.5, 1.5, 2.5, 3.5), 1.5)}
    )
    ex.calls = calls
    return ex


def frames(html):
    """The base64 PNG frames embedded by matplotlib's HTMLWriter (wrapped over lines)."""
    return re.findall(r'"data:image/png;base64,([^"]+)"', html)


def test_param_validates_default():
    assert Param("x", np.array([0.1, 0.2]), 0.2).values == (0.1, 0.2)
    with pytest.raises(ValueError, match="is not in its values"):
        Param("x", [1, 2], 3)


def test_explorer_calls_update_with_defaults(explorer):
    assert explorer.calls == [(2, 1.5)]
    assert matplotlib.pyplot.get_fignums() == []  # detached from pyplot


def test_widget_has_one_slider_per_param_and_redraws(explorer):
    box = explorer.widget()
    sliders_ = [w for w in box.children if isinstance(w, widgets.SelectionSlider)]
    (image,) = [w for w in box.children if isinstance(w, widgets.Image)]
    assert [s.description for s in sliders_] == ["a", "b"]
    assert [s.value for s in sliders_] == [2, 1.5] and sliders_[1].label == "1.5"
    before = image.value
    sliders_[0].value = 3
    assert explorer.calls[-1] == (3, 1.5) and image.value != before


def test_to_jshtml_has_one_distinct_frame_per_value(explorer):
    explorer.widget().children[0].value = 3  # the live slider moved; frames use the defaults
    png_before = explorer.png()
    html = explorer.to_jshtml("b")
    assert len(frames(html)) == 4 and len(set(frames(html))) == 4
    assert "https://" not in html and 'class="fa' not in html  # offline: no CDN icon font
    assert [c for c in explorer.calls[2:-1] if c[0] != 2] == []
    assert explorer.calls[-1] == (3, 1.5) and explorer.png() == png_before  # state restored
    with pytest.raises(KeyError, match="unknown Param"):
        explorer.to_jshtml("c")


def test_mimebundle_without_static_frames_outside_the_book(explorer, monkeypatch):
    monkeypatch.delenv(sliders.STATIC_FRAMES_ENV, raising=False)
    bundle = explorer.mimebundle()
    assert set(bundle) == {sliders.WIDGET_MIME, "text/plain"}


def test_mimebundle_holds_widget_html_and_text(explorer, monkeypatch):
    monkeypatch.setenv(sliders.STATIC_FRAMES_ENV, "1")
    bundle = explorer.mimebundle()
    assert set(bundle) == {sliders.WIDGET_MIME, "text/html", "text/plain"}
    assert bundle[sliders.WIDGET_MIME]["model_id"]
    assert len(frames(bundle["text/html"])) == 3  # default: sweep the first Param
    shown = []
    monkeypatch.setattr(sliders, "display", lambda obj, raw: shown.append((obj, raw)))
    explorer.show(vary="b")
    ((obj, raw),) = shown
    assert raw is True and len(frames(obj["text/html"])) == 4


def test_time_update_reports_milliseconds_per_param(explorer):
    timings = explorer.time_update(repeats=3)
    assert set(timings) == {"a", "b"} and all(t > 0 for t in timings.values())
    assert explorer.calls[-1] == (2, 1.5)


def test_time_update_reads_the_given_clock(explorer):
    """One tick of the clock (a second) across 4 redraws is 250 ms per redraw."""
    ticks = itertools.count()
    timings = explorer.time_update(repeats=4, clock=lambda: float(next(ticks)))
    assert timings == {"a": 250.0, "b": 250.0}
