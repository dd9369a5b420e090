"""Every environment variable pybase reads: ours share one prefix, PYTHON_BASE_; the others are
set by Docker or GitLab. Modules take the names from here, so `grep settings.` shows them all.

(The images read their own at run time, PYTHON_BASE_SECRETS_* and friends: README, The images.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

PREFIX = "PYTHON_BASE_"

CACHE = PREFIX + "CACHE"                      # heavy results kept between runs (core.paths)
SOURCE_DIR = PREFIX + "SOURCE_DIR"            # CPython tarballs for offline builds
BUILD_CA = PREFIX + "BUILD_CA"                # a site CA bundle for the build's PyPI step
OS_UPGRADE_STAMP = PREFIX + "OS_UPGRADE_STAMP"  # forces the OS-upgrade layer (scheduled runs)
ENGINE = PREFIX + "ENGINE"                    # docker (default) or podman for running containers
DOCKER = PREFIX + "DOCKER"                    # the docker CLI to use
REGISTRY = PREFIX + "REGISTRY"                # where publish pushes
REGISTRY_USER = PREFIX + "REGISTRY_USER"
REGISTRY_PASSWORD = PREFIX + "REGISTRY_PASSWORD"
TREE_CACHE = PREFIX + "TREE_CACHE"            # a repository sharing compiled CPython trees
TREE_CACHE_USER = PREFIX + "TREE_CACHE_USER"  # its own credentials (else the registry's)
TREE_CACHE_PASSWORD = PREFIX + "TREE_CACHE_PASSWORD"
LOCAL_REGISTRY_PORT = PREFIX + "LOCAL_REGISTRY_PORT"  # publish --local
LOCAL_REGISTRY_DIR = PREFIX + "LOCAL_REGISTRY_DIR"
ADVISORY_DB = PREFIX + "ADVISORY_DB"          # an OSV snapshot for the offline audit
ADVISORY_DB_FORMER = "PYBASE_ADVISORY_DB"     # its former name, still read (machines set it)
CANDIDATES_PULLED = PREFIX + "CANDIDATES_PULLED"  # GitLab test jobs: images came from the registry
SIGNING_KEY = PREFIX + "SIGNING_KEY"          # path of the encrypted private key (publish)
SIGNING_PASSPHRASE = PREFIX + "SIGNING_PASSPHRASE"  # opens it; never printed or written
SIGNING_PUBLIC_KEY = PREFIX + "SIGNING_PUBLIC_KEY"  # verify with this key, not keys/python-base.pub

# Set by others.
DOCKER_HOST = "DOCKER_HOST"
GITLAB_REGISTRY_IMAGE = "CI_REGISTRY_IMAGE"
GITLAB_REGISTRY_USER = "CI_REGISTRY_USER"
GITLAB_REGISTRY_PASSWORD = "CI_REGISTRY_PASSWORD"
GITLAB_PIPELINE_ID = "CI_PIPELINE_ID"


def get(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's value; unset and empty are the same (None)."""
    return (os.environ if environ is None else environ).get(name) or None


def advisory_db(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(variable, value) of the advisory snapshot setting, under its name or its former one."""
    for name in (ADVISORY_DB, ADVISORY_DB_FORMER):
        value = get(name, environ)
        if value:
            return name, value
    return None
