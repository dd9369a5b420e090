"""The manifest formats publishing reads and writes (skopeo moves them; infra.registry):

- image manifests and indexes (Docker manifest lists, OCI indexes over per-platform images):
  parsed into Manifest, and an index's bytes written by index_bytes;
- OCI artifacts as cosign stores them (signatures, attestations): layers of any media type
  under an image manifest whose config lists them, written as an OCI image layout
  (Session.put_artifact)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ArtifactLayer:
    """One layer of an OCI artifact (cosign's signatures and attestations are such)."""

    media_type: str
    data: bytes = field(repr=False)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class Manifest:
    """An image manifest, or an image index (Docker manifest list / OCI index) over several."""

    digest: str          # sha256 of the manifest bytes: what a tag points at
    config_digest: str   # the image ID the engine shows ("" for an index)
    layers: list[str]
    raw: bytes = field(repr=False)
    media_type: str = ""
    # An index's images: platform (`linux/arm64`) -> manifest digest; empty for an image.
    platforms: dict[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
# The index type that goes with its images' manifest type (Docker's with Docker's).
INDEX_FOR = {DOCKER_MANIFEST: DOCKER_LIST, OCI_MANIFEST: OCI_INDEX}


def parse_manifest(raw: bytes) -> Manifest:
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    try:
        data = json.loads(raw)
        media_type = str(data.get("mediaType") or "")
        if media_type in INDEX_TYPES or (not media_type and "manifests" in data):
            platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}": str(m["digest"])
                         for m in data["manifests"]}
            return Manifest(digest, "", [], raw, media_type or OCI_INDEX, platforms)
        config = str(data["config"]["digest"])
        layers = [str(layer["digest"]) for layer in data["layers"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError("a manifest that is neither a Docker/OCI image manifest nor an index "
                         "of them") from None
    return Manifest(digest, config, layers, raw, media_type or OCI_MANIFEST)


def index_bytes(media_type: str, images: Mapping[str, Manifest]) -> bytes:
    """The index over `images` (platform -> manifest), in the given order: the same images
    give the same bytes, so a rerun writes the same digest."""
    manifests = []
    for platform, image in images.items():
        os_name, _, arch = platform.partition("/")
        manifests.append({"mediaType": image.media_type, "size": len(image.raw),
                          "digest": image.digest,
                          "platform": {"architecture": arch, "os": os_name}})
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests},
                      separators=(",", ":")).encode()



def layout(directory: Path, layers: Sequence[ArtifactLayer], name: str) -> str:
    """Write an OCI image layout holding one artifact manifest of `layers` (its config lists
    them, as cosign's does); returns the manifest's digest."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def blob(data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"size": len(data), "digest": f"sha256:{digest}"}

    config = json.dumps({"architecture": "", "os": "", "config": {},
                         "rootfs": {"type": "layers",
                                    "diff_ids": [layer.digest for layer in layers]}},
                        separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **blob(config)},
        "layers": [{"mediaType": layer.media_type, **blob(layer.data),
                    **({"annotations": layer.annotations} if layer.annotations else {})}
                   for layer in layers],
    }, separators=(",", ":")).encode()
    described = blob(manifest)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (directory / "index.json").write_text(json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_MANIFEST, **described,
                       "annotations": {"org.opencontainers.image.ref.name": name}}]}))
    return str(described["digest"])
