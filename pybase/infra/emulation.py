"""Another architecture's programs on this machine: qemu-user, registered with binfmt_misc.

The images of a platform other than the engine's own (arm64 on an amd64 machine) get their Debian
base, their assembly, their build steps and their tests under emulation: every aarch64 program
started in them runs through qemu-aarch64-static. The kernel finds that interpreter through
binfmt_misc, registered with the F (fix-binary) flag, so the kernel opens it once at
registration and it also serves containers, whose filesystems do not have it. Debian's
qemu-user-static registers it that way (binfmt-support), but only where binfmt_misc is mounted,
which a machine without systemd may not do: as root, `ensure` mounts it and enables the entry.

Standard library only (plus engine and host), like host.py.
"""

from __future__ import annotations

import os
import platform as _platform
from collections.abc import Iterable
from pathlib import Path

from pybase.infra import engine, host

BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
# Docker's (and Debian's) architecture -> binfmt_misc's entry for it and the kernel's name.
ENTRIES = {"arm64": "qemu-aarch64", "amd64": "qemu-x86_64"}
MACHINES = {"x86_64": "amd64", "aarch64": "arm64"}
# The CPU model qemu-user emulates, by architecture. Its default for aarch64 ("max") has SVE,
# and trixie's glibc (2.41) then takes its SVE string and memory routines, which qemu 7.2 runs
# about 13 times slower than the NEON ones (measured here: a Python start and a short loop in
# the trixie arm64 image, 32 s against 2.5 s; bookworm's glibc 2.36 has no generic SVE routines
# and is fast either way). Neoverse N1 (Graviton2, Ampere Altra) is a common arm64 server CPU
# without SVE. qemu-user reads it from QEMU_CPU in the environment of the emulated program.
QEMU_CPU = {"arm64": "neoverse-n1"}


class EmulationError(engine.CommandError):
    """Another architecture's programs cannot run here; the message says what to do."""


def native_arch() -> str:
    """This machine's architecture, by Docker's name (the engine runs here)."""
    machine = _platform.machine()
    try:
        return MACHINES[machine]
    except KeyError:
        raise EmulationError(f"this machine is {machine}; pybase builds on "
                             f"{' or '.join(MACHINES)} only") from None


def is_native(arch: str) -> bool:
    return arch == native_arch()


def environment(arch: str) -> dict[str, str]:
    """What an emulated program of `arch` needs in its environment (a container's `--env`, a
    build's `--build-arg`, mmdebstrap's environment); nothing for the native architecture."""
    if is_native(arch) or arch not in QEMU_CPU:
        return {}
    return {"QEMU_CPU": QEMU_CPU[arch]}


def run_options(platform: str) -> list[str]:
    """`docker run` options for a container of an image of `platform` (`linux/arm64`)."""
    arch = platform.partition("/")[2] or platform
    return [f"--env={key}={value}" for key, value in environment(arch).items()]


def status(arch: str) -> str | None:
    """None when `arch` runs here (natively, or emulated with the F flag); else why not."""
    if is_native(arch):
        return None
    entry = BINFMT_MISC / ENTRIES[arch]
    if not (BINFMT_MISC / "register").exists():
        return f"binfmt_misc is not mounted at {BINFMT_MISC}"
    if not entry.exists():
        return f"no binfmt_misc entry {entry.name} (qemu-user-static registers it)"
    text = entry.read_text(encoding="utf-8")
    if not text.startswith("enabled"):
        return f"{entry} is disabled"
    flags = next((line.split(":", 1)[1] for line in text.splitlines()
                  if line.startswith("flags:")), "")
    if "F" not in flags:
        return (f"{entry} lacks the F (fix-binary) flag, so containers cannot find the "
                "interpreter")
    return None


def ensure(archs: Iterable[str]) -> list[str]:
    """Make every architecture in `archs` runnable here; the ones that are emulated.

    As root: mount binfmt_misc and enable qemu-user-static's entries. Not root: an error
    naming the commands."""
    emulated = sorted({a for a in archs if not is_native(a)})
    for arch in emulated:
        problem = status(arch)
        if problem is None:
            continue
        entry = ENTRIES[arch]
        if os.geteuid() != 0:
            raise EmulationError(
                f"{arch} images run under emulation here, but {problem}. As root: "
                f"mount -t binfmt_misc binfmt_misc {BINFMT_MISC} && update-binfmts --enable "
                f"{entry} (Debian's qemu-user-static and binfmt-support), or run the nox "
                "session as root")
        if not (BINFMT_MISC / "register").exists():
            engine.run([host.program("mount"), "-t", "binfmt_misc", "binfmt_misc",
                        str(BINFMT_MISC)], what="mount binfmt_misc", error=EmulationError)
        engine.run([host.program("update-binfmts"), "--enable", entry],
                   what=f"update-binfmts --enable {entry}", error=EmulationError, check=False)
        problem = status(arch)
        if problem is not None:
            raise EmulationError(f"{arch} emulation could not be set up: {problem}")
    return emulated
