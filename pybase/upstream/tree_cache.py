"""Compiled CPython trees shared between machines through a registry repository.

A tree takes 12-15 min per release and platform to compile on 2 cores (four of them: most of a
90-minute budget), while a runner's engine keeps them only as long as the runner lives. With
PYTHON_BASE_TREE_CACHE naming a repository (in GitLab `$CI_REGISTRY_IMAGE/cpython-tree`), a
machine without the tree pulls it by its key before compiling, and a machine that compiled one
pushes it there. The tag is the engine's (`3.13.15-bookworm-arm64-lto-<digest>`): the key
digests every compile input, so equal tags hold equal recipes, and the tree's own label must
name the same key or the pull is refused.

Trust: a tree is the interpreter every image ships, and the cache carries it from one pipeline
to the next. Only pipelines that may publish may write to it: in GitLab a repository of its own
(PYTHON_BASE_TREE_CACHE_USER/_PASSWORD, a deploy token) in protected variables, so merge-request
pipelines neither read nor write it. The label check catches a mix-up, not someone who can push.

A cache that cannot be reached never stops a build: the tree is compiled, and the outcome says
why the cache was not used. A cached image that is not the key's tree does stop it.
"""

from __future__ import annotations

import os

from pybase.core import label, settings
from pybase.infra import engine, registry
from pybase.upstream import UpstreamError


def repository() -> registry.Repository | None:
    """The cache repository PYTHON_BASE_TREE_CACHE names, or None (no cache)."""
    name = settings.get(settings.TREE_CACHE)
    return registry.checked(name.rstrip("/"), settings.TREE_CACHE) if name else None


def credentials() -> registry.Credentials | None:
    """PYTHON_BASE_TREE_CACHE_USER/_PASSWORD, else the registry's (credentials_from_env)."""
    return registry.credentials_from_env(
        os.environ, first=[(settings.TREE_CACHE_USER, settings.TREE_CACHE_PASSWORD)])


def _session(repo: registry.Repository) -> registry.Session:
    return registry.Session(repo, credentials(), retry=registry.Retry(attempts=2))


def cache_tag(ref: str) -> str:
    """The tag a tree has in the cache: the tag it has in the engine."""
    return ref.rpartition(":")[2]


def fetch(repo: registry.Repository, ref: str, key: str) -> str | None:
    """Pull the tree the engine knows as `ref` (whose key is `key`) from the cache and tag it
    `ref`; its image ID, or None when the cache does not hold it. Refuses a cached image whose
    label names another key."""
    tag = cache_tag(ref)
    with _session(repo) as session:
        labels = session.labels(tag)
        if labels is None:
            return None
        if labels.get(label.CPYTHON_TREE) != key:
            raise UpstreamError(f"{settings.TREE_CACHE}: {repo.tag(tag)} is labelled "
                                f"{label.CPYTHON_TREE}={labels.get(label.CPYTHON_TREE)!r}, not "
                                f"{key!r}: not a tree of this recipe; remove that tag")
        manifest = session.manifest(tag)
        if manifest is None or manifest.is_index:
            raise UpstreamError(f"{settings.TREE_CACHE}: {repo.tag(tag)} is not one image")
        image_id = session.pull(manifest.digest)
    engine.docker("tag", image_id, ref, capture=True)
    engine.docker("image", "rm", repo.digest(manifest.digest), capture=True, check=False)
    return image_id


def store(repo: registry.Repository, ref: str) -> str:
    """Push the engine's tree `ref` to the cache; returns the manifest digest stored."""
    image_id = engine.image_id(ref)
    if image_id is None:
        raise UpstreamError(f"{ref} is not in the engine: nothing to store")
    with _session(repo) as session:
        return session.push(image_id, cache_tag(ref))
