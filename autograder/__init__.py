"""Descent's instructor tooling: a thin layer over nbgrader's own API.

``python -m autograder --help`` lists the commands. The modules:

- :mod:`autograder.course` — where the course's files live and the nbgrader configuration.
- :mod:`autograder.build` — the student version (``chapters/``) and the HTML book.
- :mod:`autograder.grading` — release, collect, autograde, feedback and export for a class.
- :mod:`autograder.checks` — the hidden tests' comparisons with the reference solutions.
"""

import sys

# Every notebook nbgrader reads goes through nbformat's jsonschema validation. jsonschema
# imports the optional ``rfc3987_syntax`` when it is installed (jupyter-events asks for it),
# which compiles a grammar at import: 1.7 s of every grading process's start, for the "iri"
# string formats that no notebook schema uses. Marking it absent makes jsonschema skip them.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]
