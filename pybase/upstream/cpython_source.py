"""CPython's source tarball: found locally, in our cache, at python.org or in Debian's source
archive, and verified against versions.yaml before any use."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from pybase.core import paths, settings
from pybase.core.matrix import PythonEntry
from pybase.upstream import UpstreamError, debian_archive


def cached(entry: PythonEntry) -> Path:
    """Where a verified Python-<version>.tar.xz is kept between runs."""
    path = paths.cache_dir() / "sources" / f"Python-{entry.version}.tar.xz"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def source_tarball(entry: PythonEntry, source_dir: Path | None = None) -> Path:
    """Python-<version>.tar.xz, verified against versions.yaml, from the first place that has it.

    Looked for, in order: a local source directory (PYTHON_BASE_SOURCE_DIR), our cache of earlier
    verified downloads, then download(): python.org and the Debian source archive.
    """
    name = f"Python-{entry.version}.tar.xz"
    tried: list[str] = []
    configured = settings.get(settings.SOURCE_DIR)
    local_dir = source_dir or (Path(configured) if configured else None)
    if local_dir is not None:
        debian_name = f"python{entry.minor}_{entry.version}.orig.tar.xz"
        for candidate in (local_dir / name, local_dir / debian_name):
            if candidate.is_file():
                _verify(entry, candidate)
                return candidate
        tried.append(f"{local_dir}/{{{name},{debian_name}}} (not there)")
    kept = cached(entry)
    if kept.is_file():
        _verify(entry, kept)
        return kept
    tried.append(f"{kept} (not cached)")
    return download(entry, tried=tried)


def download(entry: PythonEntry, *, python_org: bool = True,
             apt: debian_archive.AptSources | None = None,
             debian_versions: Sequence[str] | None = None, tried: Sequence[str] = ()) -> Path:
    """Fetch the tarball into the cache, verified against `entry.sha256`: python.org (unless
    told not to), else Debian's pristine orig tarball (`debian_versions` of the source package,
    default: every one of that upstream version in the indices; `apt`: sources already open).
    A tarball with another sha256 is never kept; the error lists every place tried and why."""
    target = cached(entry)
    problems = list(tried)
    fetchers: list[Callable[[PythonEntry, Path], None]] = [_fetch_python_org] if python_org else []
    fetchers.append(functools.partial(_fetch_debian_orig, apt=apt, versions=debian_versions))
    for fetch in fetchers:
        partial = target.with_suffix(".part")
        try:
            fetch(entry, partial)
            _verify(entry, partial)
        except UpstreamError as exc:
            problems.append(str(exc))
            partial.unlink(missing_ok=True)
            continue
        partial.replace(target)
        return target
    raise UpstreamError(
        f"no source for Python {entry.version} (expected sha256 {entry.sha256}). Looked in:\n  "
        + "\n  ".join(problems)
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


def _fetch_debian_orig(entry: PythonEntry, out: Path, *,
                       apt: debian_archive.AptSources | None = None,
                       versions: Sequence[str] | None = None) -> None:
    """The pristine orig tarball of Debian's pythonX.Y source package, through apt with a
    private configuration (pybase.upstream.debian_archive): the host's apt setup is neither
    needed nor touched."""
    package = f"python{entry.minor}"
    where = f"Debian source package {package} (upstream {entry.version})"
    try:
        with contextlib.ExitStack() as stack:
            if apt is None:
                apt = stack.enter_context(debian_archive.apt_sources(
                    debian_archive.deb_src_lines()))
            if versions is None:
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
