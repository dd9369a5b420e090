"""Produce the upstream images that a registry would otherwise provide.

- `debian:<release>-slim`: a minbase rootfs from the Debian archive by mmdebstrap, slimmed with the
  same dpkg path-excludes and apt settings as the official slim images (debuerreotype's own
  scripts), timestamps clamped to a fixed epoch, imported into the engine.
- `python:<version>-slim-<release>`: CPython compiled from its source tarball by
  images/python/Dockerfile, the tarball verified against versions.yaml before use.

Each image carries a `recipe` label, a digest of everything it was made from; an existing image
with the same recipe is reused, so re-running costs seconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pybase import debian_archive, engine, paths
from pybase.debian_archive import DEBIAN_KEYRING, Mirrors, host_mirrors
from pybase.matrix import PythonEntry, Target

PYTHON_DOCKERFILE = paths.REPO / "images" / "python" / "Dockerfile"
RECIPE_LABEL = "org.python-base.recipe"
SLIM_HOOKS = "/usr/share/mmdebstrap/hooks/maybe-merged-usr"


class UpstreamError(engine.CommandError):
    """An upstream image could not be produced; the message says which and why."""


def cache_dir() -> Path:
    path = paths.cache()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Outcome:
    image: str
    reused: bool
    seconds: float


# --------------------------------------------------------------------------------------------
# Debian
# --------------------------------------------------------------------------------------------


def debian_recipe(release: str, mirrors: Mirrors, output: str) -> list[str]:
    """The mmdebstrap command line; less the output path, it is also the image's identity."""
    return [
        "mmdebstrap", "--mode=root", "--variant=minbase", "--format=tar",
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
        f"deb [signed-by={DEBIAN_KEYRING}] {mirrors.archive} {release} main",
        f"deb [signed-by={DEBIAN_KEYRING}] {mirrors.archive} {release}-updates main",
        f"deb [signed-by={DEBIAN_KEYRING}] {mirrors.security} {release}-security main",
    ]


def build_debian(release: str, *, force: bool = False) -> Outcome:
    started = time.monotonic()
    ref = f"debian:{release}-slim"
    mirrors = host_mirrors()
    recipe = _digest(*debian_recipe(release, mirrors, "-"))
    if not force and (engine.image_labels(ref) or {}).get(RECIPE_LABEL) == recipe:
        return Outcome(ref, True, time.monotonic() - started)
    engine.install_debian_packages(["mmdebstrap", "debuerreotype"])
    # A fixed timestamp (midnight UTC of the build day) for every file newer than it.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    epoch = os.environ.get("SOURCE_DATE_EPOCH") or str(int(today.timestamp()))
    with tempfile.TemporaryDirectory(prefix=f"debian-{release}-", dir=cache_dir()) as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        engine.run(debian_recipe(release, mirrors, str(rootfs)), what=f"mmdebstrap {release}",
                   env={**os.environ, "SOURCE_DATE_EPOCH": epoch}, error=UpstreamError)
        created = datetime.fromtimestamp(int(epoch), UTC).isoformat().replace("+00:00", "Z")
        engine.docker(
            "import",
            "--change", 'CMD ["bash"]',
            "--change", f"LABEL {RECIPE_LABEL}={recipe}",
            "--change", f"LABEL org.opencontainers.image.created={created}",
            "--change", f"LABEL org.opencontainers.image.title=debian:{release}-slim",
            str(rootfs), ref, capture=True,
        )
    return Outcome(ref, False, time.monotonic() - started)


# --------------------------------------------------------------------------------------------
# CPython
# --------------------------------------------------------------------------------------------


