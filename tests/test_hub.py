"""A class on the course's JupyterHub (hub/), end to end through nbgrader's exchange.

A real JupyterHub runs on loopback with ``hub/jupyterhub_config.py`` (loaded as is, then
overridden only where a test must: dummy authenticator, loopback ports, state in a scratch
directory, an admin service token), configurable-http-proxy from npm and the local-process
spawner. One instructor and two students are real unix users, so the exchange's file modes
mean what they mean on a course server. The first chapter (``assignments()[0]``) goes round:

1. the instructor generates it with ``python -m autograder release --course ~/descent-course``
   and releases it with the formgrader of their own server (through the hub);
2. each student fetches it through the Assignments REST handlers of their own server; ada
   saves the reference answers through the contents API, bob leaves the stubs; both validate
   (a kernel of their own server runs the notebook) and submit; bob then submits his stubs
   again *in ada's name* with ``nbgrader submit --student``;
3. the instructor collects (formgrader), autogrades with ``python -m autograder autograde``,
   generates and releases feedback (formgrader); each student fetches their feedback.

The grades are full marks and 0, the forged submission is not collected, the feedback holds
no hidden test, and bob can neither list the exchange's inbound nor feedback directories, nor
read ada's home, nor reach her server with his own token. Only the instructor's JupyterLab
has the formgrader and "create assignment" tools. Last, the book's launch link
(nbgitpuller) is followed by a logged-in student: the hub sends it to their server, which
pulls the repository and finds the chapter where the link's ``urlpath`` points.

Student actions go through their servers' REST APIs (what JupyterLab's Assignments tab and
editor send); the instructor's command-line steps (``python -m autograder``) run as the
instructor's unix user, as in a terminal of their JupyterLab. Needs root (unix users), and
JupyterHub, configurable-http-proxy and nbgitpuller (.ci/run installs them): without them these
tests fail in CI (CI=true) and skip elsewhere.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import nbformat
import pytest
import requests
import yaml

from autograder.course import COURSE_ID, REPO, assignments, read_source
from tests.conftest import reference_answers

#: The class takes about 4 minutes on a loaded two-core machine; the bounds inside are wider.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

HUB_CONFIG = REPO / "hub" / "jupyterhub_config.py"
#: Where the hub's log (with every user's server's) is kept after the run, pass or fail.
HUB_LOG = REPO / "_build" / "artifacts" / "hub.log"
ENV_BIN = Path(sys.executable).parent
#: Unix (and hub) user names, unique to this run: other runs may share the machine.
_RUN = secrets.token_hex(3)
INSTRUCTOR, ADA, BOB = (f"dsc{_RUN}_{role}" for role in ("prof", "ada", "bob"))
USERS = (INSTRUCTOR, ADA, BOB)
COURSE_DIR = "descent-course"
#: Seconds for the hub, or one user's server, to come up on a loaded two-core machine.
START_TIMEOUT = 300
#: Seconds one request may take (collecting, generating feedback and validating run notebooks).
REQUEST_TIMEOUT = 600
#: Seconds the instructor's autograde command may take.
AUTOGRADE_TIMEOUT = 1200


def _missing(reason: str) -> None:
    """Skip for lack of a tool on a developer's machine; fail in CI, which must have it."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI must provide it: see .ci/run)", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _session(token: str | None = None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only: never through a proxy from the environment
    if token:
        session.headers["Authorization"] = f"token {token}"
    return session


