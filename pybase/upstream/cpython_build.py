"""`python:<version>-slim-<release>`: a cached compiled CPython tree, assembled on a Debian base.

- The **tree** (images/python/compile.Dockerfile, target `tree`): /usr/local as CPython's
  `make install` leaves it, plus /runtime-packages. It is kept in the engine as
  `pybase-cache/cpython-tree:<version>-<release>-<arch>-<optimisation>-<digest>`, the key
  (`pgo-lto-1a2b...`) naming the optimisation and digesting everything the compile depends on:
  that file's text, the version, the tarball's sha256, the Debian release, the platform and the
  optimisation. It is compiled again only when one of them changes (12-15 min with PGO+LTO on 2
  cores); the Debian base image it compiled on is not part of the key, so a refreshed base of the
  same release reuses it. Another platform than the engine's is cross-compiled, with LTO but no
  PGO (`optimisation`), its build steps run by the engine platform's tree of the same entry.
- The **assembly** (images/python/Dockerfile): the tree copied onto `debian:<release>-slim` with
  the runtime libraries installed by apt. No compiler runs: seconds to a minute.

The assembled image's recipe label digests the assembly's Dockerfile and the tree key, not the
base: a refresh that leaves every package the same leaves the image's content the same, and the
publish fingerprint sees no change.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pybase import upstream
from pybase.core import label, paths, settings
from pybase.core.matrix import Target
from pybase.infra import emulation, engine, registry
from pybase.upstream import Outcome, UpstreamError, cpython_source, tree_cache

COMPILE_DOCKERFILE = paths.REPO / "images" / "python" / "compile.Dockerfile"
ASSEMBLE_DOCKERFILE = paths.REPO / "images" / "python" / "Dockerfile"
TREE_REPOSITORY = "pybase-cache/cpython-tree"


@contextmanager
def _context(name: str) -> Iterator[Path]:
    """A fresh build context directory under the cache (where the source tarball can be
    hard-linked), removed afterwards."""
    context = paths.cache_dir() / "contexts" / name
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    try:
        yield context
    finally:
        shutil.rmtree(context, ignore_errors=True)


def optimisation(target: Target, optimize: bool) -> str:
    """What the compile of the target's tree does on this machine: `pgo-lto` natively (the
    official recipe), `lto` when cross-compiled (PGO's profile run would execute the target's
    code, under emulation for hours), `plain` without versions.yaml's cpython.optimize."""
    if not optimize:
        return "plain"
    return "pgo-lto" if emulation.is_native(target.arch) else "lto"


def tree_key(target: Target, optimize: bool) -> str:
    how = optimisation(target, optimize)
    return f"{how}-" + upstream.digest(COMPILE_DOCKERFILE.read_text(encoding="utf-8"),
                                       target.python.version, target.python.sha256,
                                       target.release, target.platform, how)


def tagged_tree(target: Target, key: str) -> str:
    """The tag of the entry's tree with this key (the recipe's now, or one from a label)."""
    return f"{TREE_REPOSITORY}:{target.key}-{target.arch}-{key}"


def tree_ref(target: Target, optimize: bool) -> str:
    return tagged_tree(target, tree_key(target, optimize))


def tree_of(target: Target) -> str:
    """The tree the entry's upstream image was assembled from (its label names the key): the
    -build variant copies libpython3.X.so from it, which the slim image leaves out."""
    labels = engine.image_labels(target.upstream_image)
    if labels is None:
        raise UpstreamError(f"upstream image {target.upstream_image} is missing; "
                            "run `nox -s bootstrap` first")
    key = labels.get(label.CPYTHON_TREE)
    if not key:
        raise UpstreamError(f"{target.upstream_image} has no {label.CPYTHON_TREE} label: it was "
                            "not assembled by `nox -s bootstrap`; run it again")
    ref = tagged_tree(target, key)
    if engine.image_id(ref) is None:
        raise UpstreamError(f"{ref}, the CPython tree {target.upstream_image} was assembled "
                            "from, is missing; `nox -s bootstrap -- --recompile` makes it again")
    return ref


def build_args(target: Target, optimize: bool, base: str | None = None) -> list[str]:
    return ["--platform", target.platform,
            "--build-arg", f"DEBIAN_IMAGE={base or target.debian_image}",
            "--build-arg", f"PYTHON_VERSION={target.python.version}",
            "--build-arg", f"PYTHON_SHA256={target.python.sha256}",
            "--build-arg", f"PYTHON_OPTIMIZE={int(optimize)}"]


