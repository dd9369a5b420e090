"""`nox -s publish`: promote tested images to the registry, only when their content changed.

The unit is a group: one entry and variant with one candidate per platform of versions.yaml (a
built image in the engine, or in GitLab a pipeline candidate already in the registry). With one
platform every tag serves that image; with several, every tag serves an index over them.

1. gates: every candidate's exact image ID has a passing test record and a passing audit record,
   and every group has every platform (all are checked before anything moves: a platform that
   failed or is missing blocks its index, never half-published);
2. the registry is contacted once up front: down or refusing credentials stops the run there;
3. the group's content fingerprint (pybase.publish.content, per platform) is compared with that
   of what its reference rolling tag (`3.13.15-bookworm[-variant]`) serves now; equal means
   "unchanged since <tag>", and nothing is pushed;
4. otherwise the immutable dated tag is written first (a tag that exists is never overwritten:
   the same images are a no-op, others take the next same-day serial `.1`, `.2`...; with
   several platforms, each image first under `<tag>-<arch>`, then the index), and the
   registry's manifests are checked against the local image IDs; each image (and the index)
   is signed and attested;
5. then the rolling tags are pointed at that digest, the reference tag last, so a run that dies
   half-way leaves every rolling tag on a complete image and the rerun finishes the move;
6. a changelog against the previous digest and the publish record are written under
   reports/publish/ (records).

The registry writes of 4 and 5 are promote's; this module decides what to write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from pybase.build import inventory
from pybase.core import label, tags
from pybase.core.matrix import Matrix, Target, Variant
from pybase.core.steps import Step, default_jobs, run_all
from pybase.infra import engine, oci, registry
from pybase.publish import (
    Candidate,
    Group,
    Outcome,
    PublishError,
    Status,
    attest,
    content,
    records,
)
from pybase.publish.promote import Hook, Promoter
from pybase.publish.signing import Signer
from pybase.verify import gates, trust


def preflight(candidates: Sequence[Candidate], platforms: Sequence[str],
              test_records: Path = gates.TEST_RECORDS,
              audit_records: Path = gates.AUDIT_RECORDS) -> dict[str, engine.ImageInspect]:
    """Every candidate in the engine with passing test and audit records for its exact image
    ID, and every group with one candidate per platform, or a PublishError listing every
    refusal: nothing moves unless all pass."""
    inspected: dict[str, engine.ImageInspect] = {}
    refused = []
    for c in candidates:
        found = engine.inspect(c.ref)
        if found is None:
            refused.append(f"{c.ref}: not in the engine; run `nox -s build` (or `nox -s "
                           "candidate -- pull` in CI) first")
            continue
        if found.platform != c.target.platform:
            refused.append(f"{c.ref}: is a {found.platform} image, expected "
                           f"{c.target.platform}")
        inspected[c.ref] = found
        refused += gates.refusals(c.ref, found.id, test_records, audit_records)
    for group in groups(candidates):
        if group.platforms != list(platforms):
            refused.append(f"{group.first.target.key} ({group.first.variant}): its tags serve "
                           f"{', '.join(platforms)}, the selection has "
                           f"{', '.join(group.platforms)}; select every platform")
    if refused:
        raise PublishError("refusing to publish:\n  " + "\n  ".join(refused))
    return inspected


def groups(candidates: Sequence[Candidate]) -> list[Group]:
    """The candidates by the tags they share (entry and variant), platforms in the order
    given."""
    found: dict[tuple[str, str], list[Candidate]] = {}
    for c in candidates:
        found.setdefault((c.target.key, c.variant), []).append(c)
    return [Group(tuple(members)) for members in found.values()]


@dataclass
class Publisher:
    matrix: Matrix
    session: registry.Session
    echo: Callable[[str], None] = print
    after_write: Hook = lambda step: None
    record_dir: Path = records.RECORDS
    signer: Signer | None = None  # None: unsigned (`publish --unsigned`, tests of other parts)
    # The platforms every tag must serve; empty: versions.yaml's.
    platforms: Sequence[str] = ()
    # Groups published at the same time: each writes only its own tags, and most of a push is
    # waiting on the engine's compression and the registry.
    jobs: int = field(default_factory=default_jobs)

    @property
    def repository(self) -> registry.Repository:
        return self.session.repository

    def _promoter(self) -> Promoter:
        return Promoter(self.matrix, self.session, self.echo, self.after_write)

    def publish(self, candidates: Sequence[Candidate], test_records: Path = gates.TEST_RECORDS,
                audit_records: Path = gates.AUDIT_RECORDS) -> list[Outcome]:
        inspected = preflight(candidates, self.platforms or self.matrix.platforms, test_records,
                              audit_records)
        promoter = self._promoter()
        finished: dict[str, Outcome] = {}

        def step(group: Group) -> Step[Outcome]:
            return Step(group.first.ref, lambda: self._one(promoter, group, inspected,
                                                           (test_records, audit_records)))

        steps = [step(group) for group in groups(candidates)]
        try:
            # On a failure no further group starts; the running ones finish (each is whole).
            return run_all(steps, jobs=self.jobs,
                           done=lambda step, outcome: finished.__setitem__(step.name, outcome))
        finally:
            # What finished, in the groups' order (also when one failed).
            records.write_record(self.record_dir, self.repository,
                                 [finished[s.name] for s in steps if s.name in finished])

    def _one(self, promoter: Promoter, group: Group, inspected: dict[str, engine.ImageInspect],
             gate_records: tuple[Path, Path]) -> Outcome:
        """Publish the images the gates passed: by their IDs, even if the tags moved since;
        sign and attest them before any rolling tag moves."""
        started = time.monotonic()
        c = group.first
        gated: dict[str, engine.ImageInspect] = {m.target.platform: inspected[m.ref]
                                                 for m in group.members}
        built_on = max(build_date(g.labels, m.ref) for m, g in zip(group.members, gated.values()))
        rolling = tags.tags_for(self.matrix, c.target, c.variant, built_on)[1:]
        reference = rolling[0]
        new: content.Contents = {platform: content.content(inventory.inventory(g.id))
                                 for platform, g in gated.items()}
        fingerprint = content.fingerprint_all(new)
        current = self.session.manifest(reference)
        old: content.Contents | None = None
        if current is not None:
            old = self._published_contents(current, c.target.platform)
            if content.fingerprint_all(old) == fingerprint:
                since = promoter.immutable_of(c, current.digest)
                self.echo(f"publish: {c.ref}: unchanged since {since} ({current.digest[:19]}); "
                          "nothing pushed")
                return Outcome(image=c.ref, image_id=gated[c.target.platform].id,
                               status=Status.UNCHANGED, immutable_tag=since,
                               digest=current.digest, previous_digest=current.digest,
                               fingerprint=fingerprint, tags={reference: current.digest},
                               platforms=current.platforms,
                               seconds=round(time.monotonic() - started, 1))
        evidence: dict[str, attest.Evidence] = ({m.target.platform: attest.gather(m.ref, gated[m.target.platform].id,
                                                      m.target, m.variant, *gate_records)
                     for m in group.members} if self.signer else {})
        immutable, digest, images = promoter.write_immutable(
            group, {p: g.id for p, g in gated.items()}, built_on)
        if self.signer is not None:
            for platform, image_digest in (images or {c.target.platform: digest}).items():
                self._sign(image_digest, self.signer, evidence[platform])
            if images:
                self._sign(digest, self.signer, None)  # the index: a signature of its own
        order = max(g.labels.get(label.BUILD_ORDER, "") for g in gated.values())
        newer = self._served_by_newer(c, rolling, order)
        moved = {immutable: digest,
                 **promoter.move_rolling([t for t in rolling if t not in newer], digest)}
        outcome = Outcome(image=c.ref, image_id=gated[c.target.platform].id,
                          status=Status.PUBLISHED, immutable_tag=immutable, digest=digest,
                          previous_digest=current.digest if current else None,
                          fingerprint=fingerprint, tags=moved, kept=newer, platforms=images)
        outcome.changelog = records.write_changelog(self.record_dir, self.repository, outcome, old,
                                                    new)
        outcome.seconds = round(time.monotonic() - started, 1)
        what = f"an index over {', '.join(images)}" if images else "the image"
        self.echo(f"publish: {c.ref}: published {self.repository.tag(immutable)} ({digest[:19]}"
                  f", {what}), {len(moved) - 1} rolling tags moved; changelog "
                  f"{outcome.changelog['markdown']}")
        return outcome

    def _served_by_newer(self, c: Candidate, rolling: Sequence[str],
                         order: str) -> dict[str, str]:
        """The rolling tags that serve a newer build than `order` already (a late publish of
        an older pipeline): tag -> that build's order. Those are never moved back."""
        newer = {}
        for tag in rolling:
            served = (self.session.labels(tag) or {}).get(label.BUILD_ORDER, "")
            if served > order:
                newer[tag] = served
                self.echo(f"publish: {c.ref}: {tag} serves a newer build ({served} > "
                          f"{order or 'unordered'}); left where it is")
        return newer

    def _sign(self, digest: str, signer: Signer, evidence: attest.Evidence | None) -> None:
        """Sign `digest` and attest what it is (`evidence`; None for an index, whose images
        carry the attestations) unless it verifies already (a rerun), then verify what the
        registry serves for it."""
        started = time.monotonic()
        key = signer.key.public_key()
        attested = evidence is not None
        checked = trust.check(self.session, digest, key, attested=attested)
        verb = "already signed" + (" and attested" if attested else "") + " by this key"
        if not checked.ok:
            if evidence is not None:
                attest.attest(self.session, signer, digest, evidence)
            attest.sign(self.session, signer, digest)
            checked = trust.check(self.session, digest, key, attested=attested)
            verb = "signed" + (" and attested" if attested else " (index)")
        if not checked.ok:
            raise PublishError(f"registry {self.repository.host}: {digest[:19]} does not verify "
                               "after signing: " + "; ".join(checked.problems))
        self.echo(f"publish: {digest[:19]}: {verb}, verified "
                  f"({len(checked.attestations)} attestations) in "
                  f"{time.monotonic() - started:.1f} s")

    def _published_contents(self, current: oci.Manifest,
                            single_platform: str) -> content.Contents:
        """The content of what a tag serves now, per platform (an image from before there
        were indexes counts as `single_platform`'s)."""
        images = current.platforms or {single_platform: current.digest}
        return {platform: self._published_content(digest) for platform, digest in images.items()}

    def _published_content(self, digest: str) -> content.Content:
        """The content of one published image: pulled by digest (its layers are mostly in the
        engine already), listed, and the pulled reference dropped again."""
        image_id = self.session.pull(digest)
        try:
            return content.content(inventory.inventory(image_id))
        finally:
            engine.docker("image", "rm", self.repository.digest(digest), capture=True,
                          check=False)

    def rollback(self, immutable: str) -> Outcome:
        """Point the rolling tags of `immutable`'s entry and variant back at its digest."""
        parsed = tags.parse_immutable(self.matrix, immutable)
        if parsed is None:
            raise PublishError(f"{immutable!r} is not an immutable tag of versions.yaml's entries "
                               "(expected e.g. 3.13.15-bookworm-20261121 or ...-20261121-build)")
        promoter = self._promoter()
        wanted = self.session.manifest(immutable)
        if wanted is None:
            raise PublishError(f"registry {self.repository.host}: {self.repository.tag(immutable)} "
                               "does not exist")
        rolling = tags.tags_for(self.matrix, parsed.target, parsed.variant, parsed.built_on)[1:]
        current = self.session.manifest(rolling[0])
        moved = promoter.move_rolling(rolling, wanted.digest)
        outcome = Outcome(image=self.repository.tag(immutable), image_id=wanted.config_digest,
                          status=Status.ROLLED_BACK, immutable_tag=immutable,
                          digest=wanted.digest,
                          previous_digest=current.digest if current else None, fingerprint="",
                          tags=moved)
        records.write_record(self.record_dir, self.repository, [outcome])
        self.echo(f"rollback: {', '.join(rolling)} -> {immutable} ({wanted.digest[:19]})")
        return outcome


def selection(m: Matrix, targets: Sequence[Target], variants: Sequence[Variant],
              sources: dict[str, str] | None = None) -> list[Candidate]:
    """The candidates of the selected entries and variants (`sources`: local ref -> the pipeline
    candidate to promote instead of pushing)."""
    return [Candidate(ref, t, v, (sources or {}).get(ref))
            for t in targets for v in variants if (ref := tags.local_ref(m, t, v))]


def build_date(labels: dict[str, str], ref: str) -> date:
    """The build day an image's created label records: its immutable tag is dated by it."""
    created = labels.get(label.CREATED, "")
    try:
        return datetime.fromisoformat(created).date()
    except ValueError:
        raise PublishError(f"{ref}: label {label.CREATED} is {created!r}, not "
                           "a date; was it built by `nox -s build`?") from None