def _run_as(user: str, command: list[str], *, cwd: Path, env: dict[str, str], timeout: float):
    """Run ``command`` as unix ``user`` (its own uid, gid and no supplementary groups)."""
    account = pwd.getpwnam(user)
    environment = {
        "HOME": account.pw_dir,
        "USER": user,
        "LOGNAME": user,
        "PATH": os.pathsep.join([str(ENV_BIN), "/usr/local/bin", "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8",
        **env,
    }
    return subprocess.run(
        command,
        cwd=cwd,
        env=environment,
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --------------------------------------------------------------------------------------------
# the machine: unix users, a readable environment, the exchange's parent


@dataclass
class Machine:
    root: Path
    exchange: Path
    homes: dict[str, Path]
    #: (path, mode before) of directories this test made traversable, restored afterwards.
    opened: list[tuple[Path, int]] = field(default_factory=list)


def _useradd(name: str, home: Path) -> None:
    command = ["useradd", "--create-home", "--home-dir", str(home), "--user-group"]
    subprocess.run([*command, "--shell", "/bin/bash", name], check=True, capture_output=True)


def _open_path(target: Path, opened: list[tuple[Path, int]]) -> None:
    """Let every user traverse the directories leading to ``target`` (o+x, nothing more)."""
    for directory in [*reversed(target.parents), target]:
        if not directory.is_dir():
            continue
        mode = stat.S_IMODE(directory.stat().st_mode)
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)
            opened.append((directory, mode))


@pytest.fixture(scope="module")
def machine() -> Iterator[Machine]:
    if os.geteuid() != 0:
        _missing("the hub test creates unix users: run it as root")
    for tool in ("useradd", "userdel", "git"):
        if shutil.which(tool) is None:
            _missing(f"{tool} is not installed")
    root = Path(tempfile.mkdtemp(prefix="descent-hub-"))
    root.chmod(0o755)
    made = Machine(root, root / "srv" / "exchange", {})
    try:
        (root / "home").mkdir(mode=0o755)
        for name in USERS:
            made.homes[name] = root / "home" / name
            _useradd(name, made.homes[name])
        # Every user runs the course's environment: its Python (a venv's base interpreter may
        # live under a private home, e.g. /root/.pyenv in CI), the venv and the repository;
        # and reaches the scratch directory (TMPDIR may be private too).
        python = Path(sys.executable).resolve()
        for needed in (python, Path(sys.base_prefix), ENV_BIN, REPO, root):
            _open_path(needed, made.opened)
        probe = _run_as(
            ADA,
            [sys.executable, "-c", "import descent, nbgrader, jupyterhub, autograder.course"],
            cwd=REPO,
            env={},
            timeout=120,
        )
        assert probe.returncode == 0, f"a user cannot run the course's Python:\n{probe.stderr}"
        yield made
    finally:
        for name in USERS:
            subprocess.run(["userdel", "--force", name], check=False, capture_output=True)
        for directory, mode in reversed(made.opened):
            with contextlib.suppress(OSError):
                directory.chmod(mode)
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# the hub


@dataclass
class Hub:
    url: str
    admin: requests.Session
    process: subprocess.Popen
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.admin.request(method, f"{self.url}/hub/api{path}", timeout=60, **kwargs)

    def as_user(self, name: str) -> requests.Session:
        return _session(self.tokens[name])

    def server(self, name: str, path: str) -> str:
        return f"{self.url}/user/{name}/{path.lstrip('/')}"


def _test_config(state: Path, hub_port: int, token: str) -> Path:
    """The shipped configuration, then what only a test changes."""
    config = state / "jupyterhub_config.py"
    config.write_text(
        f"""c = get_config()  # noqa
load_subconfig({str(HUB_CONFIG)!r})
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.bind_url = "http://127.0.0.1:{hub_port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{_free_port()}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{_free_port()}"
c.ConfigurableHTTPProxy.command = [{shutil.which("configurable-http-proxy")!r}]
c.JupyterHub.db_url = "sqlite:///{state / "jupyterhub.sqlite"}"
c.JupyterHub.cookie_secret_file = {str(state / "cookie_secret")!r}
c.JupyterHub.pid_file = {str(state / "jupyterhub.pid")!r}
c.JupyterHub.services = [{{"name": "hub-test", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "admin", "services": ["hub-test"]}}]
c.Spawner.ip = "127.0.0.1"
"""
    )
    return config


def _wait_for_hub(hub: Hub) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if hub.process.poll() is not None:
            pytest.fail(f"jupyterhub exited with {hub.process.returncode}:\n{hub.log_tail()}")
        with contextlib.suppress(requests.RequestException):
            if hub.api("GET", "/").status_code == 200:
                return
        time.sleep(1)
    pytest.fail(f"the hub did not answer within {START_TIMEOUT} s:\n{hub.log_tail()}")


def _start_servers(hub: Hub, names: tuple[str, ...]) -> None:
    for name in names:
        response = hub.api("POST", f"/users/{name}/server")
        assert response.status_code in (201, 202), f"{name}: {response.text}\n{hub.log_tail()}"
    pending = set(names)
    deadline = time.monotonic() + START_TIMEOUT
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            server = hub.api("GET", f"/users/{name}").json().get("servers", {}).get("", {})
            if server.get("ready"):
                hub.pids[name] = int(server.get("state", {}).get("pid", 0))
                pending.discard(name)
        time.sleep(1)
    assert not pending, f"servers not ready after {START_TIMEOUT} s: {pending}\n{hub.log_tail()}"


def _stop(hub: Hub) -> None:
    """Stop the users' servers through the hub, then the hub (and its proxy); kill leftovers."""
    for name in USERS:
        with contextlib.suppress(requests.RequestException):
            hub.api("DELETE", f"/users/{name}/server")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(hub.process.pid, signal.SIGTERM)
    try:
        hub.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(hub.process.pid, signal.SIGKILL)
        hub.process.wait(timeout=30)
    for pid in hub.pids.values():
        if pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # each server leads its own process group


@pytest.fixture(scope="module")
def hub(machine: Machine) -> Iterator[Hub]:
    if not HUB_CONFIG.is_file():
        pytest.fail(f"missing {HUB_CONFIG}")
    if shutil.which("configurable-http-proxy") is None:
        _missing("configurable-http-proxy (npm) is not installed")
    for executable in ("jupyterhub", "jupyterhub-singleuser"):
        if not (ENV_BIN / executable).exists():
            _missing(f"{executable} is not installed in {ENV_BIN}")
    state = machine.root / "hub"
    state.mkdir(mode=0o700)
    token, port = secrets.token_hex(32), _free_port()
    config = _test_config(state, port, token)
    log = state / "hub.log"
    env = {
        # The shipped defaults for every other DESCENT_* setting, whatever this shell has.
        **{k: v for k, v in os.environ.items() if not k.startswith("DESCENT_")},
        "PATH": os.pathsep.join([str(ENV_BIN), os.environ.get("PATH", "/usr/bin:/bin")]),
        "DESCENT_INSTRUCTORS": INSTRUCTOR,
        "DESCENT_STUDENTS": f"{ADA},{BOB}",
        "DESCENT_EXCHANGE": str(machine.exchange),
        "DESCENT_COURSE_DIR": COURSE_DIR,
    }
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(ENV_BIN / "jupyterhub"), "-f", str(config)],
            cwd=state,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = Hub(f"http://127.0.0.1:{port}", _session(token), process, log)
    try:
        _wait_for_hub(started)
        _start_servers(started, USERS)
        for name in USERS:
            response = started.api("POST", f"/users/{name}/tokens", json={"note": "hub test"})
            assert response.status_code == 201, response.text
            started.tokens[name] = response.json()["token"]
        yield started
    finally:
        _stop(started)
        HUB_LOG.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, HUB_LOG)


