"""A student in a real JupyterLab, driven through Chromium, and nbgrader's JupyterLab tools.

A JupyterLab server (the pinned one, with nbgrader's extension) runs on a free localhost port
with a token, serving a scratch copy of chapters/ — the student notebooks as released — with
`descent` importable and nothing else of the repository (no solutions, no autograder).
Chromium opens the first chapter and runs all cells from the Run menu: its first test fails
on the stub's NotImplementedError. The reference answers are then typed into the answer cells
in the notebook editor and Kernel > Restart Kernel and Run All Cells passes every test; each
live figure's slider (an ipywidgets SelectionSlider) redraws its image, and the notebook is
saved. `nbgrader validate` passes the saved notebook and fails the stub. nbgrader's lab
extension is listed as enabled and OK, and its formgrader page lists the course's assignments.
No request may leave localhost. Without Chromium these tests fail in CI and skip elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import nbformat
import pytest

from autograder.course import CHAPTERS, COURSE_ID, REPO, assignments, write_sources
from tests.conftest import reference_answers
from tests.test_browser import ARTIFACTS, WIDGET_MIME, Traffic, chromium, watch_console

pytestmark = pytest.mark.slow

#: ms to wait for JupyterLab to load, or for one chapter to run all its cells.
LAB_TIMEOUT = 180_000
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# The open notebook, through the JupyterLab application object (exposed for tests with
# LabApp.expose_app_in_browser): its cells' sources, outputs and the kernel's status.
_NOTEBOOK = "window.jupyterapp.shell.currentWidget"
_CELLS_JS = f"""() => {_NOTEBOOK}.content.widgets.map((cell) => ({{
    type: cell.model.type,
    source: cell.model.sharedModel.getSource(),
    nbgrader: (cell.model.getMetadata("nbgrader") || {{}}),
    count: cell.model.type === "code" ? cell.model.executionCount : null,
    outputs: cell.model.type === "code" ? cell.model.outputs.toJSON() : [],
}}))"""
_IDLE_JS = f"""() => {{
    const panel = window.jupyterapp && {_NOTEBOOK};
    if (!panel || !panel.sessionContext || !panel.sessionContext.session) return false;
    const prompts = [...panel.content.node.querySelectorAll(".jp-InputPrompt")];
    return panel.sessionContext.kernelDisplayStatus === "idle"
        && !prompts.some((prompt) => prompt.textContent.includes("*"));
}}"""


@dataclass
class Lab:
    """A running JupyterLab server and the scratch directories it uses."""

    url: str
    token: str
    root: Path
    env: dict[str, str]
    course: Path
    log: Path

    def notebook(self, assignment: str) -> Path:
        return self.root / "chapters" / f"{assignment}.ipynb"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _student_environment(scratch: Path) -> dict[str, str]:
    """Jupyter's config, data and runtime dirs in ``scratch``; ``descent`` (alone) importable."""
    importable = scratch / "pythonpath"
    importable.mkdir()
    (importable / "descent").symlink_to(REPO / "descent", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTHON"))}
    env |= {
        "JUPYTER_CONFIG_DIR": str(scratch / "config"),
        "JUPYTER_DATA_DIR": str(scratch / "data"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
        "IPYTHONDIR": str(scratch / "ipython"),
        "PYTHONPATH": str(importable),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    return env


def _write_config(config_dir: Path, course: Path) -> None:
    labconfig = config_dir / "labconfig"
    labconfig.mkdir(parents=True)
    # No "get Jupyter news?" prompt over the notebook (and no fetch of a news feed).
    disabled = {"@jupyterlab/apputils-extension:announcements": True}
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))
    (config_dir / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(course / 'gradebook.db')!r}\n"
        f"c.Exchange.root = {str(course / 'exchange')!r}\n"
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    scratch = tmp_path_factory.mktemp("jupyterlab")
    # The server's root holds the student's chapters/ and, for the formgrader (which needs it
    # inside the root), the instructor's course directory with the (unreleased) assignments.
    root = scratch / "home"
    course = root / "course"
    shutil.copytree(CHAPTERS, root / "chapters")
    write_sources(course)
    env = _student_environment(scratch)
    _write_config(Path(env["JUPYTER_CONFIG_DIR"]), course)
    port, token = _free_port(), secrets.token_hex(16)
    command = [
        str(Path(sys.executable).with_name("jupyter-lab")),
        "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True", "--ServerApp.shutdown_no_activity_timeout=1800",
    ]  # fmt: skip
    log = scratch / "jupyterlab.log"
    with log.open("w") as out:
        server = subprocess.Popen(command, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + LAB_TIMEOUT / 1000
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited with {server.returncode}:\n{log.read_text()}")
            try:
                request = Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
                with urlopen(request, timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer:\n{log.read_text()}")
                time.sleep(0.5)
        yield Lab(url, token, root, env, course, log)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def session(browser: Any, lab: Lab) -> Iterator[dict[str, Any]]:
    """One browser tab on the lab, shared by the student's steps below (in order)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    traffic = Traffic(context)
    page = context.new_page()
    console = watch_console(page)
    yield {"page": page, "console": console, "traffic": traffic, "context": context}
    context.close()


def _menu(page: Any, menu: str, item: str) -> None:
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(".lm-Menu-content .lm-Menu-itemLabel", has_text=item).first.click()


def _cells(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(_CELLS_JS)


def _graded_tests(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cells if c["nbgrader"].get("grade") and not c["nbgrader"].get("solution")]


def _errors(cell: dict[str, Any]) -> list[str]:
    return [f"{o['ename']}: {o['evalue']}" for o in cell["outputs"] if o["output_type"] == "error"]


@pytest.fixture(scope="module")
def chapter() -> str:
    return assignments()[0]


@pytest.fixture(scope="module")
def stub_run(session: dict[str, Any], lab: Lab, chapter: str) -> list[dict[str, Any]]:
    """The student opens the chapter as released and runs all cells from the Run menu."""
    page = session["page"]
    page.goto(f"{lab.url}/lab/tree/chapters/{chapter}.ipynb?token={lab.token}")
    page.wait_for_function(_IDLE_JS, timeout=LAB_TIMEOUT)
    _menu(page, "Run", "Run All Cells")
    first_test = _graded_tests(_cells(page))[0]["nbgrader"]["grade_id"]
    page.wait_for_function(
        f"""() => ({_CELLS_JS})().some((c) => c.nbgrader.grade_id === {first_test!r}
                && c.outputs.some((o) => o.output_type === "error"))""",
        timeout=LAB_TIMEOUT,
    )
    page.wait_for_function(_IDLE_JS, timeout=LAB_TIMEOUT)
    return _cells(page)


@pytest.fixture(scope="module")
def answered_run(stub_run: list[dict[str, Any]], session: dict[str, Any], chapter: str) -> list:
    """The student types each answer into its cell, then restarts the kernel and runs all."""
    page = session["page"]
    answers = reference_answers(chapter)
    for index, cell in enumerate(stub_run):
        grade_id = cell["nbgrader"].get("grade_id")
        if grade_id not in answers:
            continue
        editor = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".cm-content")
        editor.scroll_into_view_if_needed()
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text(answers[grade_id])
        page.keyboard.press("Escape")
    typed = {
        c["nbgrader"].get("grade_id"): c["source"]
        for c in _cells(page)
        if c["nbgrader"].get("grade_id") in answers
    }
    assert typed == answers, "the editor did not take the answers verbatim"
    _menu(page, "Edit", "Clear Outputs of All Cells")  # execution counts too: see the wait
    page.wait_for_function(f"() => ({_CELLS_JS})().every((c) => c.count === null)")
    _menu(page, "Kernel", "Restart Kernel and Run All Cells")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    page.wait_for_function(
        f"""() => ({_CELLS_JS})().every((c) => c.type !== "code" || c.count !== null)""",
        timeout=LAB_TIMEOUT,
    )
    page.wait_for_function(_IDLE_JS, timeout=LAB_TIMEOUT)
    return _cells(page)


@pytest.fixture(scope="module")
def saved_answers(answered_run: list, session: dict[str, Any], lab: Lab, chapter: str) -> Path:
    """The student saves (Ctrl+S); returns the notebook file the server wrote."""
    page = session["page"]
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+S")
    page.wait_for_function(f"() => !{_NOTEBOOK}.context.model.dirty", timeout=30_000)
    return lab.notebook(chapter)


def test_stub_fails_its_first_test_with_not_implemented(stub_run: list, session: dict) -> None:
    """Run All on the released notebook: the first test cell shows NotImplementedError."""
    tests = _graded_tests(stub_run)
    assert tests, "the chapter has no graded test cell"
    assert any("NotImplementedError" in error for error in _errors(tests[0])), tests[0]["outputs"]
    cell = session["page"].locator(".jp-Notebook .jp-Cell").nth(stub_run.index(tests[0]))
    shown = cell.locator(".jp-OutputArea-output", has_text="NotImplementedError")
    shown.scroll_into_view_if_needed()
    shown.wait_for(state="visible", timeout=10_000)
    assert "NotImplementedError" in (shown.text_content() or "")


def test_answers_typed_in_the_editor_pass_every_test(answered_run: list) -> None:
    """With the reference answers typed in, every cell runs and no cell raises."""
    code = [c for c in answered_run if c["type"] == "code"]
    assert code and all(c["count"] is not None for c in code)
    errors = {c["source"].splitlines()[0]: _errors(c) for c in code if _errors(c)}
    assert errors == {}
    assert _graded_tests(answered_run)


def test_live_sliders_redraw_their_figure(answered_run: list, session: dict, chapter: str) -> None:
    """Every Explorer shows its live widget; moving its slider replaces the figure's image."""
    page = session["page"]
    expected = sum(
        1 for cell in answered_run for o in cell["outputs"] if WIDGET_MIME in o.get("data", {})
    )
    creating = [c for c in answered_run if c["type"] == "code" and "Explorer(" in c["source"]]
    assert expected >= len(creating), "a cell creating an Explorer shows no live widget"
    views = page.locator(".jp-OutputArea-output .widget-vbox:has(.widget-image)")
    page.wait_for_function(
        f"document.querySelectorAll('.jp-OutputArea-output .widget-image').length >= {expected}"
    )
    assert views.count() == expected
    for index in range(expected):
        view = views.nth(index)
        view.scroll_into_view_if_needed()
        image = view.locator("img.widget-image")
        readout = view.locator(".widget-readout").first
        before_src, before_value = image.get_attribute("src"), readout.inner_text()
        handle = view.locator(".noUi-handle").first
        at_end = float(handle.get_attribute("aria-valuenow")) >= float(
            handle.get_attribute("aria-valuemax")
        )
        handle.focus()
        page.keyboard.press("Home" if at_end else "End" if index % 2 else "ArrowRight")
        page.wait_for_function(
            "([img, src]) => img.getAttribute('src') !== src",
            arg=[image.element_handle(), before_src],
            timeout=30_000,
        )
        assert readout.inner_text() != before_value
    if expected:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        views.first.screenshot(path=ARTIFACTS / f"jupyterlab-{chapter}-slider.png")


def test_student_session_is_clean(answered_run: list, session: dict) -> None:
    """JupyterLab logged no console error and requested nothing but localhost."""
    assert session["console"] == []
    assert session["traffic"].external == []


def _validate(lab: Lab, notebook: Path) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("nbgrader")), "validate", str(notebook)]
    return subprocess.run(
        command, cwd=notebook.parent, env=lab.env, capture_output=True, text=True, timeout=300
    )


def test_nbgrader_validate_passes_the_saved_answers(saved_answers: Path, lab: Lab) -> None:
    """`nbgrader validate` on the notebook JupyterLab saved: success."""
    saved = nbformat.read(saved_answers, as_version=4)
    assert "NotImplementedError" not in "".join(
        c.source for c in saved.cells if c.metadata.get("nbgrader", {}).get("solution")
    )
    result = _validate(lab, saved_answers)
    assert "Success! Your notebook passes all the tests." in result.stdout, result.stdout


def test_nbgrader_validate_fails_the_stub(lab: Lab, chapter: str, tmp_path: Path) -> None:
    """`nbgrader validate` on the released stub: validation fails on NotImplementedError."""
    stub = tmp_path / f"{chapter}.ipynb"
    shutil.copy(CHAPTERS / stub.name, stub)
    result = _validate(lab, stub)
    assert "VALIDATION FAILED" in result.stdout, result.stdout
    assert "NotImplementedError" in result.stdout


def test_nbgrader_lab_extension_is_enabled(lab: Lab) -> None:
    """`jupyter labextension list` shows nbgrader's extension, at nbgrader's version, enabled
    and OK in the pinned JupyterLab."""
    command = [str(Path(sys.executable).with_name("jupyter")), "labextension", "list"]
    result = subprocess.run(command, env=lab.env, capture_output=True, text=True, timeout=120)
    listing = ANSI.sub("", result.stdout + result.stderr)
    assert f"JupyterLab v{version('jupyterlab')}" in listing
    line = re.search(r"^\s*@jupyter/nbgrader v(\S+) (.*)$", listing, re.MULTILINE)
    assert line, listing
    assert line.group(1) == version("nbgrader")
    assert line.group(2).split()[:2] == ["enabled", "OK"]


def test_formgrader_lists_the_course(browser: Any, lab: Lab) -> None:
    """The formgrader page (nbgrader's server extension) opens and lists every assignment."""
    context = browser.new_context()
    traffic = Traffic(context)
    page = context.new_page()
    console = watch_console(page)
    page.goto(f"{lab.url}/formgrader?token={lab.token}")
    table = page.locator("#main-table")
    table.locator("td.name").first.wait_for(timeout=60_000)
    heading = page.locator(".page-header h1").all_inner_texts()
    listed = table.locator("td.name").all_inner_texts()
    context.close()
    assert "Manage Assignments" in heading
    assert sorted(name.strip() for name in listed) == assignments()
    assert console == []
    assert traffic.external == []
