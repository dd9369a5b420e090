"""Build hygiene: a warm rebuild reuses every layer, and no key material is left in the image."""

from __future__ import annotations

from datetime import date
from typing import Any

from conftest import MATRIX, Image

from pybase import engine, images


def test_warm_rebuild_reuses_every_layer(image: Image) -> None:
    # Same commit, same build day: if any step re-ran, its new layer would change the image id.
    before = image.inspect()
    created = before["Config"]["Labels"]["org.opencontainers.image.created"]
    built_on = date.fromisoformat(created[:10])
    images.build(MATRIX, image.target, image.variant, build_date=built_on, quiet=True)
    assert engine.image_id(image.ref) == before["Id"]


def test_no_private_keys_in_the_filesystem(root_host: Any) -> None:
    found = root_host.run(
        "grep -rlsI --exclude-dir=proc --exclude-dir=sys -e 'PRIVATE KEY-----' "
        "/etc /root /home /opt /app /usr/local /tmp /var"
    )
    assert found.stdout.strip() == ""