# --------------------------------------------------------------------------------------------
# the class


def _ok(response: requests.Response, what: str, hub: Hub) -> Any:
    assert response.status_code == 200, (
        f"{what}: HTTP {response.status_code} {response.text[:2000]}"
    )
    body = response.json()
    if isinstance(body, dict) and "success" in body:
        assert body["success"], f"{what}: {json.dumps(body, indent=1)[:4000]}\n{hub.log_tail()}"
    return body


def _formgrader(hub: Hub, action: str, method: str = "POST") -> Any:
    """A button of the formgrader in the instructor's JupyterLab (its REST API)."""
    url = hub.server(INSTRUCTOR, f"formgrader/api/{action}")
    response = hub.as_user(INSTRUCTOR).request(method, url, timeout=REQUEST_TIMEOUT)
    return _ok(response, f"formgrader {action}", hub)


def _assignments(hub: Hub, student: str, action: str, assignment: str) -> Any:
    """One click in the student's Assignments tab: fetch, submit or fetch_feedback."""
    response = hub.as_user(student).post(
        hub.server(student, f"assignments/{action}"),
        json={"course_id": COURSE_ID, "assignment_id": assignment},
        timeout=REQUEST_TIMEOUT,
    )
    return _ok(response, f"{student} {action} {assignment}", hub)["value"]


