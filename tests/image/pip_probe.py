"""Run inside a one-off container, as root, by tests/image/test_python.py (standard library
only): does pip behave as users expect in the image's venv, which has no pip of its own but sees
the interpreter's? Prints {check: [passed, detail]} as JSON.

Installs two tiny wheels written here (no network): one with `pip`, one with `python -m pip`.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import zipfile

VENV = os.environ.get("VIRTUAL_ENV", "/opt/venv")
SYSTEM_PYTHON = "/usr/local/bin/python3"


def wheel(folder: str, name: str) -> str:
    path = os.path.join(folder, f"{name}-1.0-py3-none-any.whl")
    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}.py": "VALUE = 1\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: pybase-bench\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    record = "".join(f"{f},,\n" for f in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in {**files, f"{info}/RECORD": record}.items():
            archive.writestr(member, text)
    return path


def run(*argv: str) -> tuple[int, str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode, lines[-1] if lines else ""


def imported_from(python: str, module: str) -> str:
    return run(python, "-c", f"import {module}; print({module}.__file__)")[1]


def main() -> None:
    folder = tempfile.mkdtemp()
    checks: dict[str, tuple[bool, str]] = {}
    code, out = run("pip", "--version")
    checks["pip --version"] = (code == 0, out)
    code, out = run("python", "-m", "pip", "--version")
    checks["python -m pip --version"] = (code == 0, out)
    run("pip", "install", "--no-index", "--no-deps", wheel(folder, "benchone"))
    where = imported_from("python", "benchone")
    checks["pip install goes into the venv"] = (where.startswith(VENV), where)
    run("python", "-m", "pip", "install", "--no-index", "--no-deps", wheel(folder, "benchtwo"))
    where = imported_from("python", "benchtwo")
    checks["python -m pip install goes into the venv"] = (where.startswith(VENV), where)
    code, out = run(SYSTEM_PYTHON, "-c", "import benchone")
    checks["system interpreter untouched"] = (code != 0, out)
    listing = subprocess.run(["pip", "list", "--format=freeze"], capture_output=True, text=True,
                             check=False)
    listed = listing.stdout.split()
    checks["pip list shows pip and the installs"] = (
        listing.returncode == 0 and any(p.startswith("pip==") for p in listed)
        and {"benchone==1.0", "benchtwo==1.0"} <= set(listed), " ".join(listed))
    run("pip", "uninstall", "-y", "pip")
    code, out = run(SYSTEM_PYTHON, "-m", "pip", "--version")
    checks["pip uninstall pip keeps the system pip"] = (code == 0, out)
    print(json.dumps(checks))


if __name__ == "__main__":
    main()
