"""Every registry write of a publish: the immutable dated tag (never overwritten; with several
platforms, each platform's image under `<tag>-<arch>` and the index over them), then the rolling
tags, each checked against what the registry stores afterwards."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from pybase.core import tags
from pybase.core.matrix import Matrix
from pybase.infra import oci, registry
from pybase.publish import Candidate, Group, PublishError

MAX_SAME_DAY = 99

# Called after each registry write: "image:<arch>" (an index's images), "immutable",
# "rolling:<tag>".
Hook = Callable[[str], None]


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

    def write_immutable(self, group: Group, image_ids: Mapping[str, str],
                        built_on: date) -> tuple[str, str, dict[str, str]]:
        """Write the group's dated tag (or find it written already) and verify what the
        registry stores: the image itself for one platform; for several, each platform's image
        under `<tag>-<arch>` first, then the index over them under the tag. Returns (tag, its
        digest, {platform: image digest} of an index)."""
        c = group.first
        for serial in range(MAX_SAME_DAY + 1):
            tag = tags.immutable_tag(c.target, c.variant, built_on,
                                     self.matrix.tags.date_format, serial)
            if not group.is_index:
                digest = self._write_image(c, image_ids[c.target.platform], tag)
                if digest is None:
                    continue  # another image owns this tag for good
                self.after_write("immutable")
                return tag, digest, {}
            existing = self.session.manifest(tag) if tag in self.known else None
            if existing is not None:
                if not self._holds(existing, image_ids):
                    continue
                self.echo(f"publish: {c.ref}: {tag} already holds these images")
                return tag, existing.digest, existing.platforms
            images: dict[str, oci.Manifest] = {}
            for member in group.members:
                platform = member.target.platform
                digest = self._write_image(member, image_ids[platform],
                                           f"{tag}-{member.target.arch}")
                stored = self.session.manifest(digest) if digest else None
                if stored is None:
                    break  # that platform's tag belongs to another image: next serial
                images[platform] = stored
                self.after_write(f"image:{member.target.arch}")
            else:
                index = self.session.put_index(tag, images)
                self.known.add(tag)
                self.after_write("immutable")
                return tag, index, {p: m.digest for p, m in images.items()}
        raise PublishError(f"{c.ref}: {MAX_SAME_DAY} same-day immutable tags exist already")

    def _write_image(self, c: Candidate, image_id: str, tag: str) -> str | None:
        """Put one image under `tag` (never over another image) and check what the registry
        stores; its manifest digest, or None when the tag holds another image."""
        existing = self.session.manifest(tag) if tag in self.known else None
        if existing is not None and existing.config_digest != image_id:
            return None
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
        return digest

    def _holds(self, index: oci.Manifest, image_ids: Mapping[str, str]) -> bool:
        """Whether an index serves exactly these images (platform -> image ID)."""
        if set(index.platforms) != set(image_ids):
            return False
        for platform, digest in index.platforms.items():
            image = self.session.manifest(digest)
            if image is None or image.config_digest != image_ids[platform]:
                return False
        return True

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
