"""When bootstrap makes a Debian base again because the OS-upgrade layer grew (pybase.upstream.payload);
the engine is replaced by a table of images."""

from __future__ import annotations

import pytest

from pybase.core import label, matrix, tags
from pybase.infra import engine
from pybase.upstream import payload

MATRIX = matrix.load()
TARGETS = MATRIX.targets()
MB = payload.MB


def fake_engine(monkeypatch: pytest.MonkeyPatch, images: dict[str, tuple[str, dict[str, str]]],
                history: dict[str, str]) -> None:
    """images: ref -> (id, labels); history: ref -> `docker image history` output."""
    monkeypatch.setattr(engine, "image_id", lambda ref: images[ref][0] if ref in images else None)
    monkeypatch.setattr(engine, "image_labels",
                        lambda ref: images[ref][1] if ref in images else None)

    class Done:
        def __init__(self, stdout: str) -> None:
            self.stdout = stdout

    monkeypatch.setattr(engine, "docker", lambda *args, **_: Done(history[args[-1]]))


def history(upgrade_bytes: int) -> str:
    return "\n".join([
        "52\tCOPY sbom.cdx.json /usr/share/python-base/sbom.cdx.json # buildkit",
        (f"{upgrade_bytes}\tRUN |1 OS_UPGRADE_STAMP=20261125 /bin/sh -c set -eux; apt-get update; "
        "apt-get upgrade -y; rm -rf /var/lib/apt/lists/*"),
        "1750000\tRUN /bin/sh -c set -eux; apt-get install -y --no-install-recommends tini",
        "0\tCMD [\"python3\"]",
    ])


def images_for(payloads: dict[str, int], built_on_current: bool = True
               ) -> tuple[dict[str, tuple[str, dict[str, str]]], dict[str, str]]:
    images: dict[str, tuple[str, dict[str, str]]] = {}
    found_history = {}
    for target in TARGETS:
        images[target.upstream_image] = (f"sha256:up-{target.name}", {})
        ref = tags.local_ref(MATRIX, target, "runtime")
        base = f"sha256:up-{target.name}" if built_on_current else "sha256:older"
        images[ref] = (f"sha256:img-{target.name}", {label.BASE_DIGEST: base})
        found_history[ref] = history(payloads.get(target.debian_image, 0))
    return images, found_history


def test_upgrade_payload_sums_the_upgrade_step_only(monkeypatch: pytest.MonkeyPatch) -> None:
    images, found = images_for({"debian:bookworm-slim": 3_400_000})
    fake_engine(monkeypatch, images, found)
    ref = tags.local_ref(MATRIX, TARGETS[0], "runtime")
    assert payload.upgrade_payload(ref) == (
        3_400_000 if TARGETS[0].debian_image == "debian:bookworm-slim" else 0)
    assert payload.upgrade_payload("missing:image") is None


def test_a_payload_over_the_limit_makes_that_base_again(monkeypatch: pytest.MonkeyPatch) -> None:
    limit = MATRIX.debian.rebootstrap_payload_mb
    images, found = images_for({"debian:bookworm-slim-arm64": limit * MB + 1,
                                "debian:trixie-slim": limit * MB})
    fake_engine(monkeypatch, images, found)
    stale = payload.stale_bases(MATRIX, TARGETS)
    # Per platform: trixie's amd64 base is at the limit, not over it.
    assert set(stale) == {"debian:bookworm-slim-arm64"}
    reason = stale["debian:bookworm-slim-arm64"]
    assert f"more than versions.yaml's debian.rebootstrap_payload_mb ({limit} MB)" in reason
    assert f"adds {(limit * MB + 1) / MB:.1f} MB" in reason


def test_images_built_on_an_earlier_upstream_say_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    images, found = images_for({t.debian_image: 500 * MB for t in TARGETS}, built_on_current=False)
    fake_engine(monkeypatch, images, found)
    assert payload.stale_bases(MATRIX, TARGETS) == {}


def test_no_built_image_means_nothing_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_engine(monkeypatch, {}, {})
    assert payload.stale_bases(MATRIX, TARGETS) == {}
