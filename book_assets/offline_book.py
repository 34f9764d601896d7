"""Sphinx extension: the HTML book loads nothing from any other host, so it works offline.

Jupyter Book 1.x pages would otherwise reach out to CDNs. This extension (a
``sphinx.local_extensions`` entry of ``_config.yml``) removes each such reference:

- **MathJax 3** is served from the book itself, ``_static/mathjax/``. The pinned release is
  fetched once from the npm registry with ``npm pack`` (its sha512 checked against
  :data:`MATHJAX_INTEGRITY`) into ``_build/assets/`` and added to ``html_static_path``;
  ``_config.yml`` points ``mathjax_path`` at it (``mathjax/tex-mml-chtml.js``, relative to
  ``_static``).
- **thebe**: sphinx-thebe writes its unpkg.com address into every page for a "live code"
  button the book does not show (``launch_buttons.thebe`` is off); those two scripts are
  dropped from the pages.
- The ipywidgets embed scripts (require.js and the widget manager, from CDNs) are switched
  off in ``_config.yml`` (``nb_ipywidgets_js: {}``): the book shows every interactive figure
  as precomputed frames (see ``descent/sliders.py``), and matplotlib's animation player does
  not load its icon font (``descent.sliders`` replaces it).

``tests/test_browser.py`` checks the result in Chromium: no page requests another host.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

MATHJAX_VERSION = "3.2.2"
#: ``npm view mathjax@3.2.2 dist.integrity``: the tarball npm must hand us.
MATHJAX_INTEGRITY = (
    "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/"
    "O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
)
#: The page loads this (relative to ``_static``); keep ``mathjax_path`` in _config.yml equal.
MATHJAX_PATH = "mathjax/tex-mml-chtml.js"
#: What the book needs of the package's ``es5/`` tree (8 MB of its 24): the component Sphinx
#: loads by default (TeX and MathML input, CommonHTML output) and everything that component
#: loads on demand: its fonts, TeX extensions (autoloaded by ``\boldsymbol``, ``\color``, ...),
#: and the menu's accessibility components with the speech rule engine's maps.
MATHJAX_PARTS = (
    "tex-mml-chtml.js",
    "input",
    "output/chtml.js",
    "output/chtml",
    "a11y",
    "ui",
    "sre",
)
#: sphinx-thebe's inline configuration script starts with this.
_THEBE_MARKER = "const THEBE_JS_URL"


def assets_dir(outdir: str | os.PathLike) -> Path:
    """Where fetched assets are kept for a build whose HTML goes to ``outdir``."""
    return Path(outdir).resolve().parent / "assets"


def _integrity(path: Path) -> str:
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def mathjax_static_dir(assets: Path) -> Path:
    """The ``html_static_path`` entry holding ``mathjax/`` (it may not exist yet)."""
    return assets / f"mathjax-{MATHJAX_VERSION}"


def fetch_mathjax(assets: Path) -> Path:
    """Make sure the pinned MathJax is unpacked under ``assets``; return its static dir.

    Runs ``npm pack mathjax@VERSION`` (the npm registry, through npm's own cache) only when
    the files are not there yet; the unpacked tree appears atomically, so concurrent builds
    are safe.
    """
    static = mathjax_static_dir(assets)
    if (static / MATHJAX_PATH).is_file():
        return static
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "the book serves MathJax itself and fetches it once with npm, which is not on PATH"
            " (Debian: apt-get install npm)"
        )
    assets.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mathjax-", dir=assets) as scratch:
        work = Path(scratch)
        subprocess.run(
            [npm, "pack", f"mathjax@{MATHJAX_VERSION}", "--pack-destination", str(work)],
            check=True,
            cwd=work,
            stdout=subprocess.DEVNULL,
        )
        tarball = work / f"mathjax-{MATHJAX_VERSION}.tgz"
        found = _integrity(tarball)
        if found != MATHJAX_INTEGRITY:
            raise RuntimeError(f"{tarball.name}: integrity {found}, expected {MATHJAX_INTEGRITY}")
        prefixes = tuple(f"package/es5/{part}" for part in MATHJAX_PARTS)
        with tarfile.open(tarball) as archive:
            members = [
                m
                for m in archive.getmembers()
                if m.isfile() and any(m.name == p or m.name.startswith(p + "/") for p in prefixes)
            ]
            archive.extractall(work / "unpacked", members=members, filter="data")
        unpacked = work / "static"
        unpacked.mkdir()
        (work / "unpacked" / "package" / "es5").rename(unpacked / "mathjax")
        missing = [p for p in MATHJAX_PARTS if not (unpacked / "mathjax" / p).exists()]
        if missing:
            raise RuntimeError(f"mathjax@{MATHJAX_VERSION} lacks {missing}")
        try:
            unpacked.rename(static)
        except OSError:
            if not (static / MATHJAX_PATH).is_file():  # lost a race only if the winner is whole
                raise
    return static


def _serve_assets(app: Any, config: Any) -> None:
    if "://" in config.mathjax_path or config.mathjax_path != MATHJAX_PATH:
        raise RuntimeError(
            f"mathjax_path is {config.mathjax_path!r}: set `mathjax_path: {MATHJAX_PATH}` under "
            "sphinx.config in _config.yml so that the book loads its own copy of MathJax"
        )
    static = fetch_mathjax(assets_dir(app.outdir))
    if str(static) not in config.html_static_path:
        config.html_static_path.append(str(static))


def _drop_thebe(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if scripts is None:
        return
    context["script_files"] = [
        script
        for script in scripts
        if not str(script.attributes.get("body", "")).startswith(_THEBE_MARKER)
        and not str(script.filename or "").endswith("sphinx-thebe.js")
    ]


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _serve_assets)
    # After sphinx-thebe and Sphinx's own handlers, before the page is rendered.
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
