"""`nox -s publish`: promote tested images to the registry, only when their content changed.

For each candidate (a built image in the engine, or in GitLab a pipeline candidate already in
the registry):

1. gates: its exact image ID has a passing test record and a passing audit record (all
   candidates are checked before anything moves);
2. the registry is contacted once up front: down or refusing credentials stops the run there;
3. its content fingerprint (pybase.publish.content) is compared with that of the image its reference
   rolling tag (`3.13.15-bookworm[-variant]`) serves now; equal means "unchanged since <tag>",
   and nothing is pushed;
4. otherwise the immutable dated tag is written first (a tag that exists is never overwritten:
   the same image is a no-op, another one takes the next same-day serial `.1`, `.2`...), and
   the registry's manifest is checked against the local image ID;
5. then the rolling tags are pointed at that digest, the reference tag last, so a run that dies
   half-way leaves every rolling tag on a complete image and the rerun finishes the move;
6. a changelog against the previous digest and the publish record are written under
   reports/publish/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pybase.build import images, inventory
from pybase.core import label, paths, tags
from pybase.core.errors import PybaseError
from pybase.core.matrix import Matrix, Target
from pybase.infra import engine, registry
from pybase.publish import content
from pybase.verify import gates

RECORDS = paths.REPORTS / "publish"
MAX_SAME_DAY = 99


class PublishError(PybaseError):
    """Publishing refused or failed; the message names the image, gate or registry."""


@dataclass(frozen=True)
class Candidate:
    ref: str           # the image in the engine (python-base:3.13.15-bookworm)
    target: Target
    variant: str
    source: str | None = None  # `repo@sha256:...` to promote from instead of pushing


@dataclass
class Outcome:
    image: str
    image_id: str
    status: str  # published, unchanged, rolled back
    immutable_tag: str
    digest: str
    previous_digest: str | None
    fingerprint: str
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest
    changelog: dict[str, str] = field(default_factory=dict)  # format -> path
    seconds: float = 0.0


Hook = Callable[[str], None]  # called after each registry write: "immutable", "rolling:<tag>"


@dataclass
class Publisher:
    matrix: Matrix
    session: registry.Session
    echo: Callable[[str], None] = print
    after_write: Hook = lambda step: None
    records: Path = RECORDS
    _tags: list[str] = field(default_factory=list)

    @property
    def repository(self) -> registry.Repository:
        return self.session.repository

    # -- the run ----------------------------------------------------------------------------

    def publish(self, candidates: Sequence[Candidate], test_records: Path = gates.TEST_RECORDS,
                audit_records: Path = gates.AUDIT_RECORDS) -> list[Outcome]:
        inspected: dict[str, engine.ImageInspect] = {}
        refused = []
        for c in candidates:
            found = engine.inspect(c.ref)
            if found is None:
                refused.append(f"{c.ref}: not in the engine; run `nox -s build` (or `nox -s "
                               "candidate -- pull` in CI) first")
                continue
            inspected[c.ref] = found
            refused += gates.refusals(c.ref, found.id, test_records, audit_records)
        if refused:
            raise PublishError("refusing to publish:\n  " + "\n  ".join(refused))
        self._tags = self.session.tags()
        outcomes = []
        try:
            for c in candidates:
                outcomes.append(self._one(c, inspected[c.ref]))
        finally:
            self._write_record(outcomes)
        return outcomes

    def _one(self, c: Candidate, gated: engine.ImageInspect) -> Outcome:
        """Publish the image the gates passed: by its ID, even if the tag moved since."""
        started = time.monotonic()
        image_id = gated.id
        built_on = _build_date(gated.labels, c.ref)
        rolling = tags.tags_for(self.matrix, c.target, c.variant, built_on)[1:]
        reference = rolling[0]
        new = content.content(inventory.inventory(image_id))
        fingerprint = content.fingerprint(new)
        current = self.session.manifest(reference)
        old: content.Content | None = None
        if current is not None:
            old = self._published_content(current.digest)
            if content.fingerprint(old) == fingerprint:
                since = self._immutable_of(c, current.digest)
                self.echo(f"publish: {c.ref}: unchanged since {since} ({current.digest[:19]}); "
                          "nothing pushed")
                return Outcome(c.ref, image_id, "unchanged", since, current.digest,
                               current.digest, fingerprint, {reference: current.digest},
                               seconds=round(time.monotonic() - started, 1))
        immutable, digest = self._write_immutable(c, image_id, built_on)
        moved = {immutable: digest, **self._move_rolling(rolling, digest)}
        outcome = Outcome(c.ref, image_id, "published", immutable, digest,
                          current.digest if current else None, fingerprint, moved)
        outcome.changelog = self._write_changelog(outcome, old, new)
        outcome.seconds = round(time.monotonic() - started, 1)
        self.echo(f"publish: {c.ref}: published {self.repository.tag(immutable)} ({digest[:19]})"
                  f", {len(rolling)} rolling tags moved; changelog {outcome.changelog['markdown']}")
        return outcome

    def _published_content(self, digest: str) -> content.Content:
        """The content of the image a tag serves now: pulled by digest (its layers are mostly
        in the engine already), listed, and the pulled reference dropped again."""
        image_id = self.session.pull(digest)
        try:
            return content.content(inventory.inventory(image_id))
        finally:
            engine.docker("image", "rm", self.repository.digest(digest), capture=True,
                          check=False)

    def _write_immutable(self, c: Candidate, image_id: str, built_on: date) -> tuple[str, str]:
        """Write the dated tag (or find this image already under it); verify what the registry
        stores is this image."""
        for serial in range(MAX_SAME_DAY + 1):
            tag = tags.immutable_tag(c.target, c.variant, built_on,
                                     self.matrix.tags.date_format, serial)
            existing = self.session.manifest(tag) if tag in self._tags else None
            if existing is not None and existing.config_digest != image_id:
                continue  # another image owns this tag for good
            if existing is not None:
                self.echo(f"publish: {c.ref}: {tag} already holds this image")
                digest = existing.digest
            elif c.source is not None:
                self.session.copy(c.source, tag)
                digest = c.source.rsplit("@", 1)[1]
            else:
                digest = self.session.push(image_id, tag)
            stored = self.session.manifest(tag)
            if stored is None or stored.digest != digest or stored.config_digest != image_id:
                raise PublishError(
                    f"registry {self.repository.host}: {tag} does not hold image {image_id[:19]} "
                    f"at {digest[:19]} after the push (found "
                    f"{stored.digest[:19] + ' / ' + stored.config_digest[:19] if stored else 'nothing'})")
            self._tags.append(tag)
            self.after_write("immutable")
            return tag, digest
        raise PublishError(f"{c.ref}: {MAX_SAME_DAY} same-day immutable tags exist already")

    def _move_rolling(self, rolling: Sequence[str], digest: str) -> dict[str, str]:
        """Point every rolling tag at `digest`, the reference tag (rolling[0]) last."""
        moved = {}
        for tag in [*rolling[1:], rolling[0]]:
            self.session.copy(self.repository.digest(digest), tag)
            stored = self.session.manifest(tag)
            if stored is None or stored.digest != digest:
                raise PublishError(f"registry {self.repository.host}: {tag} does not point at "
                                   f"{digest[:19]} after moving it")
            moved[tag] = digest
            self.after_write(f"rolling:{tag}")
        return moved

    def _immutable_of(self, c: Candidate, digest: str, tries: int = 10) -> str:
        """The newest immutable tag of this entry and variant that holds `digest`."""
        mine = [(parsed[2], parsed[3], tag) for tag in self._tags
                if (parsed := tags.parse_immutable(self.matrix, tag))
                and parsed[0].key == c.target.key and parsed[1] == c.variant]
        for _, _, tag in sorted(mine, reverse=True)[:tries]:
            found = self.session.manifest(tag)
            if found is not None and found.digest == digest:
                return tag
        return self.repository.digest(digest)

    # -- rollback ---------------------------------------------------------------------------

    def rollback(self, immutable: str) -> Outcome:
        """Point the rolling tags of `immutable`'s entry and variant back at its digest."""
        parsed = tags.parse_immutable(self.matrix, immutable)
        if parsed is None:
            raise PublishError(f"{immutable!r} is not an immutable tag of versions.yaml's entries "
                               "(expected e.g. 3.13.15-bookworm-20261121 or ...-20261121-build)")
        target, variant, built_on, _ = parsed
        self._tags = self.session.tags()
        wanted = self.session.manifest(immutable)
        if wanted is None:
            raise PublishError(f"registry {self.repository.host}: {self.repository.tag(immutable)} "
                               "does not exist")
        rolling = tags.tags_for(self.matrix, target, variant, built_on)[1:]
        current = self.session.manifest(rolling[0])
        moved = self._move_rolling(rolling, wanted.digest)
        outcome = Outcome(self.repository.tag(immutable), wanted.config_digest, "rolled back",
                          immutable, wanted.digest, current.digest if current else None, "",
                          moved)
        self._write_record([outcome])
        self.echo(f"rollback: {', '.join(rolling)} -> {immutable} ({wanted.digest[:19]})")
        return outcome

    # -- records ----------------------------------------------------------------------------

    def _write_changelog(self, outcome: Outcome, old: content.Content | None,
                         new: content.Content) -> dict[str, str]:
        found = content.changes(old, new)
        facts = [("image", self.repository.tag(outcome.immutable_tag)),
                 ("digest", outcome.digest),
                 ("previous digest", outcome.previous_digest or "none (first publish)"),
                 ("fingerprint", outcome.fingerprint),
                 ("CPython", str(new["cpython"])),
                 ("rolling tags", ", ".join(t for t in outcome.tags
                                            if t != outcome.immutable_tag)),
                 ("git revision", images.git_revision())]
        self.records.mkdir(parents=True, exist_ok=True)
        md = self.records / f"{outcome.immutable_tag}.changelog.md"
        md.write_text(content.markdown(f"{self.repository.name}:{outcome.immutable_tag}", facts,
                                       found), encoding="utf-8")
        js = self.records / f"{outcome.immutable_tag}.changelog.json"
        js.write_text(json.dumps({"facts": dict(facts), "changes": [c.as_dict() for c in found]},
                                 indent=2) + "\n", encoding="utf-8")
        return {"markdown": str(md), "json": str(js)}

    def _write_record(self, outcomes: Sequence[Outcome]) -> Path:
        self.records.mkdir(parents=True, exist_ok=True)
        path = self.records / "manifest.json"
        record: dict[str, Any] = {
            "registry": self.repository.name,
            "date": gates.now(),
            "git_revision": images.git_revision(),
            "images": [asdict(o) for o in outcomes],
        }
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        return path


def _build_date(labels: dict[str, str], ref: str) -> date:
    created = labels.get(label.CREATED, "")
    try:
        return datetime.fromisoformat(created).date()
    except ValueError:
        raise PublishError(f"{ref}: label {label.CREATED} is {created!r}, not "
                           "a date; was it built by `nox -s build`?") from None
