"""What a publish run leaves under reports/publish/: a changelog per published image (Markdown
and JSON) and the run's manifest record."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pybase.build import images
from pybase.core import paths
from pybase.infra import registry
from pybase.publish import Outcome, content
from pybase.verify import gates

RECORDS = paths.REPORTS / "publish"


def write_changelog(records: Path, repository: registry.Repository, outcome: Outcome,
                    old: content.Contents | None, new: content.Contents) -> dict[str, str]:
    """The changes from what the reference tag served before, per platform; {format: path}."""
    found = content.changes_all(old, new)
    facts = [("image", repository.tag(outcome.immutable_tag)),
             ("digest", outcome.digest),
             *[(f"{platform} image", digest) for platform, digest in outcome.platforms.items()],
             ("previous digest", outcome.previous_digest or "none (first publish)"),
             ("fingerprint", outcome.fingerprint),
             ("CPython", str(next(iter(new.values()))["cpython"])),
             ("rolling tags", ", ".join(t for t in outcome.tags if t != outcome.immutable_tag)),
             ("git revision", images.git_revision())]
    records.mkdir(parents=True, exist_ok=True)
    md = records / f"{outcome.immutable_tag}.changelog.md"
    md.write_text(content.markdown(f"{repository.name}:{outcome.immutable_tag}", facts, found),
                  encoding="utf-8")
    js = records / f"{outcome.immutable_tag}.changelog.json"
    js.write_text(json.dumps({"facts": dict(facts), "changes": [c.as_dict() for c in found]},
                             indent=2) + "\n", encoding="utf-8")
    return {"markdown": str(md), "json": str(js)}


def write_record(records: Path, repository: registry.Repository,
                 outcomes: Sequence[Outcome]) -> Path:
    """manifest.json: what this run published, left unchanged or rolled back."""
    records.mkdir(parents=True, exist_ok=True)
    path = records / "manifest.json"
    record: dict[str, Any] = {
        "registry": repository.name,
        "date": gates.now(),
        "git_revision": images.git_revision(),
        "images": [asdict(o) for o in outcomes],
    }
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path
