"""`debian:<release>-slim`, made here from the Debian archive, reproducibly.

A minbase rootfs by mmdebstrap, slimmed with the same dpkg path-excludes and apt settings as the
official slim images (debuerreotype's own scripts). Every timestamp is clamped to one epoch taken
from the archive, not from the clock: the newest `Date:` of the Release files of the three suites
used (`<release>`, `-updates`, `-security`). The image is loaded from an archive written here
(one layer, a config whose `created` is that epoch), so the same archive state gives the same
layer diff ID and the same image ID.

When a base is made again:
- its recipe (the mmdebstrap command line, our hooks included) changed;
- `refresh`: the archive moved since the base was made (its `org.python-base.archive` label);
- `reason`: the caller forces it, e.g. the OS-upgrade layer of the images built on it outgrew
  versions.yaml's `debian.rebootstrap_payload_mb`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pybase import upstream
from pybase.core import label, paths
from pybase.infra import emulation, engine, host
from pybase.upstream import Outcome, UpstreamError, cpython_source, debian_archive
from pybase.upstream.debian_archive import DEBIAN_KEYRING, Mirrors, host_mirrors

SLIM_HOOKS = "/usr/share/mmdebstrap/hooks/maybe-merged-usr"
# What the official debian images set; BuildKit would use the same default for an empty PATH.
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def suites(release: str) -> tuple[str, str, str]:
    return release, f"{release}-updates", f"{release}-security"


@dataclass(frozen=True)
class ArchiveState:
    """The Release date of each suite a base is made from."""

    dates: dict[str, int]  # suite -> Release `Date:`, seconds since the epoch

    @property
    def epoch(self) -> int:
        """SOURCE_DATE_EPOCH: the newest Release date, so no file is stamped after the archive."""
        return max(self.dates.values())

    @property
    def label(self) -> str:
        return " ".join(f"{suite}={iso(when)}" for suite, when in sorted(self.dates.items()))


def archive_state(release: str, mirrors: Mirrors) -> ArchiveState:
    archive, updates, security = suites(release)
    return ArchiveState(debian_archive.release_dates(
        [(mirrors.archive, archive), (mirrors.archive, updates), (mirrors.security, security)]))


def debian_recipe(release: str, mirrors: Mirrors, output: str, arch: str) -> list[str]:
    """The mmdebstrap command line; less the output path, it is also the image's identity.
    Another architecture than the machine's runs its maintainer scripts under emulation."""
    archive, updates, security = suites(release)
    return [
        "mmdebstrap", "--mode=root", "--variant=minbase", "--format=tar",
        f"--architectures={arch}",
        f"--hook-dir={SLIM_HOOKS}",
        # Never unpack what the slim image would delete anyway.
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        # debuerreotype's scripts read the epoch from the rootfs; give it ours, then remove it.
        '--customize-hook=echo "$SOURCE_DATE_EPOCH" > "$1/debuerreotype-epoch"',
        '--customize-hook=debuerreotype-minimizing-config "$1"',
        '--customize-hook=debuerreotype-slimify "$1"',
        # No setuid/setgid bits (passwd, su, mount, ...): the hardened images ship none, and a
        # chmod in any later layer would store a second copy of each file.
        """--customize-hook=find "$1" -xdev -type f -perm /6000 -exec chmod ug-s '{}' +""",
        '--customize-hook=rm -f "$1/debuerreotype-epoch" "$1"/var/cache/apt/*.bin',
        '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/log/apt/* "$1"/var/log/dpkg.log',
        '--customize-hook=: > "$1/etc/machine-id"',
        release,
        output,
        f"deb [signed-by={DEBIAN_KEYRING}] {mirrors.archive} {archive} main",
        f"deb [signed-by={DEBIAN_KEYRING}] {mirrors.archive} {updates} main",
        f"deb [signed-by={DEBIAN_KEYRING}] {mirrors.security} {security} main",
    ]


def recipe_digest(release: str, mirrors: Mirrors, arch: str) -> str:
    """The command line and the image config's fixed part (see load_image)."""
    return upstream.digest(*debian_recipe(release, mirrors, "-", arch), DEFAULT_PATH, "Cmd=bash")


