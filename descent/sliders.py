"""Interactive figures that work live in JupyterLab AND statically in the HTML book.

An :class:`Explorer` couples one matplotlib figure with an ``update`` function and a few
discrete :class:`Param` grids::

    fig, ax = subplots()
    contour(ax, quad.value, (-3, 3), (-3, 3))
    line = path_line(ax, [])

    def update(lr):                       # mutate artists in place; never rebuild the figure
        line.set_data(*run_gd(lr).T)

    Explorer(fig, update, {"lr": Param("step size", [0.1, 0.5, 1.0, 1.9], 0.5)}).show()

``show()`` publishes ONE output holding both a live widget (one slider per Param, the figure
re-rendered as a PNG on every change; JupyterLab shows this) and a static HTML animation whose
frames sweep one Param (the book shows this; it works offline, without a kernel).

Size of the static view: one base64 PNG per value of the swept Param. A 480 x 320 px (dpi 80)
contour figure is about 25-50 kB per frame, so 15 frames are roughly 0.5 MB of HTML; stay well
below matplotlib's ``rcParams["animation.embed_limit"]`` (20 MB by default) and keep value grids
to a few dozen entries.
"""

import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from io import BytesIO
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display
from matplotlib.animation import HTMLWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

Value = float | int | str

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: Set to "1" in the kernels that execute chapters for the book: only there does
#: :meth:`Explorer.mimebundle` render the static frames the HTML shows.
STATIC_FRAMES_ENV = "DESCENT_STATIC_FRAMES"

# matplotlib's HTML player loads Font Awesome 4 from a CDN just for its button icons; Unicode
# glyphs keep the page free of network requests. All of them are in DejaVu Sans (the font a
# minimal Linux has), so no button shows as an empty box; U+FE0E asks for text, not emoji, style.
_CDN_LINK = re.compile(r'<link rel="stylesheet"\s+href="https://[^"]*font-awesome[^"]*">')
_ICON = re.compile(r'<i class="fa ([^"]+)"></i>')
_GLYPHS = {
    "fa-minus": "\u2212",
    "fa-plus": "+",
    "fa-fast-backward": "\u21e4",
    "fa-step-backward": "\u25c2",
    "fa-play fa-flip-horizontal": "\u25c0\ufe0e",
    "fa-pause": "\u275a\u275a",
    "fa-play": "\u25b6\ufe0e",
    "fa-step-forward": "\u25b8",
    "fa-fast-forward": "\u21e5",
}


@dataclass(frozen=True)
class Param:
    """One slider: a label and a discrete grid of values shared by the live and static views.

    ``default`` must be one of ``values``; it is the initial slider position and the value used
    for this Param while another one is swept in the static view.
    """

    label: str
    values: Sequence[Value]
    default: Value

    def __post_init__(self) -> None:
        values = tuple(self.values)  # also accepts numpy arrays, e.g. np.linspace(...)
        if not values:
            raise ValueError(f"Param {self.label!r} has no values")
        if self.default not in values:
            raise ValueError(
                f"Param {self.label!r}: default {self.default!r} is not in its values {values}"
            )
        object.__setattr__(self, "values", values)