def _listing(hub: Hub, student: str) -> list[dict]:
    response = hub.as_user(student).get(
        hub.server(student, "assignments"), params={"course_id": COURSE_ID}, timeout=60
    )
    return _ok(response, f"{student} lists assignments", hub)["value"]


def _contents(hub: Hub, user: str, path: str, **params: str) -> dict:
    response = hub.as_user(user).get(
        hub.server(user, f"api/contents/{quote(path)}"), params=params, timeout=60
    )
    assert response.status_code == 200, f"{user} GET {path}: {response.text}"
    return response.json()


def _instructor(machine: Machine, *arguments: str, timeout: float = 600) -> str:
    """``python -m autograder ...`` as the instructor, from the repository (a terminal)."""
    result = _run_as(
        INSTRUCTOR,
        [sys.executable, "-m", "autograder", *arguments],
        cwd=REPO,
        env={},
        timeout=timeout,
    )
    assert result.returncode == 0, f"autograder {arguments}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


_PROBE = """
import json, os, sys
course_exchange, ada_home = sys.argv[1], sys.argv[2]
outcome = {}
for name, path in [
    ("inbound", os.path.join(course_exchange, "inbound")),
    ("feedback", os.path.join(course_exchange, "feedback")),
    ("ada_home", ada_home),
]:
    try:
        outcome[name] = sorted(os.listdir(path))
    except PermissionError:
        outcome[name] = "denied"
print(json.dumps(outcome))
"""


@dataclass
class Class:
    assignment: str
    #: The formgrader's submissions of the assignment, by student.
    grades: dict[str, dict]
    #: Each student's feedback HTML, as fetched through their own server (None: none came).
    feedback: dict[str, str | None]
    #: A student's assignment list after fetching feedback, when none came.
    feedback_listings: dict[str, list[dict]]
    #: What bob's process could list: the exchange's inbound and feedback, ada's home.
    bob_probe: dict[str, Any]
    #: HTTP status of bob's token on ada's server.
    bob_on_ada_server: int
    #: bob's assignment list after submitting, through his own server.
    bob_listing: list[dict]
    #: The notebook the instructor collected for ada.
    ada_collected: nbformat.NotebookNode
    #: nbgrader validate (through the student's server) of each student's notebook.
    validation: dict[str, dict]


def _fill_answers(hub: Hub, student: str, path: str, answers: dict[str, str]) -> None:
    """Edit and save the notebook through the contents API, as JupyterLab saves it."""
    notebook = nbformat.from_dict(_contents(hub, student, path, content="1")["content"])
    filled = 0
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
            filled += 1
    assert filled == len(answers), f"{filled} of {len(answers)} answer cells found in {path}"
    response = hub.as_user(student).put(
        hub.server(student, f"api/contents/{quote(path)}"),
        json={"type": "notebook", "format": "json", "content": notebook},
        timeout=60,
    )
    assert response.status_code == 200, response.text


def _validate(hub: Hub, student: str, path: str) -> dict:
    response = hub.as_user(student).post(
        hub.server(student, "assignments/validate"), json={"path": path}, timeout=REQUEST_TIMEOUT
    )
    return _ok(response, f"{student} validates {path}", hub)["value"]


