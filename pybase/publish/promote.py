"""Every registry write of a publish: the immutable dated tag (never overwritten), then the
rolling tags, each checked against what the registry stores afterwards."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from pybase.core import tags
from pybase.core.matrix import Matrix
from pybase.infra import registry
from pybase.publish import Candidate, PublishError

MAX_SAME_DAY = 99

Hook = Callable[[str], None]  # called after each registry write: "immutable", "rolling:<tag>"


@dataclass
class Promoter:
    """Writes to one repository. Its tags are read once, when it is made (the first contact:
    a registry that is down or refuses the credentials fails there), and kept up to date with
    what it writes."""

    matrix: Matrix
    session: registry.Session
    echo: Callable[[str], None] = print
    after_write: Hook = lambda step: None
    known: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.known = set(self.session.tags())

    @property
    def repository(self) -> registry.Repository:
        return self.session.repository

    def write_immutable(self, c: Candidate, image_id: str, built_on: date) -> tuple[str, str]:
        """Write the dated tag (or find this image already under it); verify that what the
        registry stores is this image. (tag, manifest digest)."""
        for serial in range(MAX_SAME_DAY + 1):
            tag = tags.immutable_tag(c.target, c.variant, built_on,
                                     self.matrix.tags.date_format, serial)
            existing = self.session.manifest(tag) if tag in self.known else None
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
                found = (f"{stored.digest[:19]} / {stored.config_digest[:19]}" if stored
                         else "nothing")
                raise PublishError(
                    f"registry {self.repository.host}: {tag} does not hold image {image_id[:19]} "
                    f"at {digest[:19]} after the push (found {found})")
            self.known.add(tag)
            self.after_write("immutable")
            return tag, digest
        raise PublishError(f"{c.ref}: {MAX_SAME_DAY} same-day immutable tags exist already")

    def move_rolling(self, rolling: Sequence[str], digest: str) -> dict[str, str]:
        """Point every rolling tag at `digest`, the reference tag (rolling[0]) last."""
        moved = {}
        for tag in [*rolling[1:], *rolling[:1]]:
            self.session.copy(self.repository.digest(digest), tag)
            stored = self.session.manifest(tag)
            if stored is None or stored.digest != digest:
                raise PublishError(f"registry {self.repository.host}: {tag} does not point at "
                                   f"{digest[:19]} after moving it")
            self.known.add(tag)
            moved[tag] = digest
            self.after_write(f"rolling:{tag}")
        return moved

    def immutable_of(self, c: Candidate, digest: str, tries: int = 10) -> str:
        """The newest immutable tag of this entry and variant that holds `digest` (else the
        digest reference itself)."""
        mine = [(parsed.built_on, parsed.serial, tag) for tag in self.known
                if (parsed := tags.parse_immutable(self.matrix, tag))
                and parsed.target.key == c.target.key and parsed.variant == c.variant]
        for _, _, tag in sorted(mine, reverse=True)[:tries]:
            found = self.session.manifest(tag)
            if found is not None and found.digest == digest:
                return tag
        return self.repository.digest(digest)
