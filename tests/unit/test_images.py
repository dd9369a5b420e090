"""images.build_args: the one list of build arguments, against what the Dockerfile declares."""

from __future__ import annotations

import re

import pytest

from pybase.build import images
from pybase.core import matrix
from pybase.infra import emulation
from pybase.upstream import cpython_build


def test_build_args_are_exactly_the_arguments_the_dockerfile_needs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The tree's tag is read from the upstream image's label: no engine here.
    monkeypatch.setattr(cpython_build, "tree_of", lambda target: "tree:tag")
    text = (images.CONTEXT / "Dockerfile").read_text(encoding="utf-8")
    declared = re.findall(r"^ARG (\w+)(=?)", text, re.MULTILINE)
    without_default = {name for name, eq in declared if not eq}
    for target in matrix.load().targets(include_all=True):
        flags = images.build_args(target, "runtime", digest="sha256:x", os_upgrade_stamp="s",
                                  build_date="2026-12-01", revision="r")
        given = {flag.split("=", 1)[0] for flag in flags[1::2]}
        assert flags[::2] == ["--build-arg"] * len(given)
        # QEMU_CPU only for a platform emulated here: natively it stays unset, keeping the
        # native build's cache keys.
        needed = without_default - ({"QEMU_CPU"} if emulation.is_native(target.arch) else set())
        assert needed <= given <= {name for name, _ in declared}, target.name
        assert ("QEMU_CPU" in given) != emulation.is_native(target.arch), target.name