@pytest.fixture(scope="module")
def course_class(machine: Machine, hub: Hub) -> Class:
    a = assignments()[0]
    notebook = f"{a}/{a}.ipynb"
    course = machine.homes[INSTRUCTOR] / COURSE_DIR

    # 1. The instructor generates the student version and releases it to the exchange.
    _instructor(machine, "release", "--course", str(course), a)
    _formgrader(hub, f"assignment/{a}/release")

    # 2. The students fetch it, ada answers, both submit (validating first).
    for student in (ADA, BOB):
        listed = _assignments(hub, student, "fetch", a)
        assert any(x["assignment_id"] == a and x["status"] == "fetched" for x in listed), listed
    _fill_answers(hub, ADA, notebook, reference_answers(a))
    validation = {student: _validate(hub, student, notebook) for student in (ADA, BOB)}
    for student in (ADA, BOB):
        _assignments(hub, student, "submit", a)
    bob_listing = _listing(hub, BOB)

    # bob, in a terminal, hands in his stubs again in ada's name.
    forged = _run_as(
        BOB,
        [str(ENV_BIN / "nbgrader"), "submit", a, f"--student={ADA}"],
        cwd=machine.homes[BOB],
        env={
            "JUPYTER_CONFIG_PATH": str(REPO / "hub" / "student"),
            "DESCENT_EXCHANGE": str(machine.exchange),
            "DESCENT_COURSE_ID": COURSE_ID,
        },
        timeout=300,
    )
    assert forged.returncode == 0, f"the forged submission failed:\n{forged.stderr}"

    # 3. Collect, autograde, feedback.
    _formgrader(hub, f"assignment/{a}/collect")
    collected = course / "submitted" / ADA / a / f"{a}.ipynb"
    ada_collected = nbformat.read(collected, as_version=4)
    _instructor(machine, "autograde", "--course", str(course), a, timeout=AUTOGRADE_TIMEOUT)
    _formgrader(hub, f"assignment/{a}/generate_feedback")
    _formgrader(hub, f"assignment/{a}/release_feedback")
    grades = {row["student"]: row for row in _formgrader(hub, f"submissions/{a}", "GET")}

    feedback, feedback_listings = {}, {}
    for student in (ADA, BOB):
        listed = _assignments(hub, student, "fetch_feedback", a)
        paths = [
            nb["local_feedback_path"]
            for entry in listed
            if entry["assignment_id"] == a and entry["status"] == "submitted"
            for submission in entry["submissions"]
            for nb in submission["notebooks"]
            if nb.get("local_feedback_path")
        ]
        if paths:
            page = _contents(hub, student, paths[-1], content="1", type="file", format="text")
            feedback[student] = page["content"]
        else:
            feedback[student] = None  # test_feedback_holds_no_hidden_tests reports it
            feedback_listings[student] = listed

    # What bob can see of the others, once everything is in the exchange.
    course_exchange = machine.exchange / COURSE_ID
    probe = _run_as(
        BOB,
        [sys.executable, "-c", _PROBE, str(course_exchange), str(machine.homes[ADA])],
        cwd=machine.homes[BOB],
        env={},
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    bob_on_ada = hub.as_user(BOB).get(hub.server(ADA, "api/contents"), timeout=60).status_code

    return Class(
        assignment=a,
        grades=grades,
        feedback=feedback,
        feedback_listings=feedback_listings,
        bob_probe=json.loads(probe.stdout),
        bob_on_ada_server=bob_on_ada,
        bob_listing=bob_listing,
        ada_collected=ada_collected,
        validation=validation,
    )


def _text(page: str) -> str:
    """What a reader of an HTML page sees: tags removed, entities decoded."""
    without_code = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", "", without_code))


def test_reference_answers_get_full_marks_and_stubs_zero(course_class: Class) -> None:
    """Autograded after going through the exchange: ada full marks, bob 0."""
    ada, bob = course_class.grades[ADA], course_class.grades[BOB]
    assert ada["max_score"] > 0
    assert ada["score"] == ada["max_score"]
    assert bob["score"] == 0 and bob["max_score"] == ada["max_score"]


def test_students_validate_in_their_own_server(course_class: Class) -> None:
    """nbgrader validate runs each student's notebook in a kernel of their own server (which
    imports ``descent``): ada's answers pass the visible tests, bob's stubs fail them."""
    ada, bob = course_class.validation[ADA], course_class.validation[BOB]
    assert ada == {}, ada  # nothing failed, no locked cell changed
    errors = [cell["raw_error"] for cell in bob["failed"]]
    assert errors and all("NotImplementedError" in error for error in errors), errors


def test_feedback_holds_no_hidden_tests(course_class: Class) -> None:
    """Each student's fetched feedback shows their score and the visible tests only."""
    hidden = [
        cell.source
        for cell in read_source(course_class.assignment).cells
        if "BEGIN HIDDEN TESTS" in cell.source
    ]
    assert hidden and all("autograder.checks" in source for source in hidden)
    for student in (ADA, BOB):
        page = course_class.feedback[student]
        assert page is not None, (
            f"{student} fetched no feedback: {course_class.feedback_listings[student]}"
        )
        text = _text(page)
        grade = course_class.grades[student]
        score = f"(Score: {round(grade['score'], 2)} / {round(grade['max_score'], 2)})"
        assert f"{course_class.assignment} {score}" in text, f"{student}: no {score}"
        assert "assert_close" in text, "the visible tests should be in the feedback"
        for leak in ("HIDDEN TESTS", "autograder.checks", "from autograder"):
            assert leak not in text, f"{student}'s feedback shows {leak!r}"
        assert not re.search(r"""check\(\s*["']\w+["']\s*,""", text), f"{student}: a check(...)"


def test_a_submission_in_another_students_name_is_not_collected(course_class: Class) -> None:
    """bob's later submission in ada's name (his stubs) was skipped: ada's own was collected."""
    answers = reference_answers(course_class.assignment)
    collected = {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in course_class.ada_collected.cells
        if cell.metadata.get("nbgrader", {}).get("grade_id") in answers
    }
    assert collected == answers


def test_a_student_cannot_see_another_students_work(course_class: Class) -> None:
    """bob cannot list the exchange's inbound or feedback, nor read ada's home, nor use her
    server; his own assignment list names only him."""
    assert course_class.bob_probe == {
        "inbound": "denied",
        "feedback": "denied",
        "ada_home": "denied",
    }
    assert course_class.bob_on_ada_server == 403
    submitted = [x for x in course_class.bob_listing if x["status"] == "submitted"]
    assert submitted, course_class.bob_listing
    assert ADA not in json.dumps(course_class.bob_listing)


def _disabled_lab_extensions(hub: Hub, name: str) -> list[str]:
    page = hub.as_user(name).get(hub.server(name, "lab"), timeout=120)
    assert page.status_code == 200, page.text[:2000]
    data = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                     page.text, flags=re.DOTALL)  # fmt: skip
    assert data, page.text[:2000]
    return json.loads(data.group(1)).get("disabledExtensions", [])


