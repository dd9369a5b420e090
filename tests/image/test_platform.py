"""Each image is whole on its platform: its binaries and Debian packages are the platform's,
its interpreter loads every extension module it ships, and pip picks the platform's binary
wheels. Every test here runs on every platform (arm64 under emulation on an amd64 machine)."""

from __future__ import annotations

import json

import pytest
from support import Image, build_ca, docker, emulated

pytestmark = pytest.mark.every_platform

# ELF e_machine values: EM_X86_64 and EM_AARCH64.
ELF_MACHINE = {"amd64": 62, "arm64": 183}
# What the kernel (`uname -m`) and wheel tags call the architectures.
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}

ELF_SCAN = r"""
import json, os, struct, sys
found = {}
for top in sys.argv[1:]:
    for root, dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as f:
                head = f.read(20)
            if head[:4] == b"\x7fELF":
                found[path] = struct.unpack_from("<H", head, 18)[0]
print(json.dumps(found))
"""

IMPORT_EVERY_EXTENSION = r"""
import importlib, json, os, sysconfig
where = os.path.join(os.path.dirname(os.__file__), "lib-dynload")  # the stdlib's, not the venv's
suffix = sysconfig.get_config_var("EXT_SUFFIX")
names = sorted(n[:-len(suffix)] for n in os.listdir(where) if n.endswith(suffix))
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = repr(exc)
print(json.dumps({"names": names, "failed": failed, "suffix": suffix}))
"""

# A binary wheel with manylinux builds for both platforms (the wheels example compiles the same
# release from its sdist instead).
BINARY_WHEEL = "markupsafe==3.0.3"


def python(image: Image, script: str, *args: str, user: str | None = None) -> str:
    result = docker("run", "--rm", *(["--user", user] if user else []), *emulated(image),
                    "--entrypoint", "python3", image.ref, "-c", script, *args, timeout=600)
    return result.stdout


def test_the_image_is_the_platforms(image: Image) -> None:
    data = image.inspect()
    assert f"{data['Os']}/{data['Architecture']}" == image.target.platform
    kernel, dpkg = docker("run", "--rm", *emulated(image), "--entrypoint", "sh", image.ref, "-c",
                          "uname -m; dpkg --print-architecture").stdout.split()
    assert (kernel, dpkg) == (MACHINE[image.target.arch], image.target.arch)


def test_every_elf_file_is_for_the_platform(image: Image) -> None:
    found: dict[str, int] = json.loads(python(image, ELF_SCAN, "/usr/local", "/opt/venv"))
    minor = image.target.python.minor
    assert f"/usr/local/bin/python{minor}" in found
    assert sum(".cpython-" in path for path in found) > 40, sorted(found)  # extension modules
    wrong = {path: machine for path, machine in found.items()
             if machine != ELF_MACHINE[image.target.arch]}
    assert not wrong, f"ELF files not for {image.target.platform}: {wrong}"


def test_every_debian_package_is_for_the_platform(image: Image) -> None:
    listed = docker("run", "--rm", *emulated(image), "--entrypoint", "dpkg-query", image.ref,
                    "--show", "--showformat=${Package} ${Architecture}\n").stdout
    archs = dict(line.split() for line in listed.splitlines())
    wrong = {name: arch for name, arch in archs.items() if arch not in (image.target.arch, "all")}
    assert not wrong, f"packages of another architecture: {wrong}"


def test_every_stdlib_extension_module_imports(image: Image) -> None:
    result = json.loads(python(image, IMPORT_EVERY_EXTENSION))
    assert MACHINE[image.target.arch] in result["suffix"], result["suffix"]
    assert len(result["names"]) > 40, result["names"]
    assert result["failed"] == {}


@pytest.mark.every_platform(emulated="first entry")
@pytest.mark.variants("runtime")
def test_pip_installs_the_platforms_binary_wheel(image: Image) -> None:
    """A downstream `pip install` in the runtime image takes the manylinux wheel built for the
    image's architecture, and its compiled module loads."""
    ca = build_ca()
    mounts = (["--volume", f"{ca}:/run/secrets/build-ca:ro",
               "--env", "PIP_CERT=/run/secrets/build-ca"] if ca else [])
    script = (f"pip install --quiet --only-binary=:all: --no-deps {BINARY_WHEEL} >&2 && "
              "python -c 'import importlib.metadata as m, markupsafe._speedups as s; "
              "print(m.distribution(\"markupsafe\").read_text(\"WHEEL\")); print(s.__file__)'")
    result = docker("run", "--rm", "--user", "0", *mounts, *emulated(image), "--entrypoint", "sh",
                    image.ref,
                    "-c", script, check=False, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    tags = [line.split(": ", 1)[1] for line in result.stdout.splitlines()
            if line.startswith("Tag: ")]
    assert tags and all(t.endswith(f"_{MACHINE[image.target.arch]}") and "manylinux" in t
                        for t in tags), tags
    assert result.stdout.rstrip().endswith(".so"), result.stdout
