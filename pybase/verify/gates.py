"""The publish gates: an image is published only if its exact image ID passed the tests and the
audit.

`nox -s test` writes one test record per selected image (reports/gates/test/<local-tag>.json,
from tests/conftest.py's session hooks); `nox -s audit` writes reports/audit/<local-tag>.json.
Both name the image ID they looked at, so a rebuild after the tests needs the tests again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pybase.core import paths

TEST_RECORDS = paths.REPORTS / "gates" / "test"
AUDIT_RECORDS = paths.audit_records()


@dataclass(frozen=True)
class TestRecord:
    """What the test session saw for one image."""

    __test__ = False  # not a pytest class, despite the name

    image: str
    image_id: str
    passed: int
    failed: int
    errors: int
    skipped: int
    failed_elsewhere: int  # failures of tests not tied to this image (unit tests...)
    deselected: int        # a -k/-m/--deselect run is not a full verification,
    partial: bool          # nor is one given test paths instead of the whole suite
    finished: str

    @property
    def outcome(self) -> str:
        if self.failed or self.errors or self.failed_elsewhere:
            return "failed"
        if self.deselected or self.partial or not self.passed:
            return "incomplete"
        return "passed"

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, **asdict(self)}


def write_test_record(record: TestRecord, directory: Path = TEST_RECORDS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{paths.report_name(record.image)}.json"
    path.write_text(json.dumps(record.as_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"_unreadable": str(exc)}
    return data if isinstance(data, dict) else {"_unreadable": "not a JSON object"}


def refusals(ref: str, image_id: str, test_dir: Path = TEST_RECORDS,
             audit_dir: Path = AUDIT_RECORDS) -> list[str]:
    """Why `ref` (image `image_id`) may not be published; [] when both gates passed."""
    name = paths.report_name(ref)
    problems = []
    gates: Iterable[tuple[str, Path, str, str]] = (
        ("test", test_dir / f"{name}.json", "outcome", "nox -s test"),
        ("audit", audit_dir / f"{name}.json", "status", "nox -s audit"),
    )
    for gate, path, field, command in gates:
        record = _read(path)
        if record is None:
            problems.append(f"{ref}: no {gate} record ({path}); run `{command}` first")
        elif "_unreadable" in record:
            problems.append(f"{ref}: the {gate} record {path} is unreadable: "
                            f"{record['_unreadable']}")
        elif record.get("image_id") != image_id:
            problems.append(f"{ref}: the {gate} record is for image "
                            f"{str(record.get('image_id'))[:19]}, not {image_id[:19]} (rebuilt "
                            f"since); run `{command}` again")
        elif record.get(field) != "passed":
            problems.append(f"{ref}: the {gate} gate did not pass ({field}: "
                            f"{record.get(field)}; see {path})")
    return problems
