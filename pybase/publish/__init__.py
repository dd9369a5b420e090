"""Publishing: tested, audited images to the registry, only when their content changed.

- publisher: the run (gate pre-flight, unchanged or new, rollback), the one entry point;
- promote: every registry write (the platforms' images, the immutable tag, then the rolling
  tags);
- records: the changelog of each published image and the run's manifest record;
- content: the fingerprint and changelog of an image's content; candidates: GitLab's pipeline
  candidates, built once and promoted by digest.

The types the modules share are here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pybase.core.errors import PybaseError
from pybase.core.matrix import Target, Variant


class PublishError(PybaseError):
    """Publishing refused or failed; the message names the image, gate or registry."""


@dataclass(frozen=True)
class Candidate:
    ref: str           # the image in the engine (python-base:3.13.15-bookworm)
    target: Target
    variant: Variant
    source: str | None = None  # `repo@sha256:...` to promote from instead of pushing


@dataclass(frozen=True)
class Group:
    """The candidates that share every tag: one entry and variant, one image per platform (in
    versions.yaml's order). With several, each tag is an index over them."""

    members: tuple[Candidate, ...]

    @property
    def first(self) -> Candidate:
        return self.members[0]

    @property
    def platforms(self) -> list[str]:
        return [c.target.platform for c in self.members]

    @property
    def is_index(self) -> bool:
        return len(self.members) > 1


class Status(StrEnum):
    PUBLISHED = "published"
    UNCHANGED = "unchanged"
    ROLLED_BACK = "rolled back"


@dataclass(kw_only=True)
class Outcome:
    image: str
    image_id: str
    status: Status
    immutable_tag: str
    digest: str
    previous_digest: str | None
    fingerprint: str
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest
    changelog: dict[str, str] = field(default_factory=dict)  # format -> path
    kept: dict[str, str] = field(default_factory=dict)  # rolling tag -> the newer build it serves
    # An index's images: platform -> manifest digest (empty when the tag serves one image).
    platforms: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
