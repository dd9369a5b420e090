"""Shared fixtures: the image matrix (from versions.yaml) and running containers as test hosts.

Image tests take the `image` fixture and run once per selected (entry, variant); the selection is
versions.yaml's default build set, narrowed with `--only 3.13-trixie` (repeatable). An image that
should have been built but is missing fails its tests; it is never skipped.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import testinfra

from pybase import engine, matrix, tags

MATRIX = matrix.load()
APP_UID = 10001


@dataclass(frozen=True)
class Image:
    target: matrix.Target
    variant: str
    ref: str

    @property
    def id(self) -> str:
        return tags.local_tag(self.target, self.variant)

    def inspect(self) -> dict[str, Any]:
        result = docker("image", "inspect", self.ref, check=False)
        if result.returncode != 0:
            pytest.fail(f"image {self.ref} is missing: run `nox -s build` first", pytrace=False)
        data: dict[str, Any] = json.loads(result.stdout)[0]
        return data


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """pybase's docker call with output captured; a failure shows the command's stderr."""
    result = engine.docker(*args, capture=True, check=False, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:4])} -> {result.returncode}\n"
                             f"{result.stderr[-2000:]}")
    return result


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--only", action="append", default=[],
                     help="matrix selector (3.13, 3.13-trixie, ...); repeatable")


def selected_images(config: pytest.Config) -> list[Image]:
    targets = MATRIX.targets(only=config.getoption("only"))
    return [
        Image(t, variant, tags.local_ref(MATRIX, t, variant))
        for t in targets for variant in MATRIX.variants
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    images = selected_images(metafunc.config)
    for name, wanted in (("image", None), ("runtime_image", "runtime")):
        if name in metafunc.fixturenames:
            chosen = [i for i in images if wanted is None or i.variant == wanted]
            metafunc.parametrize(name, chosen, ids=[i.id for i in chosen], scope="session")


@pytest.fixture(scope="session")
def container(image: Image) -> Iterator[str]:
    """A long-running container of the image (tini -> entrypoint -> sleep), removed afterwards."""
    image.inspect()
    name = f"pybase-test-{uuid.uuid4().hex[:10]}"
    docker("run", "-d", "--rm", "--name", name, image.ref, "sleep", "infinity")
    try:
        yield name
    finally:
        docker("rm", "-f", name, check=False)


@pytest.fixture(scope="session")
def host(container: str) -> Any:
    return testinfra.get_host(f"docker://{container}")


@pytest.fixture(scope="session")
def root_host(container: str) -> Any:
    return testinfra.get_host(f"docker://root@{container}")


@contextlib.contextmanager
def detached(*run_args: str) -> Iterator[str]:
    """`docker run -d` with the given arguments; the container is removed however the test ends."""
    name = f"pybase-test-{uuid.uuid4().hex[:10]}"
    docker("run", "-d", "--name", name, *run_args)
    try:
        yield name
    finally:
        docker("rm", "-f", name, check=False)


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll until predicate() holds; fail after a bounded wait."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}", pytrace=False)


def health(container: str) -> str:
    result = docker("inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                    container, check=False)
    return result.stdout.strip()


def published_port(container: str, port: int) -> int:
    """The 127.0.0.1 port Docker published for a container port."""
    address = docker("port", container, str(port)).stdout.split()[0]
    host, _, number = address.rpartition(":")
    assert host == "127.0.0.1", address
    return int(number)