def test_formgrader_only_on_the_instructors_server(hub: Hub) -> None:
    """The instructor's server has the formgrader; a student's has neither its server
    extension nor its (or "create assignment"'s) JupyterLab plugin."""
    mine = hub.as_user(INSTRUCTOR).get(hub.server(INSTRUCTOR, "formgrader/api/assignments"))
    assert mine.status_code == 200, mine.text
    theirs = hub.as_user(BOB).get(hub.server(BOB, "formgrader/api/assignments"), timeout=60)
    assert theirs.status_code == 404
    tools = {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment"}
    assert tools <= set(_disabled_lab_extensions(hub, BOB))
    assert not tools & set(_disabled_lab_extensions(hub, INSTRUCTOR))


# --------------------------------------------------------------------------------------------
# the book's launch link


def launch_link(assignment: str) -> str:
    """The JupyterHub launch link Jupyter Book puts on a chapter page, from _config.yml."""
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    repository, hub_url = config["repository"], config["launch_buttons"]["jupyterhub_url"]
    name = repository["url"].rstrip("/").split("/")[-1]
    return (
        f"{hub_url.rstrip('/')}/hub/user-redirect/git-pull?repo={quote(repository['url'])}"
        f"&urlpath=lab/tree/{name}/chapters/{assignment}.ipynb&branch={repository['branch']}"
    )


def _bare_clone(machine: Machine, name: str, branch: str, owner: str) -> Path:
    """The repository's current commit as ``branch`` of a bare repository named ``name``."""
    bare = machine.root / "git" / name
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", "--no-hardlinks", str(REPO), str(bare)],
        check=True,
        capture_output=True,
    )
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    update = ["git", "--git-dir", str(bare), "update-ref", f"refs/heads/{branch}", head]
    subprocess.run(update, check=True, capture_output=True)
    account = pwd.getpwnam(owner)
    for path in [bare.parent, bare, *bare.rglob("*")]:
        os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
    return bare


