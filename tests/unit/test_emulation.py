"""pybase.infra.emulation: which architectures run here, read from a binfmt_misc directory
laid out as the kernel shows it (the real one is set up by `nox -s engine` and read by tests that
run arm64 images)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pybase.infra import emulation

ENABLED = ("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: {flags}\n"
           "offset 0\nmagic 7f454c460201010000000000000000000200b700\n")


@pytest.fixture
def binfmt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(emulation, "BINFMT_MISC", tmp_path)
    monkeypatch.setattr(emulation, "native_arch", lambda: "amd64")
    return tmp_path


def test_the_native_architecture_needs_nothing(binfmt: Path) -> None:
    assert emulation.status("amd64") is None
    assert emulation.ensure(["amd64"]) == []


def test_each_missing_piece_is_named(binfmt: Path) -> None:
    assert "not mounted" in str(emulation.status("arm64"))
    (binfmt / "register").touch()
    assert "no binfmt_misc entry qemu-aarch64" in str(emulation.status("arm64"))
    entry = binfmt / "qemu-aarch64"
    entry.write_text(ENABLED.format(flags="P").replace("enabled", "disabled"))
    assert "disabled" in str(emulation.status("arm64"))
    entry.write_text(ENABLED.format(flags="P"))
    assert "lacks the F (fix-binary) flag" in str(emulation.status("arm64"))
    entry.write_text(ENABLED.format(flags="PF"))
    assert emulation.status("arm64") is None
    assert emulation.ensure(["arm64", "amd64"]) == ["arm64"]


def test_not_root_gets_the_commands(binfmt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(emulation.EmulationError,
                       match=r"mount -t binfmt_misc .* update-binfmts --enable qemu-aarch64"):
        emulation.ensure(["arm64"])
