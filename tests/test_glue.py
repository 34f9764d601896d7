"""descent.glue publishes exactly what myst_nb.glue does, so the book's {glue} roles work."""

from __future__ import annotations

import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from myst_nb import glue as myst_glue

from descent.glue import glue


def _published(function, *args) -> list[tuple[dict, dict]]:
    InteractiveShell.instance()
    with capture_output() as captured:
        function(*args)
    return [(output.data, output.metadata) for output in captured.outputs]


@pytest.mark.parametrize("value", [0.125, 3, "text", [1.5, 2.5]])
@pytest.mark.parametrize("display", [False, True])
def test_same_output_as_myst_nb(value, display: bool) -> None:
    """Data, MIME types and scrapbook metadata match myst_nb.glue's, hidden or shown."""
    ours = _published(glue, "x", value, display)
    theirs = _published(myst_glue, "x", value, display)
    assert ours == theirs
    assert ours and ours[0][1]["scrapbook"]["name"] == "x"


def test_numpy_scalars_are_glued_as_python_numbers() -> None:
    """np.float64(0.5) is stored as 0.5, so `{glue:text}` format specs can parse it."""
    ours = _published(glue, "x", np.float64(0.5))
    assert ours == _published(myst_glue, "x", 0.5, False)
    assert ours[0][0]["application/papermill.record/text/plain"] == "0.5"
