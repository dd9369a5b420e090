"""`pybase check`'s three answers against the real engine and real images.

0: a freshly built image (its build upgraded every package). 1: a derived image in which one
package is held back at the release suite's version while -security/-updates has a newer one
(tests/test_audit.py's downgrade candidates). 2: apt cannot reach the archive, the image is
missing, or its registry does not answer. A published image is checked by reference: pushed to a
registry on 127.0.0.1 and pulled by `check` itself. Every image and tag made here is removed.
"""

from __future__ import annotations

import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import docker
from test_audit import DOWNGRADE_CANDIDATES, HOLD_BACK_STEP

from pybase import check, cli, engine, local_registry, matrix, tags

pytestmark = pytest.mark.image

MATRIX = matrix.load()

HELD_BACK_DOCKERFILE = "FROM {base}\nUSER root\n" + HOLD_BACK_STEP + "USER 10001:10001\n"


def _base_ref(config: pytest.Config) -> str:
    targets = MATRIX.targets(only=config.getoption("only"))
    target = min(targets, key=lambda t: not t.is_default_release)
    ref = tags.local_ref(MATRIX, target, "runtime")
    if engine.image_id(ref) is None:
        pytest.fail(f"image {ref} is missing: run `nox -s build` first", pytrace=False)
    return ref


@pytest.fixture(scope="module")
def held_back(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str]]]:
    """(image, [package, old version, newer version]) with one package held back."""
    ref = f"pybase-check-test:{uuid.uuid4().hex[:10]}"
    try:
        with tempfile.TemporaryDirectory(prefix="pybase-check-test-") as context:
            Path(context, "Dockerfile").write_text(HELD_BACK_DOCKERFILE.format(
                base=_base_ref(request.config), candidates=DOWNGRADE_CANDIDATES))
            docker("build", "--progress=plain", "-t", ref, context, timeout=600)
        held = docker("run", "--rm", "--entrypoint", "cat", ref, "/pybase-held-back").stdout
        yield ref, held.split()
    finally:
        engine.docker("image", "rm", "-f", ref, capture=True, check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_current_image_has_nothing_due(runtime_image: Any,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["check", "--image", runtime_image.ref, "--check", "debian"])
    out = capsys.readouterr().out
    print(out)
    assert status == check.NOTHING_DUE, out
    assert f"{runtime_image.ref}: debian {runtime_image.target.release}: 0 of " in out
    assert "check: nothing due" in out


def test_held_back_package_makes_a_rebuild_due(held_back: tuple[str, list[str]],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    ref, held = held_back
    assert len(held) == 3, f"no package of {DOWNGRADE_CANDIDATES} could be held back"
    package, old, newer = held
    status = cli.main(["check", "--image", ref, "--check", "debian"])
    out = capsys.readouterr().out
    print(out)
    assert status == check.DUE, out
    assert f"  {package} {old} -> {newer} (" in out
    assert "check: rebuild due (1):" in out


def test_it_never_says_nothing_due_without_having_looked(
        request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    base = _base_ref(request.config)
    offline = check.run(MATRIX, [base], checks=("debian",), docker_args=["--network", "none"])
    assert offline.status == check.COULD_NOT_LOOK
    # apt-get update "succeeds" with nothing fetched; the audit's check sees the missing indices.
    assert "pending fixes cannot be checked" in offline.errors[0] \
        or "apt-get update failed in the image" in offline.errors[0]
    missing = f"pybase-check-test:missing-{uuid.uuid4().hex[:8]}"
    assert cli.main(["check", "--image", missing, "--check", "debian"]) == check.COULD_NOT_LOOK
    unreachable = f"127.0.0.1:{free_port()}/python-base:3.13"
    assert cli.main(["check", "--image", unreachable, "--check", "debian"]) \
        == check.COULD_NOT_LOOK
    out = capsys.readouterr().out
    assert f"{missing}: could not look: image {missing} is not in the engine" in out
    assert f"{unreachable}: could not look: image {unreachable}: `docker pull` failed" in out


def test_published_image_is_pulled_by_reference(request: pytest.FixtureRequest, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    base = _base_ref(request.config)
    server = local_registry.start(tmp_path / "registry", free_port())
    published = f"{server.address}/python-base:3.13"
    try:
        docker("tag", base, published)
        docker("push", published, timeout=600)
        docker("image", "rm", published)  # the tag only: check has to pull it
        assert cli.main(["check", "--image", published, "--check", "debian"]) \
            == check.NOTHING_DUE
        assert engine.image_id(published) == engine.image_id(base)
    finally:
        engine.docker("image", "rm", published, capture=True, check=False)
        server.stop()
    assert f"check: {published}: debian " in capsys.readouterr().out
