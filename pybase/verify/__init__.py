"""Verification: the tests' gate records (gates), the audit (audit, with its OSV database and
exceptions) and the rebuild check (check). The checks' names, shared by both commands:"""

from __future__ import annotations

PYTHON = "python"    # pip-audit of every Python distribution in the image (audit)
DEBIAN = "debian"    # a newer version in the release's -security/-updates suite (audit, check)
CPYTHON = "cpython"  # a newer CPython patch release than the image's (check)
