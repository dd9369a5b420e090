"""The interpreter, the venv and the environment defaults."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Image

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


def test_python_is_the_exact_version(host: Any, image: Image) -> None:
    assert host.check_output("python --version") == f"Python {image.target.python.version}"
    assert host.check_output("python3 --version") == f"Python {image.target.python.version}"


def test_venv_is_first_on_path_and_active(host: Any) -> None:
    assert host.check_output("command -v python") == "/opt/venv/bin/python"
    assert host.check_output("command -v pip") == "/opt/venv/bin/pip"
    assert host.check_output("python -c 'import sys; print(sys.prefix)'") == "/opt/venv"


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


@pytest.mark.variants("runtime", "build")
def test_venv_is_lean(host: Any) -> None:
    assert venv_packages(host) == {"pip"}


@pytest.mark.variants("dev")
def test_dev_venv_holds_only_pip_and_pytest(host: Any) -> None:
    assert venv_packages(host) == {"pip", "pytest", "iniconfig", "packaging", "pluggy", "pygments"}
