"""Record computed values for the book's ``{glue}`` roles, cheaply.

``myst_nb.glue`` works, but importing it pulls in nbformat and jsonschema, whose optional
URI-syntax checker builds a grammar at import: about 2 s of CPU in every kernel that glues a
number, which the autograder would pay once per student and chapter. This module publishes the
same display data — myst-nb's documented glue protocol — with IPython alone; a test compares
it with ``myst_nb.glue`` output for output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: myst-nb reads glued values from outputs whose MIME types carry this prefix.
GLUE_MIME_PREFIX = "application/papermill.record/"


def glue(name: str, value: Any, display: bool = False) -> None:
    """Store ``value``'s display representations under ``name`` for ``{glue}`name```.

    With ``display=False`` (the default) nothing is shown in the notebook. A NumPy scalar is
    stored as the Python number it holds, so a format spec such as ``{glue:text}`x:.3f``
    works on it (its NumPy 2 repr, ``np.float64(0.5)``, would not parse).
    """
    if isinstance(value, np.generic):
        value = value.item()
    from IPython.core.formatters import format_display_data
    from IPython.display import display as publish

    bundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_MIME_PREFIX
    metadata = dict(metadata, scrapbook={"name": name, "mime_prefix": prefix})
    publish({prefix + mime: data for mime, data in bundle.items()}, raw=True, metadata=metadata)
