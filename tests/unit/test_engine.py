"""The engine check fails fast and says how to get an engine (a real connection attempt)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pybase import engine


def test_unreachable_engine_is_reported_with_the_way_out(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    address = f"unix://{tmp_path}/no-engine.sock"
    monkeypatch.setenv("DOCKER_HOST", address)
    assert engine.server_version() is None
    with pytest.raises(engine.EngineError) as info:
        engine.require()
    message = str(info.value)
    assert address in message and "nox -s engine" in message and "DOCKER_HOST" in message


def test_a_remote_engine_is_never_replaced_by_a_local_one(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/remote.sock")
    with pytest.raises(engine.EngineError, match="no Docker Engine answers"):
        engine.ensure_running()
