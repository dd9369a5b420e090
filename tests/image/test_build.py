"""Build hygiene: a warm rebuild reuses every layer, no layer stores a file twice, and no key
material is left in the image."""

from __future__ import annotations

import os
from datetime import date
from typing import Any

import pytest
from support import MATRIX, Image, docker

from pybase.build import images, sbom
from pybase.infra import engine

# What the final stage may add beyond its two files (build-info.json, the SBOM): directory
# entries and tar headers.
FINAL_STAGE_SLACK = 16 * 1024
PULLED_ENV = "PYTHON_BASE_CANDIDATES_PULLED"


@pytest.mark.skipif(
    bool(os.environ.get(PULLED_ENV)),
    reason=f"${PULLED_ENV}: the images were pulled from the pipeline's candidates, so this "
           "runner has no build cache; the GitLab build job runs this test where it built them")
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


def history(ref: str) -> list[tuple[str, int]]:
    """(step, layer size in bytes) of every step, oldest first."""
    out = docker("history", "--no-trunc", "--human=false", "--format",
                 "{{.CreatedBy}}\t{{.Size}}", ref).stdout
    rows = [line.rsplit("\t", 1) for line in out.splitlines() if line.strip()]
    return [(step, int(size)) for step, size in reversed(rows)]


def test_the_final_stage_stores_no_file_twice(image: Image) -> None:
    # A layer that only changes modes (the old setuid strip) holds a full copy of every file it
    # touches: after the last package install, only new files may be added.
    steps = history(image.ref)
    installs = [i for i, (step, _) in enumerate(steps)
                if "apt-get install" in step or "apt-get upgrade" in step or "pip install" in step]
    assert installs, steps
    after = [(step, size) for step, size in steps[installs[-1] + 1:] if size > 0]
    assert not [step for step, _ in steps if "chmod ug-s" in step and "apt-get" not in step]
    new_files = sum(len(docker("run", "--rm", "--entrypoint", "cat", image.ref, path).stdout
                        .encode()) for path in (sbom.SBOM_PATH_IN_IMAGE,
                                                "/usr/local/share/python-base/build-info.json"))
    assert sum(size for _, size in after) <= new_files + FINAL_STAGE_SLACK, after


def test_the_upstream_base_ships_no_setuid_files(runtime_image: Image) -> None:
    # Cleared where the files arrive (the bootstrap), so no later layer pays for a copy of them.
    found = docker("run", "--rm", "--user", "0", "--entrypoint", "find",
                   runtime_image.target.upstream_image, "/", "-xdev", "-type", "f", "-perm", "/6000")
    assert found.stdout == ""
