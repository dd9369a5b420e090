"""The audit exceptions file: validation errors carry file:line, entry id and the fix."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from textwrap import dedent

import pytest

from pybase.verify.audit_ignore import AuditIgnoreError, IgnoreFile, load_ignores

TODAY = date(2025, 1, 15)

VALID = """\
ignore:
  - id: PYSEC-2023-228
    reason: pip is only used at build time, never with Mercurial URLs
    expires: 2025-06-30
  - id: GHSA-v845-jxx5-vc9f
    reason: redirects are disabled in every client we ship
    expires: "2025-01-15"
    scope: "python-base:3.11-*"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "audit-ignore.yaml"
    path.write_text(dedent(text))
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(AuditIgnoreError) as err:
        load_ignores(path, TODAY)
    return str(err.value)


def test_valid_file_matches_by_id_alias_and_scope(tmp_path: Path) -> None:
    ignores = load_ignores(write(tmp_path, VALID), TODAY)
    assert [e.id for e in ignores.ignore] == ["PYSEC-2023-228", "GHSA-v845-jxx5-vc9f"]
    assert ignores.ignore[1].expires == TODAY  # expiring today is still valid

    pip = ignores.is_ignored("PYSEC-2023-228", ["CVE-2023-5752"], "python-base:3.12-bookworm")
    assert pip is ignores.ignore[0]  # unscoped: any image
    assert ignores.is_ignored("CVE-2023-5752", ["pysec-2023-228"]) is pip  # alias, any case
    assert ignores.is_ignored("PYSEC-2023-1", ["CVE-2023-1"]) is None

    urllib3 = ("PYSEC-2023-192", ["CVE-2023-43804", "GHSA-v845-jxx5-vc9f"])
    assert ignores.is_ignored(*urllib3, "python-base:3.11-bookworm") is ignores.ignore[1]
    assert ignores.is_ignored(*urllib3, "python-base:3.12-bookworm") is None
    assert ignores.is_ignored(*urllib3, None) is None  # scoped entries need a known image


def test_missing_or_empty_file_means_no_exceptions(tmp_path: Path) -> None:
    assert load_ignores(tmp_path / "absent.yaml", TODAY) == IgnoreFile()
    assert load_ignores(write(tmp_path, ""), TODAY).is_ignored("PYSEC-2023-228") is None
    assert load_ignores(write(tmp_path, "ignore: []\n"), TODAY).ignore == []


def test_expired_entry_names_file_line_and_id(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("2025-06-30", "2025-01-14"))
    assert message.startswith(f"{tmp_path / 'audit-ignore.yaml'}:4: entry 'PYSEC-2023-228'")
    assert "expired on 2025-01-14 (today is 2025-01-15)" in message


def test_missing_reason(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        """\
        ignore:
          - id: PYSEC-2023-228
            reason: fine
            expires: 2025-06-30
          - id: CVE-2023-5752
            expires: 2025-06-30
        """,
    )
    assert ":5: entry 'CVE-2023-5752': reason: Field required" in message
    assert "expected a non-empty explanation" in message


@pytest.mark.parametrize("reason", ['""', '"   "'])
def test_empty_reason(tmp_path: Path, reason: str) -> None:
    message = load_error(
        tmp_path, f"ignore:\n- id: X-1\n  reason: {reason}\n  expires: 2025-06-30\n"
    )
    assert ":3: entry 'X-1': reason:" in message


def test_unknown_key_in_entry_and_at_top_level(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        """\
        ignore:
          - id: X-1
            reason: fine
            expires: 2025-06-30
            package: pip
        owner: me
        """,
    )
    first, second = message.splitlines()
    assert first.endswith(
        ":5: entry 'X-1': package: Extra inputs are not permitted; "
        "expected only the keys id, reason, expires, scope"
    )
    assert ":6: top level: owner: Extra inputs are not permitted" in second


@pytest.mark.parametrize(
    ("expires", "problem"),
    [
        ("2025-06-30T12:00:00", "is not a plain date"),  # YAML reads this as a datetime
        ('"30/06/2025"', "is not a plain date"),
        ("", "is not a plain date"),
        ('"2025-02-30"', "expires:"),
    ],
)
def test_expires_must_be_a_plain_date(tmp_path: Path, expires: str, problem: str) -> None:
    message = load_error(tmp_path, f"ignore:\n- id: X-1\n  reason: r\n  expires: {expires}\n")
    assert ":4: entry 'X-1': expires:" in message and problem in message
    assert "expected a YYYY-MM-DD date" in message


def test_entry_without_id_is_numbered(tmp_path: Path) -> None:
    message = load_error(tmp_path, "ignore:\n- reason: r\n  expires: 2025-06-30\n")
    assert ":2: entry #1 (no id): id: Field required" in message


def test_wrong_shapes_and_bad_yaml(tmp_path: Path) -> None:
    assert "expected a list of entries" in load_error(tmp_path, "ignore: PYSEC-1\n")
    assert "top-level 'ignore:' list" in load_error(tmp_path, "- id: X\n")
    assert ":2: entry #1 (no id): Input should be a valid dictionary" in load_error(
        tmp_path, "ignore:\n- PYSEC-1\n"
    )
    assert "not valid YAML" in load_error(tmp_path, "ignore: [unclosed\n")


ENTRY = "ignore:\n- id: X-1\n  reason: {reason}\n  expires: {expires}\n  scope: {scope}\n"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ({"expires": "2025-06-30T12:00:00"}, ":4: entry 'X-1': expires: 2025-06-30T12:00:00 is"),
        ({"expires": '"2025-02-30"'}, "found '2025-02-30'; expected a YYYY-MM-DD date"),
        ({"reason": '"   "'}, "reason: String should have at least 1 character; found '   '"),
        ({"scope": "[a, b]"}, ":5: entry 'X-1': scope: Input should be a valid string; found ['a'"),
    ],
    ids=["datetime", "no such day", "blank reason", "list as scope"],
)
def test_errors_quote_the_value_found(
    tmp_path: Path, written: dict[str, str], expected: str
) -> None:
    text = ENTRY.format(**{"reason": "r", "expires": "2025-06-30", "scope": "'*'", **written})
    assert expected in load_error(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ignore:\n- id: X-1\n  id: X-2\n  reason: r\n  expires: 2025-06-30\n",
         ":3: key 'ignore[0].id' appears twice"),
        ("ignore:\n- &one {id: X-1, reason: r, expires: 2025-06-30}\n- *one\n",
         ":2: YAML anchor 'one' is not allowed here"),
        ("ignore:\n- id: !!str X-1\n", ":2: YAML tag"),
        ("ignore:\n\t- id: X-1\n", ":2: not valid YAML: found character '\\t'"),
    ],
    ids=["duplicate key", "anchor", "tag", "tab"],
)
def test_read_as_strictly_as_versions_yaml(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in load_error(tmp_path, text)
