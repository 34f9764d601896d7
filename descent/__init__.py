"""Descent: shared helper code for the gradient-descent course. It holds no exercise answers.

Submodules (import them explicitly; importing ``descent`` itself loads nothing heavy):

- ``descent.losses``     sigmoid, mse_loss, logistic_loss (numerically stable)
- ``descent.objectives`` Quadratic (ravine / random), rosenbrock, rosenbrock_grad
- ``descent.data``       add_bias, standardize, linear_regression_data, blobs_experiment,
                         digits_split, one_hot, Split
- ``descent.plotting``   subplots, contour, path_line, loss_curve (matplotlib)
- ``descent.sliders``    Param, Explorer: live ipywidgets sliders + static HTML frames
- ``descent.checking``   assert_close, the tolerance-owning assertion used by notebook tests
"""
