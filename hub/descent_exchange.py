"""nbgrader's exchange, with collect refusing submissions made in another student's name.

``nbgrader submit --student=NAME`` (or ``CourseDirectory.student_id`` in a student's own
config) files a submission under any name, and nbgrader's collect only logs a warning when the
submission's files belong to someone else. On a shared server that lets one student replace a
classmate's work with a later "submission". :class:`OwnerCheckedCollect` collects, for each
student, their newest submission whose directory that student owns, and logs the others as
errors. The instructor's configuration (``hub/instructor/nbgrader_config.py``) selects it with
``c.ExchangeFactory.collect = "descent_exchange.OwnerCheckedCollect"``.
"""

from __future__ import annotations

import glob
import os
import pwd

from nbgrader.exchange.default.collect import ExchangeCollect


def owner(path: str) -> str:
    """The unix user name owning ``path`` (or its numeric id if it has no name)."""
    uid = os.stat(path).st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class OwnerCheckedCollect(ExchangeCollect):
    """nbgrader's collect, taking only the submissions owned by the students they name."""

    def _genuine(self, record: dict) -> bool:
        path = os.path.join(self.inbound_path, record["filename"])
        made_by = owner(path)
        if made_by == record["username"]:
            return True
        self.log.error(
            "not collected: %s names student %s but was submitted by %s",
            record["filename"],
            record["username"],
            made_by,
        )
        return False

    def init_src(self) -> None:
        super().init_src()
        kept = []
        for chosen in self.src_records:
            if self._genuine(chosen):
                kept.append(chosen)
                continue
            # The student's own newest submission (before the due date when that is asked).
            pattern = os.path.join(
                self.inbound_path, f"{chosen['username']}+{self.coursedir.assignment_id}+*"
            )
            genuine = [
                record
                for record in map(self._path_to_record, glob.glob(pattern))
                if record["username"] == chosen["username"]
                and record["filename"] != chosen["filename"]
                and self._genuine(record)
            ]
            genuine = self._sort_by_timestamp(genuine)
            if self.before_duedate and self.duedate is not None:
                on_time = [r for r in genuine if r["timestamp"] <= self.duedate]
                genuine = on_time or genuine
            kept.extend(genuine[:1])
        self.src_records = kept
