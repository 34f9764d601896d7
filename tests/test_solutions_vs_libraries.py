"""The reference optimisers agree with independent implementations in scikit-learn and PyTorch.

Every test runs 50 steps on the same strongly convex quadratic in float64,

    f(w) = 1/2 w^T A w - b^T w,    grad f(w) = A w - b,

with A a random 5 x 5 symmetric positive definite matrix (eigenvalues 1 to 10), and asserts that
the whole trajectory agrees to 1e-10. Our momentum methods keep (w, v), v_0 = 0:

    momentum:  v_{k+1} = mu v_k - lr grad f(w_k),          w_{k+1} = w_k + v_{k+1}
    Nesterov:  v_{k+1} = mu v_k - lr grad f(w_k + mu v_k), w_{k+1} = w_k + v_{k+1}

The libraries store other variables; each test's docstring derives the change of variables.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

from solutions import gradient_descent, momentum_step, nesterov_step

N_STEPS = 50
LR = 0.05
MU = 0.9
ATOL = 1e-10


@pytest.fixture
def quadratic():
    """(A, b, w0): A = Q diag(1, ..., 10) Q^T with Q a random orthogonal matrix."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    A = Q @ np.diag(np.linspace(1.0, 10.0, 5)) @ Q.T
    A = (A + A.T) / 2  # exactly symmetric, so autograd's (A + A^T) p / 2 is A p
    return A, rng.normal(size=5), rng.normal(size=5)


def our_momentum_trajectory(A, b, w0, nesterov):
    """Iterates (w_k) and velocities (v_k), k = 0..N_STEPS, of our momentum or Nesterov steps."""
    w, v = w0, np.zeros_like(w0)
    ws, vs = [w], [v]
    for _ in range(N_STEPS):
        if nesterov:
            w, v = nesterov_step(w, v, lambda w: A @ w - b, LR, MU)
        else:
            w, v = momentum_step(w, v, A @ w - b, LR, MU)
        ws.append(w)
        vs.append(v)
    return np.array(ws), np.array(vs)


@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_momentum_matches_sklearn_sgd_optimizer(quadratic, nesterov):
    """scikit-learn's SGDOptimizer keeps parameters theta and velocities u, u_0 = 0, and uses
    the gradient at its own parameters, g = grad f(theta_k):

        u_{k+1} = mu u_k - lr g
        theta_{k+1} = theta_k + u_{k+1}                  (nesterov=False)
        theta_{k+1} = theta_k + mu u_{k+1} - lr g        (nesterov=True)

    Without Nesterov this is our update with theta = w and u = v.

    With Nesterov, theta is our look-ahead point and u our velocity:

        theta_k = w_k + mu v_k,    u_k = v_k        (inverse: w_k = theta_k - mu u_k).

    Proof by induction. At k = 0: u_0 = v_0 = 0 and theta_0 = w_0. If it holds at k, both
    methods take the gradient at the same point theta_k = w_k + mu v_k, so u_{k+1} = v_{k+1};
    and theta_{k+1} = w_k + mu v_k - lr g + mu u_{k+1} = w_k + v_{k+1} + mu v_{k+1}
    = w_{k+1} + mu v_{k+1}.
    """
    A, b, w0 = quadratic
    theta = w0.copy()
    optimizer = SGDOptimizer(
        [theta], learning_rate_init=LR, lr_schedule="constant", momentum=MU, nesterov=nesterov
    )
    thetas, velocities = [theta.copy()], [optimizer.velocities[0].copy()]
    for _ in range(N_STEPS):
        optimizer.update_params([theta], [A @ theta - b])  # updates theta in place
        thetas.append(theta.copy())
        velocities.append(optimizer.velocities[0].copy())

    ws, vs = our_momentum_trajectory(A, b, w0, nesterov)
    expected_thetas = ws + MU * vs if nesterov else ws
    assert_allclose(np.array(thetas), expected_thetas, rtol=0, atol=ATOL)
    assert_allclose(np.array(velocities), vs, rtol=0, atol=ATOL)
    assert not np.allclose(thetas[-1], thetas[0]), "the optimiser must have moved"


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="PyTorch is optional: only this comparison uses it")


def torch_sgd_trajectory(torch, A, b, w0, momentum, nesterov):
    """Parameters p_k (k = 0..N_STEPS) and momentum buffers (k = 1..N_STEPS) of torch.optim.SGD.

    The gradient comes from autograd on f, independently of our A w - b.
    """
    A_t, b_t = torch.from_numpy(A), torch.from_numpy(b)
    p = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=LR, momentum=momentum, nesterov=nesterov)
    params, buffers = [w0.copy()], []
    for _ in range(N_STEPS):
        optimizer.zero_grad()
        loss = 0.5 * p @ A_t @ p - b_t @ p
        loss.backward()
        optimizer.step()
        params.append(p.detach().numpy().copy())
        if momentum:
            buffers.append(optimizer.state[p]["momentum_buffer"].numpy().copy())
    return np.array(params), np.array(buffers)


def test_plain_sgd_matches_torch(torch, quadratic):
    """With momentum=0, torch.optim.SGD is p_{k+1} = p_k - lr grad f(p_k): gradient descent."""
    A, b, w0 = quadratic
    params, _ = torch_sgd_trajectory(torch, A, b, w0, momentum=0.0, nesterov=False)
    _, path = gradient_descent(lambda w: A @ w - b, w0, LR, N_STEPS)
    assert_allclose(params, path, rtol=0, atol=ATOL)
    assert not np.allclose(path[-1], path[0]), "the optimiser must have moved"


@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_momentum_matches_torch(torch, quadratic, nesterov):
    """torch.optim.SGD (dampening=0) keeps parameters p and a buffer B, with g = grad f(p_k):

        B_{k+1} = mu B_k + g      (B_1 = g, the same as starting from B_0 = 0)
        p_{k+1} = p_k - lr B_{k+1}                 (nesterov=False)
        p_{k+1} = p_k - lr (g + mu B_{k+1})        (nesterov=True)

    The buffer is a velocity in units of gradient:  v_k = -lr B_k.
    Then v_{k+1} = mu v_k - lr g, our velocity update.

    Without Nesterov, p_{k+1} = p_k + v_{k+1}, so p_k = w_k.

    With Nesterov, p is our look-ahead point:  p_k = w_k + mu v_k  (inverse: w_k = p_k + mu lr
    B_k). By induction: at k = 0, p_0 = w_0 and v_0 = 0; if it holds at k, both take the gradient
    at w_k + mu v_k, and p_{k+1} = w_k + mu v_k - lr g + mu v_{k+1} = w_{k+1} + mu v_{k+1}.
    """
    A, b, w0 = quadratic
    params, buffers = torch_sgd_trajectory(torch, A, b, w0, momentum=MU, nesterov=nesterov)

    ws, vs = our_momentum_trajectory(A, b, w0, nesterov)
    expected_params = ws + MU * vs if nesterov else ws
    assert_allclose(params, expected_params, rtol=0, atol=ATOL)
    assert_allclose(-LR * buffers, vs[1:], rtol=0, atol=ATOL)
    assert not np.allclose(params[-1], params[0]), "the optimiser must have moved"
