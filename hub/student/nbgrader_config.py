"""nbgrader configuration of a student's server on the course's JupyterHub.

The hub puts this directory on the student's ``JUPYTER_CONFIG_PATH``: the Assignments tab
of their JupyterLab (and ``nbgrader fetch_assignment`` / ``submit`` / ``fetch_feedback`` in
a terminal) use the course ``$DESCENT_COURSE_ID`` in nbgrader's shared exchange
``$DESCENT_EXCHANGE``. Assignments are fetched into ``~/<assignment>/``.
"""

import os

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = os.environ.get("DESCENT_COURSE_ID", "descent")
c.Exchange.root = os.environ.get("DESCENT_EXCHANGE", "/srv/nbgrader/exchange")
# Refuse a submission that lacks one of the released notebooks (renamed, deleted).
c.ExchangeSubmit.strict = True
