"""OCI artifacts as cosign stores them (signatures, attestations): layers of any media type
under an image manifest whose config lists them, written as an OCI image layout that skopeo
copies to a registry (infra.registry.Session.put_artifact)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
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
