"""The Renovate preset downstream repositories extend (images/renovate.json), generated from
versions.yaml and the tag scheme of core.tags (`nox -s pipeline` writes it, lint fails on drift).

Renovate's docker versioning reads `3.13.15-bookworm-20261125` as version 3.13.15 with the
suffix `bookworm-20261125`, which no newer build shares: it would never propose one. The preset
gives our immutable tags a regex versioning instead: major.minor.patch, the Debian release as the
compatibility (never crossed), and the build day plus same-day serial as build and revision, so
a newer build of the same minor is a patch update. Regex versioning compares one compatibility
group only, and the variant suffix stands after the date; so each variant gets its own rule,
chosen by the current tag's shape, and a `-build` tag is never offered a runtime one.
Rolling tags keep Renovate's own docker versioning: pinned by digest, they get digest updates.
Minor and major updates (3.13 -> 3.14) are off unless a repository turns them on again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pybase.core import paths, tags
from pybase.core.matrix import Matrix

PRESET = paths.REPO / "images" / "renovate.json"
IMMUTABLE = r"(?<major>\d+)\.(?<minor>\d+)\.(?<patch>\d+)-(?<compatibility>[a-z]+)-" \
            r"(?<build>\d{8})(\.(?<revision>\d+))?"
SHAPE = r"\d+\.\d+\.\d+-[a-z]+-\d{8}(\.\d+)?"


def preset(matrix: Matrix) -> dict[str, Any]:
    image = f"/(^|/){matrix.image.name}$/"
    common = {"matchDatasources": ["docker"], "matchPackageNames": [image]}
    rules: list[dict[str, Any]] = [
        {**common,
         "description": f"{matrix.image.name}: patch and build updates apart from minor ones; "
                        "the changelog of every published build",
         "separateMinorPatch": True,
         "changelogUrl": changelog_url(matrix)},
        {**common, "description": "never another Python minor or major unless asked",
         "matchUpdateTypes": ["major", "minor"], "enabled": False},
    ]
    for variant in matrix.variants:
        end = tags.suffix(variant)
        rules.append({
            **common,
            "description": f"immutable {variant} tags: 3.13.15-bookworm-20261125[.N]{end}",
            "matchCurrentValue": f"/^{SHAPE}{end}$/",
            "versioning": f"regex:^{IMMUTABLE}{end}$",
        })
    return {
        "$schema": "https://docs.renovatebot.com/renovate-schema.json",
        "description": f"{matrix.image.title}: newer builds of the same Python minor, Debian "
                       "release and variant; digest updates of pinned rolling tags. Generated "
                       "from versions.yaml by `nox -s pipeline`; do not edit.",
        "packageRules": rules,
    }


def changelog_url(matrix: Matrix) -> str:
    """Where the changelogs `nox -s publish` writes are browsable: the newest artifacts of the
    default branch's publish job (reports/publish/<immutable tag>.changelog.md)."""
    return f"{matrix.image.source}/-/jobs/artifacts/main/browse/reports/publish?job=publish"


def text(matrix: Matrix) -> str:
    return json.dumps(preset(matrix), indent=2) + "\n"


def sync(matrix: Matrix, check: bool, path: Path = PRESET) -> bool:
    """True if the preset file already matched; writes it unless `check` (then False)."""
    wanted = text(matrix)
    if path.is_file() and path.read_text(encoding="utf-8") == wanted:
        return True
    if not check:
        path.write_text(wanted, encoding="utf-8")
    return False
