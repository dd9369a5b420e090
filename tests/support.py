"""Helpers the image and integration tests share (fixtures and hooks live in conftest.py)."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pybase.core import matrix, tags
from pybase.infra import emulation, engine

MATRIX = matrix.load()
APP_UID = 10001
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class Image:
    target: matrix.Target
    variant: matrix.Variant
    ref: str

    def __hash__(self) -> int:
        # The Target holds lists, so the generated hash would fail. pytest groups the tests of one
        # session-scoped parameter by value when it is hashable (one container per image, even
        # though tests of different variants are parametrized with different lists of images).
        return hash(self.ref)

    @property
    def id(self) -> str:
        return tags.local_tag(self.target, self.variant)

    def inspect(self) -> dict[str, Any]:
        result = docker("image", "inspect", self.ref, check=False)
        if result.returncode != 0:
            pytest.fail(f"image {self.ref} is missing: run `nox -s build` first", pytrace=False)
        data: dict[str, Any] = json.loads(result.stdout)[0]
        return data


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """pybase's docker call with output captured; a failure shows the command's stderr."""
    result = engine.docker(*args, capture=True, check=False, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:4])} -> {result.returncode}\n"
                             f"{result.stderr[-2000:]}")
    return result


def patience(image: Image) -> float:
    """How much longer to wait for a container of this image: an emulated platform runs
    every program under qemu-user, and a Python start there takes seconds."""
    return 1.0 if emulation.is_native(image.target.arch) else 5.0


def emulated(image: Image) -> list[str]:
    """`docker run` options for a container of this image: for an emulated platform, the CPU
    model qemu-user should emulate (emulation.QEMU_CPU: without it, trixie's arm64 images run
    some 13x slower); nothing for the engine's own platform."""
    return emulation.run_options(image.target.platform)


def build_ca() -> Path | None:
    """The site CA bundle for pip in builds and containers: PYTHON_BASE_BUILD_CA, else the
    host's bundle."""
    named = os.environ.get("PYTHON_BASE_BUILD_CA")
    if named:
        return Path(named)
    return HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None


def selected_images(config: pytest.Config) -> list[Image]:
    targets = MATRIX.targets(only=config.getoption("only"))
    return [
        Image(t, variant, tags.local_ref(MATRIX, t, variant))
        for t in targets for variant in MATRIX.variants
    ]


def pyc_written(ref: str, commands: str) -> str:
    """The .pyc files that `commands` (sh) write in a container of `ref` run as root with
    nothing read-only, one path a line: empty when every module they import was compiled."""
    script = f"touch /tmp/mark; {commands}; find / -xdev -name '*.pyc' -newer /tmp/mark -print"
    return docker("run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "sh",
                  ref, "-c", script).stdout.strip()


EMULATED_CHOICES = ("every entry", "first entry")


def on_platforms(images: list[Image], emulated_entries: str | None) -> list[Image]:
    """The images a test runs on, by its `every_platform` marker: None (no marker) keeps the
    engine's own platform; "every entry" keeps every image; "first entry" keeps the engine's
    own platform and, of each emulated platform, its first entry in versions.yaml."""
    if emulated_entries is None:
        return [i for i in images if emulation.is_native(i.target.arch)]
    if emulated_entries not in EMULATED_CHOICES:
        raise ValueError(f"every_platform(emulated=...) takes one of {EMULATED_CHOICES}; "
                         f"got {emulated_entries!r}")
    if emulated_entries == "every entry":
        return images
    first: dict[str, str] = {}  # platform -> its first entry's key
    for i in images:
        first.setdefault(i.target.platform, i.target.key)
    return [i for i in images
            if emulation.is_native(i.target.arch) or first[i.target.platform] == i.target.key]


@contextlib.contextmanager
def detached(*run_args: str) -> Iterator[str]:
    """`docker run -d` with the given arguments; the container is removed however the test ends."""
    name = f"pybase-test-{uuid.uuid4().hex[:10]}"
    docker("run", "-d", "--name", name, *run_args)
    try:
        yield name
    finally:
        docker("rm", "-f", name, check=False)


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll until predicate() holds; fail after a bounded wait."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}", pytrace=False)


def health(container: str) -> str:
    result = docker("inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                    container, check=False)
    return result.stdout.strip()


def published_port(container: str, port: int) -> int:
    """The 127.0.0.1 port Docker published for a container port."""
    address = docker("port", container, str(port)).stdout.split()[0]
    host, _, number = address.rpartition(":")
    assert host == "127.0.0.1", address
    return int(number)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (closed again at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a pending Debian fix, made here ---------------------------------------------------------
# The audit's and check's "a fix is due" case must not depend on what the archive offers today
# (a point release can fold every pending fix into the release itself). So the tests make it:
# a local `file:` apt repository, baked into a derived image, serves a newer version of an
# installed package in the release's -security suite, and apt inside the image really reads it.

PENDING_FIX_PACKAGE = "tzdata"  # in every slim image, Architecture: all
PENDING_FIX_REPO = "/srv/pybase-pending-fix"


def write_apt_repository(root: Path, suite: str, arch: str, packages: dict[str, str]) -> None:
    """A minimal apt repository under `root` whose `suite` offers `packages` (name: version,
    Architecture: all) to a machine of architecture `arch`.

    Index entries only: apt reads them for `apt-cache policy`; nothing is ever downloaded."""
    index = root / "dists" / suite / "main" / f"binary-{arch}"
    index.mkdir(parents=True)
    text = "".join(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: pybase tests <tests@invalid>\nInstalled-Size: 1\n"
        f"Filename: pool/{name}_{version}_all.deb\nSize: 1\nSHA256: {'0' * 64}\n"
        "Description: a newer version made by the tests\n\n"
        for name, version in packages.items())
    (index / "Packages").write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    (root / "dists" / suite / "Release").write_text(
        f"Origin: pybase-test\nLabel: pybase-test\nSuite: {suite}\nCodename: {suite}\n"
        f"Date: {email.utils.formatdate(usegmt=True)}\nArchitectures: {arch}\n"
        f"Components: main\nSHA256:\n {digest} {len(text)} main/binary-{arch}/Packages\n")


@dataclass(frozen=True)
class PendingFix:
    ref: str            # the derived image
    base: Image         # the runtime image it derives from
    package: str
    installed: str      # the version in the image
    candidate: str      # the newer one its -security suite offers
    suite: str


def default_runtime_image(config: pytest.Config) -> Image:
    """The selected runtime image of the default release on the primary platform (else of the
    first selected entry that comes nearest)."""
    targets = MATRIX.targets(only=config.getoption("only"))
    if not targets:
        pytest.fail("no matrix entry selected", pytrace=False)
    target = min(targets, key=lambda t: (not t.is_default_release, not t.is_primary_platform))
    image = Image(target, "runtime", tags.local_ref(MATRIX, target, "runtime"))
    image.inspect()  # missing: fails, saying to build
    return image
