"""`pybase check`'s three answers against the real engine and real images.

0: a freshly built image (its build upgraded every package). 1: conftest's `pending_fix` image,
whose -security suite (a local apt repository) offers a newer tzdata; and, when the live archive
offers such a case today, a package held back at the release suite's version while
-security/-updates has a newer one. 2: apt cannot reach the archive, the image is missing, or its
registry does not answer. A published image is checked by reference: pushed to a
registry on 127.0.0.1 and pulled by `check` itself. Every image and tag made here is removed.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from support import PendingFix, default_runtime_image, docker, free_port

from pybase import cli
from pybase.core import matrix
from pybase.infra import engine, local_registry
from pybase.verify import check

pytestmark = pytest.mark.image

MATRIX = matrix.load()

# Leaf packages of every slim image whose release-suite version can be installed over a newer
# one (trixie names its OpenSSL library libssl3t64).
DOWNGRADE_CANDIDATES = "tzdata libsqlite3-0 zlib1g liblzma5 libssl3 libssl3t64"
# Downgrades the first candidate to the release suite's version while -security/-updates has a
# newer one, and records "package old new" (empty when the archive offers no such case today).
HELD_BACK_DOCKERFILE = """\
FROM {base}
USER root
RUN set -eu; \\
    apt-get update -q > /dev/null; \\
    . /etc/os-release; held=; \\
    for p in {candidates}; do \\
        inst=$(dpkg-query -W -f='${{Version}}' "$p" 2> /dev/null) || continue; \\
        rel=$(apt-cache madison "$p" | awk -F'|' -v s=" $VERSION_CODENAME/" \\
              'index($3, s) {{ gsub(/ /, "", $2); print $2; exit }}'); \\
        if [ -n "$rel" ] && dpkg --compare-versions "$rel" lt "$inst"; then \\
            apt-get install -y -q --allow-downgrades --no-install-recommends "$p=$rel" \\
                > /dev/null; \\
            held="$p $rel $inst"; break; \\
        fi; \\
    done; \\
    rm -rf /var/lib/apt/lists/*; \\
    echo "$held" > /pybase-held-back
USER 10001:10001
"""


def _base_ref(config: pytest.Config) -> str:
    return default_runtime_image(config).ref



def test_current_image_has_nothing_due(runtime_image: Any,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["check", "--image", runtime_image.ref, "--check", "debian"])
    out = capsys.readouterr().out
    print(out)
    assert status == check.NOTHING_DUE, out
    assert f"{runtime_image.ref}: debian {runtime_image.target.release}: 0 of " in out
    assert "check: nothing due" in out


def assert_due(ref: str, package: str, installed: str, newer: str,
               capsys: pytest.CaptureFixture[str]) -> None:
    """`pybase check` on `ref` says a rebuild is due for exactly this one package."""
    status = cli.main(["check", "--image", ref, "--check", "debian"])
    out = capsys.readouterr().out
    print(out)
    assert status == check.DUE, out
    assert f"  {package} {installed} -> {newer} (" in out
    assert "check: rebuild due (1):" in out


def test_pending_fix_makes_a_rebuild_due(pending_fix: PendingFix,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert_due(pending_fix.ref, pending_fix.package, pending_fix.installed,
               pending_fix.candidate, capsys)


def test_package_held_back_in_the_live_archive_makes_a_rebuild_due(
        request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    """The same against today's real archive, when it offers a case: a package of the release
    suite that its -security/-updates suite has since replaced."""
    ref = f"pybase-check-test:{uuid.uuid4().hex[:10]}"
    try:
        with tempfile.TemporaryDirectory(prefix="pybase-check-test-") as context:
            Path(context, "Dockerfile").write_text(HELD_BACK_DOCKERFILE.format(
                base=_base_ref(request.config), candidates=DOWNGRADE_CANDIDATES))
            docker("build", "--progress=plain", "-t", ref, context, timeout=600)
        held = docker("run", "--rm", "--entrypoint", "cat", ref, "/pybase-held-back").stdout
        if not held.split():
            pytest.skip(f"the live archive offers no case today: none of {DOWNGRADE_CANDIDATES} "
                        "has a release-suite version older than its -security/-updates one "
                        "(test_pending_fix_makes_a_rebuild_due covers the logic)")
        package, old, newer = held.split()
        assert_due(ref, package, old, newer, capsys)
    finally:
        engine.docker("image", "rm", "-f", ref, capture=True, check=False)


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