def source_tarball(entry: PythonEntry, source_dir: Path | None = None) -> Path:
    """Python-<version>.tar.xz, verified against versions.yaml, from the first place that has it.

    Looked for, in order: a local source directory (PYTHON_BASE_SOURCE_DIR), our cache of earlier
    verified downloads, python.org, and the Debian source archive (pristine orig tarball).
    """
    name = f"Python-{entry.version}.tar.xz"
    cached = cache_dir() / "sources" / name
    cached.parent.mkdir(parents=True, exist_ok=True)
    tried: list[str] = []

    local_dir = source_dir or (Path(os.environ["PYTHON_BASE_SOURCE_DIR"])
                               if os.environ.get("PYTHON_BASE_SOURCE_DIR") else None)
    if local_dir is not None:
        debian_name = f"python{entry.minor}_{entry.version}.orig.tar.xz"
        for candidate in (local_dir / name, local_dir / debian_name):
            if candidate.is_file():
                _verify(entry, candidate)
                return candidate
        tried.append(f"{local_dir}/{{{name},{debian_name}}} (not there)")

    if cached.is_file():
        _verify(entry, cached)
        return cached
    tried.append(f"{cached} (not cached)")

    for fetch in (_fetch_python_org, _fetch_debian_orig):
        partial = cached.with_suffix(".part")
        try:
            fetch(entry, partial)
        except UpstreamError as exc:
            tried.append(str(exc))
            partial.unlink(missing_ok=True)
            continue
        _verify(entry, partial)
        partial.replace(cached)
        return cached
    raise UpstreamError(
        f"no source for Python {entry.version} (expected sha256 {entry.sha256}). Looked in:\n  "
        + "\n  ".join(tried)
        + f"\nPut Python-{entry.version}.tar.xz into PYTHON_BASE_SOURCE_DIR to build it offline."
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(entry: PythonEntry, path: Path) -> None:
    found = sha256_of(path)
    if found != entry.sha256:
        raise UpstreamError(
            f"{path}: sha256 {found} does not match versions.yaml's {entry.sha256} "
            f"for Python {entry.version}; refusing to build from it"
        )


def _fetch_python_org(entry: PythonEntry, out: Path) -> None:
    url = f"https://www.python.org/ftp/python/{entry.version}/Python-{entry.version}.tar.xz"
    try:
        with urllib.request.urlopen(url, timeout=20) as response, out.open("wb") as f:
            shutil.copyfileobj(response, f)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UpstreamError(f"{url} ({reason})") from None


def _fetch_debian_orig(entry: PythonEntry, out: Path) -> None:
    """The pristine orig tarball of Debian's pythonX.Y source package, through apt with a
    private configuration (pybase.debian_archive): the host's apt setup is neither needed nor
    touched."""
    package = f"python{entry.minor}"
    where = f"Debian source package {package} (upstream {entry.version})"
    try:
        with debian_archive.apt_sources(debian_archive.deb_src_lines()) as apt:
            versions = [v for v in re.findall(r"^Version: (\S+)$", apt.showsrc(package),
                                              re.MULTILINE)
                        if re.fullmatch(rf"(\d+:)?{re.escape(entry.version)}-[^-]+", v)]
            if not versions:
                raise UpstreamError(f"{where}: not in the Debian source indices")
            errors = []
            for version in versions:
                with tempfile.TemporaryDirectory(prefix="apt-src-", dir=out.parent) as tmp:
                    error = apt.download(package, version, Path(tmp))
                    orig = Path(tmp) / f"{package}_{entry.version}.orig.tar.xz"
                    if not error and orig.is_file():
                        shutil.move(orig, out)
                        return
                    errors.append(error or f"{package} {version}: no orig tarball downloaded")
    except debian_archive.DebianArchiveError as exc:
        raise UpstreamError(f"{where}: {exc}") from None
    raise UpstreamError(f"{where}: download failed: {'; '.join(errors)}")


def python_recipe(target: Target, debian_id: str, optimize: bool) -> str:
    return _digest(PYTHON_DOCKERFILE.read_text(encoding="utf-8"), target.python.version,
                   target.python.sha256, debian_id, str(optimize))


def build_python(target: Target, *, optimize: bool, force: bool = False) -> Outcome:
    started = time.monotonic()
    debian_id = engine.image_id(target.debian_image)
    if debian_id is None:
        raise UpstreamError(f"{target.debian_image} is missing; bootstrap builds it first")
    recipe = python_recipe(target, debian_id, optimize)
    if not force and (engine.image_labels(target.upstream_image) or {}).get(RECIPE_LABEL) == recipe:
        return Outcome(target.upstream_image, True, time.monotonic() - started)
    tarball = source_tarball(target.python)
    context = cache_dir() / "contexts" / f"python-{target.python.version}"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    os.link(tarball, context / "Python.tar.xz")
    engine.docker(
        "build", "--progress=plain",
        "-f", str(PYTHON_DOCKERFILE),
        "--build-arg", f"DEBIAN_IMAGE={target.debian_image}",
        "--build-arg", f"PYTHON_VERSION={target.python.version}",
        "--build-arg", f"PYTHON_SHA256={target.python.sha256}",
        "--build-arg", f"PYTHON_OPTIMIZE={int(optimize)}",
        "--label", f"{RECIPE_LABEL}={recipe}",
        "--label", f"org.opencontainers.image.version={target.python.version}",
        "--label", f"org.opencontainers.image.base.name={target.debian_image}",
        "--label", f"org.opencontainers.image.base.digest={debian_id}",
        "-t", target.upstream_image,
        str(context),
    )
    shutil.rmtree(context, ignore_errors=True)
    return Outcome(target.upstream_image, False, time.monotonic() - started)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
