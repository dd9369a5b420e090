"""The audit exceptions file: findings a human accepted, each with a reason and an expiry.

    ignore:
      - id: PYSEC-2023-228
        reason: pip is only used at build time, never with Mercurial URLs
        expires: 2025-06-30
        scope: "python-base:3.11-*"   # optional image tag glob

Every exception must expire so accepted risk gets re-reviewed; an expired entry fails the
load (instead of silently no longer matching) so the gate says *why* it turned red. Read through
pybase.core.validated_yaml, as versions.yaml is: errors give file:line, entry id and the value found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from pybase.core import validated_yaml
from pybase.core.errors import PybaseError
from pybase.core.validated_yaml import Problem

__all__ = ["AuditIgnoreError", "IgnoreEntry", "IgnoreFile", "load_ignores"]

_NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXPECTED = {
    "id": "an advisory id such as PYSEC-2023-228 or CVE-2023-5752",
    "reason": "a non-empty explanation of why the finding is accepted",
    "expires": "a YYYY-MM-DD date on which the exception must be reviewed again",
    "scope": "an image tag glob such as 'python-base:3.11-*'",
    "ignore": "a list of entries with id, reason, expires and optional scope",
}


class AuditIgnoreError(PybaseError):
    """The exceptions file is invalid; the message gives file:line, entry id and the fix."""


class IgnoreEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: _NonEmpty
    reason: _NonEmpty
    expires: date
    scope: _NonEmpty | None = None

    @field_validator("expires", mode="before")
    @classmethod
    def _plain_date(cls, value: object) -> object:
        # YAML already turns an unquoted 2025-06-30 into a date; pydantic alone would also
        # accept timestamps and datetimes, which would make the expiry day ambiguous.
        ok_str = isinstance(value, str) and _ISO_DATE.fullmatch(value)
        if isinstance(value, datetime) or not (ok_str or isinstance(value, date)):
            raise ValueError(f"{validated_yaml.found(value)} is not a plain date")
        return value

    def matches(self, ids: Iterable[str], image_tag: str | None) -> bool:
        # Advisory ids are upper-case by convention; people type them in any case.
        if self.id.casefold() not in {i.casefold() for i in ids}:
            return False
        # A scoped entry never applies when the image is unknown: fail closed.
        return self.scope is None or (image_tag is not None and fnmatchcase(image_tag, self.scope))


class IgnoreFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ignore: list[IgnoreEntry] = []

    def is_ignored(
        self, finding_id: str, aliases: Iterable[str] = (), image_tag: str | None = None
    ) -> IgnoreEntry | None:
        """The first entry accepting this finding (by its id or any alias), else None."""
        ids = [finding_id, *aliases]
        return next((e for e in self.ignore if e.matches(ids, image_tag)), None)


def _entry_label(data: Any, loc: Sequence[int | str]) -> str:
    if len(loc) < 2 or loc[0] != "ignore" or not isinstance(loc[1], int):
        return "top level"
    entry = data["ignore"][loc[1]]
    entry_id = entry.get("id") if isinstance(entry, dict) else None
    return f"entry {entry_id!r}" if entry_id else f"entry #{loc[1] + 1} (no id)"


def _explain(problem: Problem, data: Any) -> str:
    loc = problem.loc
    field = str(loc[-1]) if loc and isinstance(loc[-1], str) else ""
    if problem.kind == "extra_forbidden":
        known = IgnoreEntry.model_fields if len(loc) > 2 else IgnoreFile.model_fields
        hint = f"only the keys {', '.join(known)}"
    elif field in _EXPECTED:
        hint = _EXPECTED[field]
    elif len(loc) == 2:  # ("ignore", n): the entry itself is not a mapping
        hint = "a mapping with id, reason, expires and optional scope"
    else:
        hint = "a mapping with a top-level 'ignore:' list"
    label = _entry_label(data, loc)
    return f"{label}: {field + ': ' if field else ''}{problem.message}; expected {hint}"


def load_ignores(path: Path, today: date) -> IgnoreFile:
    """Read and check the exceptions file; a missing or empty file means no exceptions."""
    if not path.exists():
        return IgnoreFile()
    doc = validated_yaml.parse(path.read_text(encoding="utf-8"), str(path), AuditIgnoreError)
    if doc is None or doc.data is None:
        return IgnoreFile()
    parsed = validated_yaml.validate(
        IgnoreFile, doc, AuditIgnoreError, lambda problem: _explain(problem, doc.data)
    )
    expired = [
        f"{path}:{doc.line(('ignore', index, 'expires'))}: entry {entry.id!r}: expired on "
        f"{entry.expires} (today is {today}); expected a future date after re-reviewing "
        "the finding, or remove the entry"
        for index, entry in enumerate(parsed.ignore)
        if entry.expires < today
    ]
    if expired:
        raise AuditIgnoreError("\n".join(expired))
    return parsed
