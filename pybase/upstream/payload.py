"""The OS-upgrade payload: what the images' `apt-get upgrade` layer adds on top of their base.

Every fix published since the Debian base was made lands in that layer, once per image. It stays
small while the base is fresh; when it outgrows versions.yaml's `debian.rebootstrap_payload_mb`,
`nox -s bootstrap` makes the base again from today's archive (pybase.upstream.debian_base), which moves
those bytes into the shared base layer and empties the upgrade layer. `nox -s bench` reports the
payload per image (the same layer, found by the same Dockerfile step).
"""

from __future__ import annotations

from pybase.core import label, tags
from pybase.core.matrix import Matrix, Target
from pybase.infra import engine

MB = 1_000_000
# What names the step in an image's history (images/python-base/Dockerfile); the bench's layer
# attribution (pybase.bench.sizes) finds the same layer by it.
UPGRADE_STEP = "apt-get upgrade"


def upgrade_payload(ref: str) -> int | None:
    """Bytes (uncompressed) of the OS-upgrade layer of a local image; None when it is missing."""
    if engine.image_id(ref) is None:
        return None
    history = engine.docker("image", "history", "--no-trunc", "--human=false",
                            "--format", "{{.Size}}\t{{.CreatedBy}}", ref, capture=True).stdout
    return sum(int(size) for size, _, created_by in
               (line.partition("\t") for line in history.splitlines() if line)
               if UPGRADE_STEP in created_by)


def stale_bases(matrix: Matrix, targets: list[Target]) -> dict[str, str]:
    """Debian base (`debian:<release>-slim`, per platform) -> why it must be made again: the
    runtime image built on the current python:<v>-slim-<release> carries an upgrade payload
    above the limit."""
    limit = matrix.debian.rebootstrap_payload_mb
    reasons: dict[str, str] = {}
    for target in targets:
        ref = tags.local_ref(matrix, target, "runtime")
        labels = engine.image_labels(ref) or {}
        if labels.get(label.BASE_DIGEST) != engine.image_id(target.upstream_image):
            continue  # built on an earlier upstream image: says nothing about today's base
        size = upgrade_payload(ref)
        if size is not None and size > limit * MB and target.debian_image not in reasons:
            reasons[target.debian_image] = (
                f"the OS-upgrade layer of {ref} adds {size / MB:.1f} MB, more than "
                f"versions.yaml's debian.rebootstrap_payload_mb ({limit} MB)")
    return reasons