def _fmt(value: Value) -> str:
    """Compact slider label: 0.3 rather than 0.30000000000000004."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Explorer:
    """A figure, an ``update(**values)`` function and the :class:`Param` grids it depends on.

    ``update`` receives every Param by name and must change the figure's artists in place
    (``set_data``, ``set_ydata``, ``set_text``, ...); it is called once with the defaults here.
    The figure is detached from pyplot (so the inline backend does not show it a second time)
    and rendered with the Agg canvas only. Its layout is computed once, with the defaults, and
    then frozen: set titles and axis limits so that every value fits.
    """

    def __init__(
        self, fig: Figure, update: Callable[..., None], params: Mapping[str, Param]
    ) -> None:
        if not params:
            raise ValueError("an Explorer needs at least one Param")
        plt.close(fig)
        FigureCanvasAgg(fig)  # attaches itself as fig.canvas: pure Agg, no GUI or display
        self.fig = fig
        self.update = update
        self.params = dict(params)
        self.values: dict[str, Value] = {name: p.default for name, p in self.params.items()}
        self.update(**self.values)
        if fig.get_layout_engine() is not None:
            fig.canvas.draw()  # lay out once, with the defaults, then freeze: a constrained
            fig.set_layout_engine(None)  # layout would cost ~25 ms per redraw and jitter frames;
            # None, not "none": "none" leaves a placeholder engine that draws every PNG twice

    def _set(self, name: str, value: Value) -> None:
        self.values[name] = value
        self.update(**self.values)

    def png(self) -> bytes:
        """The figure in its current state as PNG bytes."""
        buffer = BytesIO()
        self.fig.savefig(buffer, format="png")
        return buffer.getvalue()

    def widget(self) -> widgets.VBox:
        """Live view: one ``SelectionSlider`` per Param above an ``Image`` of the figure.

        Every slider change calls ``update`` and replaces the image's PNG bytes (faster and
        flicker-free compared with re-displaying into an ``Output``). Needs a kernel to react.
        """
        image = widgets.Image(value=self.png(), format="png")

        def on_change(name: str, change: dict[str, Any]) -> None:
            self._set(name, change["new"])
            image.value = self.png()

        sliders = []
        for name, param in self.params.items():
            slider = widgets.SelectionSlider(
                options=[(_fmt(v), v) for v in param.values],
                value=self.values[name],
                description=param.label,
                continuous_update=True,
                style={"description_width": "initial"},
                layout={"width": "480px"},
            )
            slider.observe(partial(on_change, name), names="value")
            sliders.append(slider)
        return widgets.VBox([*sliders, image])

    def to_jshtml(self, vary: str) -> str:
        """Static view: an HTML/JS animation with one frame per value of ``params[vary]``.

        Other Params stay at their defaults. The result has a draggable frame slider and
        play buttons, embeds its PNG frames (base64) and needs neither a kernel nor network
        (the player's icon font is replaced by Unicode glyphs).
        Afterwards the figure is restored to the explorer's current values.
        """
        if vary not in self.params:
            raise KeyError(f"unknown Param {vary!r}; choose from {list(self.params)}")
        defaults = {name: p.default for name, p in self.params.items()}

        def draw_frame(value: Value) -> None:
            self.update(**{**defaults, vary: value})

        # Frames go straight to matplotlib's HTML writer: one render per frame (FuncAnimation
        # would draw each frame once for its canvas and again for the writer).
        with tempfile.TemporaryDirectory() as scratch:
            target = Path(scratch) / "frames.html"
            writer = HTMLWriter(fps=5, embed_frames=True, default_mode="once")
            try:
                with writer.saving(self.fig, target, dpi=self.fig.dpi):
                    for value in self.params[vary].values:
                        draw_frame(value)
                        writer.grab_frame()
                html = target.read_text()
                return _ICON.sub(lambda m: _GLYPHS.get(m[1], m[0]), _CDN_LINK.sub("", html))
            finally:
                self.update(**self.values)

    def mimebundle(self, vary: str | None = None) -> dict[str, Any]:
        """The bundle :meth:`show` displays: live widget view, static HTML and plain text.

        JupyterLab (with a kernel) renders the widget view; the book, configured to prefer
        ``text/html``, renders the animation sweeping ``vary`` (default: the first Param).
        The frames are rendered only where the book is built (``STATIC_FRAMES_ENV`` set to
        "1"): a student's kernel and the autograder's have no use for them.
        """
        vary = next(iter(self.params)) if vary is None else vary
        bundle = self.widget()._repr_mimebundle_()
        bundle["text/plain"] = f"Explorer({', '.join(self.params)})"
        if os.environ.get(STATIC_FRAMES_ENV) == "1":
            bundle["text/html"] = self.to_jshtml(vary)
            bundle["text/plain"] += f"; static frames over {vary!r}"
        return bundle

    def show(self, vary: str | None = None) -> None:
        """Display :meth:`mimebundle` as a single output (see there)."""
        display(self.mimebundle(vary), raw=True)

    def time_update(
        self, repeats: int = 20, clock: Callable[[], float] = time.perf_counter
    ) -> dict[str, float]:
        """Mean milliseconds of ``update(...)`` + ``fig.canvas.draw()`` for each Param.

        Each Param cycles through its values (``repeats`` redraws) with the others at their
        current values; the figure is restored afterwards. ``clock`` reads the time in
        seconds: wall time by default, ``time.process_time`` for this process's CPU time.
        For benchmark scripts.
        """
        timings = {}
        for name, param in self.params.items():
            start = clock()
            for i in range(repeats):
                self.update(**{**self.values, name: param.values[i % len(param.values)]})
                self.fig.canvas.draw()
            timings[name] = 1000 * (clock() - start) / repeats
        self.update(**self.values)
        return timings
