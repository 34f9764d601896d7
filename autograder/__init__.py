"""Descent's instructor tooling: a thin layer over nbgrader's own API.

``python -m autograder --help`` lists the commands. The modules:

- :mod:`autograder.course` — where the course's files live and the nbgrader configuration.
- :mod:`autograder.build` — the student version (``chapters/``) and the HTML book.
- :mod:`autograder.grading` — release, collect, autograde, feedback and export for a class.
- :mod:`autograder.checks` — the hidden tests' comparisons with the reference solutions.
"""
