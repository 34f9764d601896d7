"""Matplotlib helpers so every chapter's figures look alike and notebooks stay short.

Typical use::

    fig, ax = subplots()
    contour(ax, quad.value, xlim=(-3, 3), ylim=(-3, 3))
    line = path_line(ax, path)            # path: (k, 2) iterates
    line.set_data(*new_path.T)            # update in place, e.g. inside an Explorer

Figures are ``FIGSIZE`` inches at ``DPI`` dots per inch (480 x 320 px), which keeps the PNGs
embedded in the book small.
"""

from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm
from matplotlib.contour import QuadContourSet
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from numpy.typing import ArrayLike, NDArray

FIGSIZE: tuple[float, float] = (6.0, 4.0)
DPI: int = 80


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` with the course's size, dpi and constrained layout.

    ``figsize`` defaults to ``FIGSIZE`` widened per column; other keyword arguments go to
    ``plt.subplots``. Returns ``(fig, ax)`` (or an array of axes, as ``plt.subplots`` does).
    """
    kwargs.setdefault("figsize", (FIGSIZE[0] * ncols, FIGSIZE[1] * nrows))
    kwargs.setdefault("dpi", DPI)
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, **kwargs)


def contour(
    ax: Axes,
    f: Callable[[NDArray[np.float64]], Any],
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    levels: int = 20,
    log_levels: bool = True,
    filled: bool = True,
    resolution: int = 200,
) -> QuadContourSet:
    """Contours of a 2-D function ``f`` over ``xlim`` x ``ylim``; returns the contour set.

    ``f`` must accept stacked points of shape (ny, nx, 2) and return values of shape (ny, nx),
    like ``Quadratic.value`` and ``rosenbrock``. With ``log_levels`` the ``levels`` contour
    values are spaced geometrically above the minimum on the grid, which shows both the valley
    floor and the steep walls; otherwise they are evenly spaced. The axes get equal aspect, so
    gradients are drawn perpendicular to the level sets, and the given limits.
    """
    xs = np.linspace(*xlim, resolution)
    ys = np.linspace(*ylim, resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    Z = np.asarray(f(np.stack([grid_x, grid_y], axis=-1)), dtype=float)
    if Z.shape != grid_x.shape:
        raise ValueError(f"f returned shape {Z.shape} for points of shape {(*grid_x.shape, 2)}")
    lo, hi = float(Z.min()), float(Z.max())
    if log_levels and hi > lo:
        values = np.concatenate([[lo], lo + np.geomspace(1e-3 * (hi - lo), hi - lo, levels)])
    else:
        values = np.linspace(lo, hi, levels + 1)
    norm = BoundaryNorm(values, ncolors=256)
    if filled:
        cs = ax.contourf(grid_x, grid_y, Z, levels=values, norm=norm, cmap="Blues_r", alpha=0.8)
    else:
        cs = ax.contour(grid_x, grid_y, Z, levels=values, norm=norm, cmap="viridis", linewidths=0.8)
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    return cs


def path_line(ax: Axes, path: ArrayLike, **style: Any) -> Line2D:
    """Draw optimizer iterates ``path`` (shape (k, 2), k may be 0) as a line with markers.

    Returns the ``Line2D`` so callers can update it in place with ``line.set_data(*path.T)``.
    ``style`` overrides the defaults (color "C3", small round markers).
    """
    path = np.asarray(path, dtype=float).reshape(-1, 2)
    style = {"color": "C3", "marker": "o", "markersize": 3, "linewidth": 1.5, **style}
    (line,) = ax.plot(path[:, 0], path[:, 1], **style)
    return line


def loss_curve(
    ax: Axes, values: ArrayLike, label: str | None = None, log: bool = True, **style: Any
) -> Line2D:
    """Plot ``values[t]`` (e.g. loss or f(w_t) - f*) against iteration t; returns the Line2D.

    ``log`` puts the y axis on a log scale, where linear convergence is a straight line. When
    updating in place with ``line.set_data(t, v)``, call ``ax.relim(); ax.autoscale_view()``
    or fix the limits up front.
    """
    values = np.asarray(values, dtype=float)
    (line,) = ax.plot(np.arange(len(values)), values, label=label, **style)
    ax.set(xlabel="iteration", ylabel="loss", yscale="log" if log else "linear")
    if label is not None:
        ax.legend()
    return line
