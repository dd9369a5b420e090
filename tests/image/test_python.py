"""The interpreter, the venv and the environment defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import Image, docker

STDLIB = "ssl, sqlite3, ctypes, zlib, bz2, lzma, uuid, decimal, readline, zoneinfo, hashlib, curses"

ENV_DEFAULTS = {
    "VIRTUAL_ENV": "/opt/venv",
    "LANG": "C.UTF-8",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONFAULTHANDLER": "1",
    "PIP_NO_CACHE_DIR": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_REQUIRE_VIRTUALENV": "1",
}


@pytest.mark.every_platform
def test_python_is_the_exact_version(host: Any, image: Image) -> None:
    assert host.check_output("python --version") == f"Python {image.target.python.version}"
    assert host.check_output("python3 --version") == f"Python {image.target.python.version}"


@pytest.mark.every_platform
def test_venv_is_first_on_path_and_active(host: Any) -> None:
    assert host.check_output("command -v python") == "/opt/venv/bin/python"
    assert host.check_output("command -v pip") == "/opt/venv/bin/pip"
    assert host.check_output("python -c 'import sys; print(sys.prefix)'") == "/opt/venv"


@pytest.mark.every_platform
def test_stdlib_modules_import(host: Any) -> None:
    host.check_output(f"python -c 'import {STDLIB}'")


def test_environment_defaults(image: Image) -> None:
    env = dict(item.split("=", 1) for item in image.inspect()["Config"]["Env"])
    for key, value in ENV_DEFAULTS.items():
        assert env.get(key) == value, key
    assert env["PATH"].startswith("/opt/venv/bin:/usr/local/bin:")


def test_pip_refuses_the_system_interpreter(root_host: Any) -> None:
    result = root_host.run("/usr/local/bin/python3 -m pip install --no-index six")
    assert result.rc != 0
    assert "virtual" in result.stderr.lower()


def venv_packages(host: Any) -> set[str]:
    return {line.split("==")[0].lower() for line in host.check_output("pip freeze --all").split()}


PIP_PROBE = Path(__file__).with_name("pip_probe.py")


@pytest.mark.variants("runtime", "build")
def test_pip_behaves_as_in_a_venv_with_its_own(image: Image) -> None:
    """The venv uses the interpreter's pip (README, "The venv"): installs still land in the
    venv, the system interpreter stays untouched, and uninstalling pip cannot remove it."""
    result = docker("run", "--rm", "--network", "none", "--user", "0", "--entrypoint",
                    "python3", image.ref, "-c", PIP_PROBE.read_text(encoding="utf-8"))
    checks: dict[str, list[object]] = json.loads(result.stdout)
    failed = {name: detail for name, (passed, detail) in checks.items() if not passed}
    assert not failed
    assert len(checks) == 7
    # The one pip there is: the interpreter's, in the system site-packages.
    assert "from /usr/local/lib/python3" in str(checks["pip --version"][1])


@pytest.mark.variants("runtime", "build")
def test_venv_is_lean(host: Any) -> None:
    assert venv_packages(host) == {"pip"}


@pytest.mark.variants("dev")
def test_dev_venv_holds_only_pip_and_pytest(host: Any) -> None:
    assert venv_packages(host) == {"pip", "pytest", "iniconfig", "packaging", "pluggy", "pygments"}


# A C program that embeds the interpreter, built the way `python3-config --embed` says.
EMBED_C = ('#include <Python.h>\n'
           'int main(void) {\n'
           '    Py_Initialize();\n'
           '    PyRun_SimpleString("import sys, sqlite3; print(sys.version_info[:2], sqlite3.sqlite_version)");\n'
           '    return Py_FinalizeEx() < 0;\n'
           '}\n')


@pytest.mark.variants("build", "dev")
def test_embedding_links_the_shared_libpython(host: Any, image: Image) -> None:
    """The interpreter executable holds libpython itself; embedders still get the shared one."""
    minor = image.target.python.minor
    script = (f"set -e; cd \"$(mktemp -d)\"; printf '%s' '{EMBED_C}' > embed.c; "
              "gcc embed.c $(python3-config --cflags --embed) $(python3-config --ldflags --embed) "
              "-o embed; ldd ./embed; ./embed")
    output = host.check_output(script)
    assert f"libpython{minor}.so.1.0 => /usr/local/lib/libpython{minor}.so.1.0" in output
    assert f"({minor.replace('.', ', ')})" in output


def test_interpreter_executable_holds_libpython(host: Any, image: Image) -> None:
    minor = image.target.python.minor
    assert "libpython" not in host.check_output(f"ldd /usr/local/bin/python{minor}")
    # Extension modules find the C API in the executable: it exports it.
    assert host.run("python -c 'import _ctypes, _decimal, _sqlite3'").rc == 0


@pytest.mark.variants("runtime")
def test_runtime_image_ships_no_shared_libpython(host: Any) -> None:
    """Only embedders load it; they bring it from -build (tests/downstream/embed)."""
    assert host.check_output("find /usr/local/lib -name 'libpython*' -print") == ""
    assert host.run("ldconfig -p | grep libpython").rc == 1


@pytest.mark.every_platform
def test_interpreter_executable_is_not_position_independent(host: Any, image: Image) -> None:
    """ELF type EXEC (2), as Debian's python3.X, not DYN (3, a PIE): see compile.Dockerfile."""
    path = f"/usr/local/bin/python{image.target.python.minor}"
    script = f"import sys; sys.stdout.write(str(open({path!r}, 'rb').read(18)[16]))"
    assert host.check_output(f"python -c \"{script}\"") == "2"
