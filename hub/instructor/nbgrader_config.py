"""nbgrader configuration of an instructor's server on the course's JupyterHub.

The hub puts this directory on the instructor's ``JUPYTER_CONFIG_PATH``, so the formgrader
in their JupyterLab and the ``nbgrader`` commands in their terminal read it. It is the
course's own configuration (:func:`autograder.course.nbgrader_config`: course id, gradebook,
the hardened autograding and the feedback without hidden tests) on the course directory
``~/$DESCENT_COURSE_DIR``, with nbgrader's shared exchange ``$DESCENT_EXCHANGE`` instead of
the course directory's private one.
"""

import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from autograder.course import activate_grading_environment, nbgrader_config  # noqa: E402

course = Path(os.environ.get("DESCENT_COURSE_DIR", "descent-course")).expanduser()
if not course.is_absolute():
    course = Path.home() / course

c.merge(nbgrader_config(course))
c.Exchange.root = os.environ.get("DESCENT_EXCHANGE", "/srv/nbgrader/exchange")
# Only a submission whose files belong to the student it names is collected (nbgrader itself
# only warns): a student cannot hand in, or overwrite, work in a classmate's name. Needs one
# unix user per student; where all users share one uid (Kubernetes) set DESCENT_CHECK_OWNER=0.
if os.environ.get("DESCENT_CHECK_OWNER", "1") == "1":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    c.ExchangeFactory.collect = "descent_exchange.OwnerCheckedCollect"
# The formgrader's "autograde" runs the hidden tests, which import the course's checks.
activate_grading_environment()