def build_tree(target: Target, *, optimize: bool, native: Target | None = None,
               force: bool = False, ref: str | None = None,
               extra_args: tuple[str, ...] = ()) -> Outcome:
    """Compile CPython into a tree image, unless one with the same key exists.

    A target of another platform than the engine's is cross-compiled: `native` is the same
    entry on the engine's platform, whose Debian base runs the compile and whose tree (compiled
    first) runs CPython's build steps. `ref` and `extra_args` (other build args) are for
    bench-only variants of the recipe."""
    started = time.monotonic()
    key = tree_key(target, optimize)
    ref = ref or tree_ref(target, optimize)
    if not force and engine.image_id(ref) is not None:
        return Outcome(ref, True, time.monotonic() - started, f"tree {key} cached")
    # Another machine may have compiled it (PYTHON_BASE_TREE_CACHE); never for bench variants.
    shared = tree_cache.repository() if not extra_args else None
    cache_note = ""
    if shared is not None and not force:
        try:
            if tree_cache.fetch(shared, ref, key) is not None:
                return Outcome(ref, True, time.monotonic() - started,
                               f"tree {key} pulled from {shared.name}")
            cache_note = f"; not in {shared.name} yet"
        except (registry.RegistryError, engine.EngineError) as exc:
            cache_note = f"; {settings.TREE_CACHE} not used: {exc}"
    if emulation.is_native(target.arch):
        builder, build_python = target, target.debian_image  # nothing is read from it
    elif native is None or not emulation.is_native(native.arch):
        raise UpstreamError(f"{target.name} is cross-compiled: its build needs the entry on "
                            f"linux/{emulation.native_arch()}")
    else:
        builder, build_python = native, tree_ref(native, optimize)
        if engine.image_id(build_python) is None:
            raise UpstreamError(f"{build_python} is missing: the native tree is compiled first")
    if engine.image_id(builder.debian_image) is None:
        raise UpstreamError(f"{builder.debian_image} is missing; bootstrap builds it first")
    with _context(f"python-{target.name}") as context:
        os.link(cpython_source.source_tarball(target.python), context / "Python.tar.xz")
        engine.docker(
            "build", "--progress=plain", "--target", "tree",
            "-f", str(COMPILE_DOCKERFILE), *build_args(target, optimize, builder.debian_image),
            "--build-arg", f"BUILD_PYTHON={build_python}", *extra_args,
            "--label", f"{label.CPYTHON_TREE}={key}",
            "-t", ref, str(context),
        )
    if shared is not None:
        try:
            tree_cache.store(shared, ref)
            cache_note += f"; pushed to {shared.name}"
        except (registry.RegistryError, engine.EngineError) as exc:
            cache_note += f"; not pushed to {settings.TREE_CACHE}: {exc}"
    return Outcome(ref, False, time.monotonic() - started,
                   f"compiled for {target.platform}: {optimisation(target, optimize)}"
                   + cache_note)


def assembly_recipe(target: Target, optimize: bool) -> str:
    return upstream.digest(ASSEMBLE_DOCKERFILE.read_text(encoding="utf-8"),
                           tree_key(target, optimize))


def assembly_args(target: Target, optimize: bool, base: str, tree: str) -> list[str]:
    """The build args of images/python/Dockerfile, and QEMU_CPU for another platform's RUN
    steps (unset natively, where the cache keys stay as they were)."""
    return [*build_args(target, optimize, base), "--build-arg", f"TREE_IMAGE={tree}",
            *(f"--build-arg={name}={value}"
              for name, value in emulation.environment(target.arch).items())]


def assemble(target: Target, *, optimize: bool, force: bool = False, tree: str | None = None,
             ref: str | None = None, base: str | None = None, no_cache: bool = False) -> Outcome:
    """`python:<version>-slim-<release>` from the tree on the current Debian base, unless the
    image already is exactly that (same recipe, same base).

    `tree`, `ref` and `base` name other images (tests, bench); `no_cache` times a real refresh,
    where the base is new and no build step can come from the cache."""
    started = time.monotonic()
    tree = tree or tree_ref(target, optimize)
    ref = ref or target.upstream_image
    base = base or target.debian_image
    debian_id = engine.image_id(base)
    if debian_id is None:
        raise UpstreamError(f"{base} is missing; bootstrap builds it first")
    if engine.image_id(tree) is None:
        raise UpstreamError(f"{tree} is missing: the compiled tree is built before assembly")
    recipe = assembly_recipe(target, optimize)
    labels = engine.image_labels(ref) or {}
    if (not force and labels.get(label.RECIPE) == recipe
            and labels.get(label.BASE_DIGEST) == debian_id):
        return Outcome(ref, True, time.monotonic() - started, "same tree, same base")
    with _context(f"assemble-{target.name}") as context:  # stays empty: nothing is read from it
        engine.docker(
            "build", "--progress=plain", *(["--no-cache"] if no_cache else []),
            "-f", str(ASSEMBLE_DOCKERFILE), *assembly_args(target, optimize, base, tree),
            "--label", f"{label.RECIPE}={recipe}",
            "--label", f"{label.CPYTHON_TREE}={tree_key(target, optimize)}",
            "--label", f"{label.VERSION}={target.python.version}",
            "--label", f"{label.BASE_NAME}={base}",
            "--label", f"{label.BASE_DIGEST}={debian_id}",
            "-t", ref, str(context),
        )
    return Outcome(ref, False, time.monotonic() - started, f"assembled on {debian_id[:19]}")
