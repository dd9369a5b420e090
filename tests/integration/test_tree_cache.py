"""The CPython tree cache (pybase.upstream.tree_cache) against a real registry on 127.0.0.1.

A machine that compiled a tree pushes it; the next machine, whose engine lacks it, gets it by its
key instead of compiling, and it is byte for byte the same image. A cached image whose label
names another key is refused. (A cache that cannot be reached makes the tree compile, an hour
here: said in the outcome, not tested.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import MATRIX, Image, docker, free_port

from pybase.core import label, settings
from pybase.infra import emulation, engine, local_registry, registry
from pybase.upstream import UpstreamError, cpython_build, tree_cache


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[registry.Repository]:
    server = local_registry.start(tmp_path_factory.mktemp("tree-cache"), free_port())
    try:
        yield registry.Repository(f"{server.address}/pybase-test/cpython-tree")
    finally:
        server.stop()


@pytest.mark.every_platform
def test_a_tree_one_machine_compiled_is_pulled_by_the_next_instead_of_compiled(
        cache: registry.Repository, runtime_image: Image, monkeypatch: pytest.MonkeyPatch) -> None:
    target, optimize = runtime_image.target, MATRIX.cpython.optimize
    compiled = cpython_build.tree_ref(target, optimize)
    compiled_id = engine.image_id(compiled)
    if compiled_id is None:
        pytest.fail(f"no compiled tree {compiled}: run `nox -s bootstrap` first", pytrace=False)
    tree_cache.store(cache, compiled)

    # The next machine: its engine has no tree by that name (a test-only name with the same tag).
    elsewhere = f"pybase-test/cpython-tree:{tree_cache.cache_tag(compiled)}"
    monkeypatch.setenv(settings.TREE_CACHE, cache.name)
    real_docker = engine.docker

    def no_compile(*args: str, **kwargs: Any) -> Any:
        assert args[:1] != ("build",), "build_tree compiled instead of pulling from the cache"
        return real_docker(*args, **kwargs)

    monkeypatch.setattr(engine, "docker", no_compile)
    native = MATRIX.on(target, f"linux/{emulation.native_arch()}")
    try:
        outcome = cpython_build.build_tree(target, optimize=optimize, native=native,
                                           ref=elsewhere)
        assert outcome.reused and outcome.why.endswith(f"pulled from {cache.name}"), outcome
        assert engine.image_id(elsewhere) == compiled_id
    finally:
        docker("image", "rm", elsewhere, check=False)  # the tag: `compiled` keeps the image
    assert engine.image_id(compiled) == compiled_id


def test_a_cached_image_of_another_recipe_is_refused_and_a_missing_one_is_none(
        cache: registry.Repository, tmp_path: Path) -> None:
    (tmp_path / "marker").write_text("not a tree\n")
    (tmp_path / "Dockerfile").write_text(
        f"FROM scratch\nCOPY marker /marker\nLABEL {label.CPYTHON_TREE}=pgo-lto-someother\n")
    ref = "pybase-test/cpython-tree:3.13.15-bookworm-amd64-pgo-lto-0123456789abcdef"
    docker("build", "--quiet", "-t", ref, str(tmp_path))
    try:
        tree_cache.store(cache, ref)
        docker("image", "rm", ref)
        with pytest.raises(UpstreamError, match=r"labelled .*'pgo-lto-someother', not "
                                                r"'pgo-lto-0123456789abcdef': not a tree"):
            tree_cache.fetch(cache, ref, "pgo-lto-0123456789abcdef")
        assert engine.image_id(ref) is None
        assert tree_cache.fetch(cache, ref.replace("0123", "4567"), "pgo-lto-4567") is None
    finally:
        docker("image", "rm", ref, check=False)
