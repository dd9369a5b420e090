"""Access to the files the Dockerfile copies into the images (images/python-base/files)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from pybase.infra import host

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


def without_root_file_access() -> list[str]:
    """A command prefix under which file modes mean for us what they mean for the image's user.

    Root reads a mode-000 file through CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH; dropping just those
    two (setpriv, util-linux) makes the read fail as it would for uid 10001, while root keeps
    reaching the checkout wherever it lies (a clone under 0700 /root included), which a switch
    to another user would not. Not root: nothing to drop."""
    if os.geteuid() != 0:
        return []
    return [host.program("setpriv"), "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search"]