def _log_in(hub: Hub, name: str) -> requests.Session:
    browser = _session()
    page = browser.get(f"{hub.url}/hub/login", timeout=60)
    xsrf = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text)
    assert xsrf, page.text[:2000]
    response = browser.post(
        f"{hub.url}/hub/login",
        data={"username": name, "password": "any", "_xsrf": xsrf.group(1)},
        timeout=120,
    )
    assert response.status_code == 200, response.text[:2000]
    return browser


def test_launch_link_pulls_the_chapter_into_the_students_server(machine: Machine, hub: Hub) -> None:
    """A logged-in student follows the book's launch link: the hub sends it to their own
    server's nbgitpuller, which clones the repository (a local copy of this commit here)
    into the folder the link's urlpath opens, where the chapter then is."""
    a = assignments()[0]
    link = launch_link(a)
    built = REPO / "_build" / "html" / "chapters" / f"{a}.html"
    if built.exists():
        page = built.read_text()
        assert link in page or html.escape(link) in page, f"{built} has no link {link}"
    parts = urlsplit(link)
    query = dict(pair.split("=", 1) for pair in parts.query.split("&"))
    name = query["repo"].rstrip("/").split("/")[-1]
    bare = _bare_clone(machine, name, query["branch"], BOB)
    here = link.replace(f"{parts.scheme}://{parts.netloc}", hub.url, 1).replace(
        query["repo"], quote(str(bare))
    )

    browser = _log_in(hub, BOB)
    page = browser.get(here, timeout=120)
    assert page.status_code == 200, page.text[:2000]
    assert urlsplit(page.url).path == f"/user/{BOB}/git-pull", page.url
    assert query["urlpath"] in page.text  # where the page sends the browser once pulled

    events = browser.get(
        hub.server(BOB, "git-pull/api"),
        params={"repo": str(bare), "branch": query["branch"]},
        stream=True,
        timeout=REQUEST_TIMEOUT,
    )
    phases = []
    deadline = time.monotonic() + REQUEST_TIMEOUT
    for line in events.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            phases.append(json.loads(line[5:]))
            if phases[-1].get("phase") in ("finished", "error"):
                break
        assert time.monotonic() < deadline, phases
    events.close()
    assert phases and phases[-1].get("phase") == "finished", phases
    opened = query["urlpath"].removeprefix("lab/tree/")
    chapter = _contents(hub, BOB, opened, content="1")
    assert chapter["type"] == "notebook"
    committed = subprocess.run(
        ["git", "-C", str(REPO), "show", f"HEAD:chapters/{a}.ipynb"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pulled = nbformat.from_dict(chapter["content"])
    assert [c.source for c in pulled.cells] == [
        c.source for c in nbformat.reads(committed, as_version=4).cells
    ]
