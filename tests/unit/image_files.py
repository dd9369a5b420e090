"""Access to the files the Dockerfile copies into the images (images/python-base/files)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

FILES = Path(__file__).resolve().parents[2] / "images" / "python-base" / "files"


def load_file_secrets() -> ModuleType:
    """The file_secrets module, loaded by path: it ships in the image, not in pybase."""
    module = sys.modules.get("file_secrets")
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location("file_secrets", FILES / "file_secrets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["file_secrets"] = module
    # No __pycache__ next to files that the Dockerfile copies into the image.
    sys.dont_write_bytecode, saved = True, sys.dont_write_bytecode
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module
