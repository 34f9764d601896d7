"""JupyterHub for one Descent class: ``jupyterhub -f hub/jupyterhub_config.py`` (as root).

One server, local unix accounts, each user's JupyterLab started as that user
(LocalProcessSpawner) from the Python environment the hub runs in (the course's ``.venv``,
which has nbgrader, ``descent`` and nbgitpuller). Two groups:

- ``instructors``: their server runs nbgrader's formgrader (a server extension in their own
  JupyterLab) on the course directory ``~/$DESCENT_COURSE_DIR``; they release, collect and
  release feedback through nbgrader's exchange, and grade with ``python -m autograder``.
- ``students``: their server has the Assignments tab (fetch, validate, submit, fetch
  feedback) and no formgrader nor "create assignment" tools.

Each group's nbgrader and Jupyter server configuration is a directory beside this file
(``instructor/``, ``student/``) that the hub puts on the user's ``JUPYTER_CONFIG_PATH``.

Settings, all from the environment of the hub (defaults in brackets):

- ``DESCENT_INSTRUCTORS``, ``DESCENT_STUDENTS``: comma-separated unix user names [none]; they
  are the hub's allowed users and its two groups. Groups only grow at startup: remove
  someone through the admin page or the REST API.
- ``DESCENT_HUB_ADMINS``: comma-separated hub administrators [none].
- ``DESCENT_EXCHANGE``: nbgrader's exchange, a directory every user can write
  (mode 1777) [/srv/nbgrader/exchange]; created if missing when the hub runs as root.
- ``DESCENT_COURSE_DIR``: the instructors' nbgrader course directory, relative to their
  home (or absolute) [descent-course]. It must lie inside their home (the server's root)
  for the formgrader.
- ``DESCENT_PRIVATE_HOMES``: ``1`` makes each user's home mode 0700 before their server
  starts, so that classmates cannot read each other's work [1].
- ``DESCENT_CHECK_OWNER``: ``1`` makes the instructor's collect skip a submission whose files
  belong to another user than the student it names (``descent_exchange.py``); ``0`` only
  where all users share one uid [1].

Everything else is JupyterHub's own configuration: add it below, or load this file from
your own (``load_subconfig("/path/to/hub/jupyterhub_config.py")``) and override there.
"""

import os
import pwd
import stat
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: The environment the hub runs in; every user's server runs from it too. Not resolved:
#: a virtual environment's python is a symlink and must be called through its own bin/.
ENV_BIN = Path(sys.executable).parent

sys.path.insert(0, str(REPO))
from autograder.course import COURSE_ID  # noqa: E402

INSTRUCTOR_GROUP = "instructors"
STUDENT_GROUP = "students"


def _names(variable: str) -> list[str]:
    return sorted({name.strip() for name in os.environ.get(variable, "").split(",")} - {""})


instructors = _names("DESCENT_INSTRUCTORS")
students = _names("DESCENT_STUDENTS")
exchange = Path(os.environ.get("DESCENT_EXCHANGE", "/srv/nbgrader/exchange"))
course_dir = os.environ.get("DESCENT_COURSE_DIR", "descent-course")
private_homes = os.environ.get("DESCENT_PRIVATE_HOMES", "1") == "1"

if os.geteuid() == 0 and not exchange.exists():
    exchange.mkdir(parents=True)
    # nbgrader's exchange: everyone writes, only owners delete (sticky bit).
    exchange.chmod(0o777 | stat.S_ISVTX)

# --- who may log in ------------------------------------------------------------------------
c.Authenticator.allowed_users = set(instructors) | set(students)
c.Authenticator.admin_users = set(_names("DESCENT_HUB_ADMINS"))
c.JupyterHub.load_groups = {
    INSTRUCTOR_GROUP: {"users": instructors},
    STUDENT_GROUP: {"users": students},
}


# --- each user's server --------------------------------------------------------------------
def _side(spawner) -> str:
    """``instructor`` or ``student``: which configuration directory the user's server gets."""
    groups = {group.name for group in spawner.user.groups}
    return "instructor" if INSTRUCTOR_GROUP in groups else "student"


def _make_home_private(spawner) -> None:
    if not private_homes or os.geteuid() != 0:
        return
    home = Path(pwd.getpwnam(spawner.user.name).pw_dir)
    if home.is_dir() and home.stat().st_mode & 0o077:
        home.chmod(0o700)


c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(ENV_BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.pre_spawn_hook = _make_home_private
c.Spawner.environment = {
    # nbgrader runs `alembic` and the kernels run `python` from this environment.
    "PATH": os.pathsep.join([str(ENV_BIN), "/usr/local/bin", "/usr/bin", "/bin"]),
    "JUPYTER_CONFIG_PATH": lambda spawner: str(HERE / _side(spawner)),
    "DESCENT_COURSE_ID": COURSE_ID,
    "DESCENT_EXCHANGE": str(exchange),
    "DESCENT_COURSE_DIR": course_dir,
    "DESCENT_CHECK_OWNER": os.environ.get("DESCENT_CHECK_OWNER", "1"),
    # nbgitpuller (the book's launch links) opens the pulled chapter in JupyterLab.
    "NBGITPULLER_APP": "lab",
}
# A loaded machine (a class starting at once) can take a while to start a server.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
