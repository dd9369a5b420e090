"""The host programs pybase and the tests start, the Debian packages that provide them, and which
nox session needs which: one list, read by the sessions (`pybase host SESSION`), by .ci/setup
(`python3 -m pybase.infra.host all`, before any venv exists) and so by the GitLab jobs.

Every host program is named through `program()`, which refuses a name this list does not know;
tests/unit/test_nox_sessions.py reads those names from the code and fails when a session can
reach a program whose package that session does not install.

Standard library only (plus pybase.infra.engine, which is too), so that a bare `python3` can run it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Iterable, Sequence

from pybase.infra import engine

# Debian package -> the programs of it that pybase or the tests start by name.
PACKAGES: dict[str, tuple[str, ...]] = {
    "docker.io": ("docker", "dockerd"),
    "mmdebstrap": ("mmdebstrap",),
    "debuerreotype": ("debuerreotype-minimizing-config", "debuerreotype-slimify"),
    # Another architecture's images (arm64 here): the kernel starts qemu itself (binfmt_misc);
    # mmdebstrap wants arch-test to make a foreign Debian base.
    "qemu-user-static": ("qemu-aarch64-static",),
    "binfmt-support": ("update-binfmts",),
    "arch-test": ("arch-test",),
    "skopeo": ("skopeo",),
    "docker-registry": ("docker-registry",),
    "podman": ("podman",),
    # Rootless Podman's helpers: it starts them itself (user namespaces, its network, storage).
    "uidmap": ("newuidmap", "newgidmap"),
    "slirp4netns": ("slirp4netns",),
    "fuse-overlayfs": ("fuse-overlayfs",),
    "shellcheck": ("shellcheck",),
    "openssl": ("openssl",),
    # On every Debian machine that has Python and git: listed so that every program has a home.
    "apt": ("apt-get", "apt-cache"),
    "dpkg": ("dpkg", "dpkg-query"),
    "coreutils": ("id", "env"),
    "util-linux": ("setpriv", "runuser"),
    "mount": ("mount",),
    "passwd": ("useradd", "usermod"),
    "dash": ("dash", "sh"),
    "bash": ("bash",),
    "git": ("git",),
}
PRESENT = ("apt", "dpkg", "coreutils", "util-linux", "mount", "passwd", "dash", "bash", "git")

# The engine, and what runs another platform's images on it.
ENGINE = ("docker.io", "qemu-user-static", "binfmt-support")
DEBIAN_BASE = ("mmdebstrap", "debuerreotype", "arch-test")
REGISTRY = ("skopeo", "docker-registry")
PODMAN = ("podman", "uidmap", "slirp4netns", "fuse-overlayfs")

# nox session -> the packages it needs beyond PRESENT. `test` exercises everything pybase does.
SESSIONS: dict[str, tuple[str, ...]] = {
    "engine": ENGINE,
    "bootstrap": (*ENGINE, *DEBIAN_BASE, "skopeo"),  # skopeo: the tree cache, when set
    "build": ENGINE,
    # Renovate's Node (the downstream-update tests) comes from PyPI with the test extra:
    # renovate@39 wants Node 20 or 22, and Debian 12 has 18, without npm.
    "test": (*ENGINE, *DEBIAN_BASE, *REGISTRY, *PODMAN, "shellcheck", "openssl"),
    "audit": ENGINE,
    "lint": (),
    # It times a refresh of the Debian base; its lever trees go through build_tree (skopeo).
    "bench": (*ENGINE, *DEBIAN_BASE, "skopeo"),
    "publish": (*ENGINE, *REGISTRY),  # docker-registry for `--local`
    "candidate": (*ENGINE, *REGISTRY),  # docker-registry for `--local`
    "pipeline": (),
    "check": (*ENGINE, *REGISTRY),  # `--published --local`
    "update": (),
    "signing-key": (),
    "verify": (*ENGINE, "skopeo"),
}

DESCRIPTION = "Install the Debian packages that nox sessions need (as root)."
INSTALL = ("apt-get", "install", "-y", "-q", "--no-install-recommends")


class HostError(engine.CommandError):
    """A host program or package is missing, or installing it failed."""


def package_of(name: str) -> str:
    """The Debian package that provides program `name`; a name not in the list is a bug."""
    for package, programs in PACKAGES.items():
        if name in programs:
            return package
    raise ValueError(f"host program {name!r} is not in pybase/infra/host.py PACKAGES: add it there, "
                     "with its Debian package, and to the sessions that run it")


def program(name: str) -> str:
    """The path of host program `name`, or a HostError naming its package and how to get it."""
    package = package_of(name)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise HostError(f"`{name}` is not installed: it comes from Debian's {package} package. "
                        f"Run the nox session as root (it installs what it needs), or "
                        f"{' '.join(INSTALL)} {package}")
    return found


def packages_for(sessions: Iterable[str]) -> list[str]:
    """The packages of these sessions (`all`: every session's), in list order."""
    wanted: set[str] = set()
    for session in sessions:
        if session == "all":
            wanted.update(*SESSIONS.values())
        elif session in SESSIONS:
            wanted.update(SESSIONS[session])
        else:
            raise HostError(f"no nox session {session!r}; sessions: {', '.join(SESSIONS)}, all")
    return [p for p in PACKAGES if p in wanted]


def installed(package: str) -> bool:
    result = engine.run([program("dpkg-query"), "-W", "-f=${Status}", package],
                        what="dpkg-query", check=False, error=HostError)
    return result.stdout.endswith(" installed")


def ensure(packages: Sequence[str], *, why: str) -> list[str]:
    """Install what is missing of `packages` (as root); the packages installed.

    Not root and something missing: a HostError naming the packages and the command."""
    missing = [p for p in packages if not installed(p)]
    if not missing:
        return []
    command = " ".join((*INSTALL, *missing))
    if os.geteuid() != 0:
        raise HostError(f"{why} needs the Debian packages {', '.join(missing)}, which are not "
                        f"installed; as root: apt-get update && {command} (or run it as root, "
                        "which installs them)")
    print(f"host: installing {' '.join(missing)} for {why}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt_get = program("apt-get")
    engine.run([apt_get, "update", "-q"], what="apt-get update", env=env, capture=False,
               error=HostError)
    engine.run([apt_get, *INSTALL[1:], *missing], what=command, env=env, capture=False,
               error=HostError)
    return missing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sessions", nargs="+", metavar="SESSION",
                        help=f"{', '.join(SESSIONS)} or all")
    parser.add_argument("--list", action="store_true",
                        help="print the packages, one per line; install nothing")


def command(args: argparse.Namespace) -> None:
    """`pybase host SESSION...`: install (or `--list`) what these sessions need."""
    packages = packages_for(args.sessions)
    if args.list:
        print("\n".join(packages))
    else:
        ensure(packages, why=f"`nox -s {' '.join(args.sessions)}`")


def main(argv: Sequence[str] | None = None) -> int:
    """`python3 -m pybase.infra.host`: the same as `pybase host`, before any venv exists."""
    parser = argparse.ArgumentParser(prog="python3 -m pybase.infra.host", description=DESCRIPTION)
    add_arguments(parser)
    try:
        command(parser.parse_args(argv))
    except HostError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