def build_debian(release: str, *, arch: str, refresh: bool = False, reason: str = "",
                 ref: str | None = None) -> Outcome:
    """Make `debian:<release>-slim` (or `ref`) for `arch` unless an image of the same recipe
    may be kept."""
    started = time.monotonic()
    ref = ref or f"debian:{release}-slim"
    mirrors = host_mirrors()
    recipe = recipe_digest(release, mirrors, arch)
    labels = engine.image_labels(ref) or {}
    same_recipe = labels.get(label.RECIPE) == recipe
    if same_recipe and not reason and not refresh:
        return Outcome(ref, True, time.monotonic() - started, "same recipe")
    state = archive_state(release, mirrors)
    if same_recipe and not reason and labels.get(label.ARCHIVE) == state.label:
        return Outcome(ref, True, time.monotonic() - started, f"archive unchanged: {state.label}")
    why = reason or ("new recipe" if not same_recipe else
                     f"archive moved: {labels.get(label.ARCHIVE, 'unknown')} -> {state.label}")
    mmdebstrap = host.program("mmdebstrap")
    # mmdebstrap and its hooks start these: say which package is missing before it runs.
    host.program("debuerreotype-minimizing-config")
    host.program("debuerreotype-slimify")
    if not emulation.is_native(arch):
        host.program("arch-test")
        emulation.ensure([arch])
    with tempfile.TemporaryDirectory(prefix=f"debian-{release}-", dir=paths.cache_dir()) as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        engine.run([mmdebstrap, *debian_recipe(release, mirrors, str(rootfs), arch)[1:]],
                   what=f"mmdebstrap {release} ({arch})",
                   env={**os.environ, "SOURCE_DATE_EPOCH": str(state.epoch),
                        **emulation.environment(arch)},  # the CPU qemu emulates for the chroot
                   error=UpstreamError)
        load_image(rootfs, ref, created=state.epoch, labels={
            label.RECIPE: recipe,
            label.ARCHIVE: state.label,
            label.CREATED: iso(state.epoch),
            label.TITLE: f"debian:{release}-slim",
        }, created_by=f"mmdebstrap --variant=minbase {release} (pybase, recipe {recipe})",
            scratch=Path(tmp), architecture=arch)
    return Outcome(ref, False, time.monotonic() - started, why)


def load_image(rootfs: Path, ref: str, *, created: int, labels: dict[str, str],
               created_by: str, scratch: Path, architecture: str) -> str:
    """Load a one-layer image into the engine, its config written here so that nothing in it
    depends on when it was made (`docker import` stamps the import time). Returns the image ID."""
    archive = scratch / "image.tar"
    image_id = write_image_archive(rootfs, archive, ref, created=created, labels=labels,
                                   created_by=created_by, architecture=architecture)
    engine.docker("load", "--input", str(archive), capture=True)
    found = engine.image_id(ref)
    if found != image_id:
        raise UpstreamError(f"docker load of {ref}: the engine reports image {found}, the "
                            f"archive holds {image_id}")
    return image_id


def write_image_archive(rootfs: Path, archive: Path, ref: str, *, created: int,
                        labels: dict[str, str], created_by: str, architecture: str) -> str:
    """The `docker save` layout that `docker load` reads (manifest, config, one layer tar).
    The image ID is the sha256 of the config, so equal inputs give equal IDs."""
    diff_id = "sha256:" + cpython_source.sha256_of(rootfs)
    config = {
        "architecture": architecture,
        "os": "linux",
        "created": iso(created),
        "config": {"Env": [DEFAULT_PATH], "Cmd": ["bash"], "Labels": dict(sorted(labels.items()))},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": iso(created), "created_by": created_by}],
    }
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    image_id = hashlib.sha256(blob).hexdigest()
    manifest = json.dumps([{"Config": f"{image_id}.json", "RepoTags": [ref],
                            "Layers": ["layer/layer.tar"]}]).encode()
    with tarfile.open(archive, "w") as out:
        for name, data in (("manifest.json", manifest), (f"{image_id}.json", blob)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), created
            out.addfile(info, io.BytesIO(data))
        out.add(rootfs, arcname="layer/layer.tar")
    return f"sha256:{image_id}"


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
