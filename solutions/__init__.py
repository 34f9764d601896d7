"""Reference solutions for the Descent exercises, in one flat namespace.

``from solutions import gd_step`` works from the repository root. The losses are re-exported
from :mod:`descent.losses`, the single source of truth shared with the notebooks.
"""

from descent.losses import logistic_loss, mse_loss, sigmoid
from solutions.batch import gd_step, gradient_descent
from solutions.gradients import logistic_gradient, mse_gradient, numerical_gradient
from solutions.momentum import momentum_step, nesterov_step
from solutions.stochastic import minibatch_sgd, next_batch, sgd_epoch

__all__ = [
    "gd_step",
    "gradient_descent",
    "logistic_gradient",
    "logistic_loss",
    "minibatch_sgd",
    "momentum_step",
    "mse_gradient",
    "mse_loss",
    "nesterov_step",
    "next_batch",
    "numerical_gradient",
    "sgd_epoch",
    "sigmoid",
]
