"""The upstream images a registry would otherwise provide, made here (`nox -s bootstrap`):

- `debian:<release>-slim`: debian_base (mmdebstrap, reproducible from the archive state);
- `python:<version>-slim-<release>`: cpython_build (a cached compiled tree, assembled on the
  Debian base), from the verified source tarball of cpython_source;
- bootstrap: the sequence, and payload: when a base is stale.

Each image carries a recipe label (core.label.RECIPE), a digest of everything it was made
from; an existing image with the same recipe is reused, so re-running costs seconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pybase.infra import engine


class UpstreamError(engine.CommandError):
    """An upstream image could not be produced; the message says which and why."""


@dataclass(frozen=True)
class Outcome:
    image: str
    reused: bool
    seconds: float
    why: str = ""  # why it was made, or why the existing image was kept


def digest(*parts: str) -> str:
    """A short, stable digest of a recipe's parts: the value of the recipe label."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
