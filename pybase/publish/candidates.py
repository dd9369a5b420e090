"""Build once, promote everywhere: pipeline candidates in the registry.

In GitLab every job may run on another runner, so the build job pushes each image it built to
`<repository>/candidates:<pipeline>-<local tag>` and records its digest and image ID in
reports/candidates/<local tag>.json (a job artifact). Test, audit and publish jobs `pull` that
exact digest and check the image ID before using it; publish then copies the tested digest to
the release tags, never rebuilding.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pybase.core import paths
from pybase.core.errors import PybaseError
from pybase.infra import engine, registry

RECORDS = paths.REPORTS / "candidates"


class CandidateError(PybaseError):
    """A candidate could not be pushed, found or verified."""


@dataclass(frozen=True)
class CandidateRecord:
    image: str     # the local ref: python-base:3.13.15-bookworm
    image_id: str
    source: str    # repo/candidates@sha256:...


def candidate_repository(repository: registry.Repository) -> registry.Repository:
    return registry.Repository(f"{repository.name}/candidates")


def push(session: registry.Session, refs: Sequence[str], pipeline: str,
         records: Path = RECORDS) -> list[CandidateRecord]:
    """Push each local image as a candidate of this pipeline; write its record."""
    session.tags()  # first contact: fail on a down registry or bad credentials up front
    done = []
    for ref in refs:
        found = engine.inspect(ref)
        if found is None:
            raise CandidateError(f"{ref}: not in the engine; run `nox -s build` first")
        digest = session.push(found.id, f"{pipeline}-{paths.report_name(ref)}")
        record = CandidateRecord(ref, found.id, session.repository.digest(digest))
        records.mkdir(parents=True, exist_ok=True)
        (records / f"{paths.report_name(ref)}.json").write_text(
            json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
        print(f"candidate: {ref} -> {record.source}")
        done.append(record)
    return done


def load(refs: Sequence[str], records: Path = RECORDS) -> list[CandidateRecord]:
    found = []
    for ref in refs:
        path = records / f"{paths.report_name(ref)}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            found.append(CandidateRecord(data["image"], data["image_id"], data["source"]))
        except (OSError, ValueError, KeyError) as exc:
            raise CandidateError(f"{ref}: no usable candidate record {path} ({exc}); did the "
                                 "build job run and pass its artifacts on?") from None
    return found


def pull(session: registry.Session, records: Sequence[CandidateRecord]) -> None:
    """Fetch each candidate by digest, check it is the image that was built, tag it locally."""
    for record in records:
        image_id = session.pull(record.source.rsplit("@", 1)[1])
        if image_id != record.image_id:
            raise CandidateError(f"{record.source} is image {image_id[:19]}, but the build job "
                                 f"recorded {record.image_id[:19]}")
        engine.docker("tag", image_id, record.image, capture=True)
        print(f"candidate: {record.source} -> {record.image}")
