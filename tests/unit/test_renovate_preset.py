"""images/renovate.json against the tag scheme: every immutable tag we write is read by exactly
the rule of its own variant, as the same Python, release and build; rolling tags by none.
(The real Renovate runs against a registry in tests/integration/test_renovate.py.)"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest

from pybase.core import matrix, tags
from pybase.publish import renovate

MATRIX = matrix.load()
DAY = date(2026, 11, 25)


def python_regex(js: str) -> re.Pattern[str]:
    """Renovate's `/…/` or `regex:` pattern (RE2 named groups `(?<x>…)`) as Python's."""
    body = js.removeprefix("regex:").strip("/")
    return re.compile(body.replace("(?<", "(?P<"))


def rules_for(tag: str) -> list[dict[str, Any]]:
    return [r for r in renovate.preset(MATRIX)["packageRules"]
            if "matchCurrentValue" in r and python_regex(r["matchCurrentValue"]).search(tag)]


def test_the_committed_preset_is_the_generated_one() -> None:
    assert json.loads(renovate.PRESET.read_text()) == renovate.preset(MATRIX)


@pytest.mark.parametrize("serial", [0, 3])
@pytest.mark.parametrize("variant", MATRIX.variants)
@pytest.mark.parametrize("target", MATRIX.targets(include_all=True), ids=lambda t: t.key)
def test_each_immutable_tag_has_the_rule_of_its_variant(target: matrix.Target, variant: Any,
                                                        serial: int) -> None:
    tag = tags.immutable_tag(target, variant, DAY, MATRIX.tags.date_format, serial)
    [rule] = rules_for(tag)
    found = python_regex(rule["versioning"]).fullmatch(tag)
    assert found is not None
    major, minor, patch = target.python.version.split(".")
    assert found.group("major", "minor", "patch") == (major, minor, patch)
    assert found["compatibility"] == target.release
    assert found["build"] == DAY.strftime("%Y%m%d")
    assert (found["revision"] or "0") == str(serial)
    assert variant in rule["description"]


@pytest.mark.parametrize("target", MATRIX.targets(), ids=lambda t: t.key)
def test_rolling_tags_keep_renovates_own_versioning(target: matrix.Target) -> None:
    for variant in MATRIX.variants:
        for tag in tags.tags_for(MATRIX, target, variant, DAY)[1:]:
            assert rules_for(tag) == [], tag


def test_minor_and_major_updates_are_off() -> None:
    rules = renovate.preset(MATRIX)["packageRules"]
    assert {"matchUpdateTypes": ["major", "minor"], "enabled": False}.items() <= rules[1].items()
    assert rules[0]["separateMinorPatch"] is True
    assert rules[0]["changelogUrl"].startswith(MATRIX.image.source)
