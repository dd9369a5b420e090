"""The name of every image label pybase writes or reads: OCI's annotation keys and our own."""

from __future__ import annotations

OCI = "org.opencontainers.image."
TITLE = OCI + "title"
DESCRIPTION = OCI + "description"
VERSION = OCI + "version"
REVISION = OCI + "revision"
CREATED = OCI + "created"
SOURCE = OCI + "source"
LICENSES = OCI + "licenses"
VENDOR = OCI + "vendor"
BASE_NAME = OCI + "base.name"
BASE_DIGEST = OCI + "base.digest"

OURS = "org.python-base."
# A digest of everything an upstream image was made from: an image with the same one is reused.
RECIPE = OURS + "recipe"
# The Debian archive state a base was made from (debian_base).
ARCHIVE = OURS + "archive"
# The cached compiled CPython tree an assembled upstream image holds (cpython_build).
CPYTHON_TREE = OURS + "cpython-tree"
# The order of our builds, compared as text: `<build day YYYYMMDD>.<commit time, 11 digits>`
# (images.build_order). Publish never moves a rolling tag to an older build.
BUILD_ORDER = OURS + "build-order"

# Labels that change from build to build while the content stays: what the base brought is in
# its package versions, so its digest and archive state do not count. The publish fingerprint
# leaves them out.
VOLATILE = frozenset({CREATED, REVISION, VERSION, BASE_DIGEST, ARCHIVE, BUILD_ORDER})
