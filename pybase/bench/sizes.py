"""Image sizes as a registry sees them, and our overhead on the upstream image split by cause.

`docker save` gives every layer's tar (uncompressed) and the image config, whose history names
the Dockerfile step that made each layer. Each layer is gzip'd as `docker push` does it (gzip,
default level) to get what a registry stores; the result depends only on the layer's content, so
it is kept by diff id in the cache and a later run compresses only new layers.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybase.core import paths
from pybase.infra import engine
from pybase.upstream import payload

GZIP_LEVEL = 6  # Go's gzip.DefaultCompression, what the engine pushes with
UPGRADE = "OS upgrade"
# First match wins: the upgrade step also mentions apt-get, the SBOM step is a COPY.
CAUSES: tuple[tuple[str, str], ...] = (
    (payload.UPGRADE_STEP, UPGRADE),
    ("sbom.cdx.json", "SBOM"),
    ("-m venv", "venv"),
    ("env -u PYTHONDONTWRITEBYTECODE", "start-up bytecode"),
    ("cpython-lib", "libpython (build)"),
    ("--no-install-recommends tini", "tini"),
    ("useradd", "user, /app"),
    ("g++ gcc", "compilers (build)"),
    ("bash-completion", "dev tools"),
    ("pytest==", "dev tools"),
    ("build-info.json", "our files"),
    ("file_secrets", "our files"),
    ("python-base-entrypoint", "our files"),
)
OTHER = "anything else"


def classify(created_by: str) -> str:
    """The Dockerfile step (images/python-base/Dockerfile, sbom.embed) a history line names."""
    return next((cause for needle, cause in CAUSES if needle in created_by), OTHER)


@dataclass(frozen=True)
class Layer:
    diff_id: str
    created_by: str
    size: int   # bytes of the layer tar, uncompressed
    gzip: int   # bytes of that tar gzip'd: what a registry stores

    @property
    def cause(self) -> str:
        return classify(self.created_by)


@dataclass(frozen=True)
class ImageSize:
    ref: str
    engine_size: int  # what `docker images` shows: the files' bytes, uncompressed
    layers: list[Layer]

    @property
    def gzip(self) -> int:
        return sum(layer.gzip for layer in self.layers)


def pair_history(history: Sequence[Mapping[str, Any]], diff_ids: Sequence[str]) -> list[
        tuple[str, str]]:
    """(created_by, diff_id) for each layer: history lists every step, empty ones marked."""
    steps = [str(h.get("created_by") or "") for h in history if not h.get("empty_layer")]
    if len(steps) != len(diff_ids):
        raise engine.EngineError(f"image history has {len(steps)} layer steps for "
                                 f"{len(diff_ids)} layers")
    return list(zip(steps, diff_ids, strict=True))


def overhead(image: ImageSize, upstream: ImageSize) -> dict[str, tuple[int, int]]:
    """Bytes (uncompressed, gzip) that `image` adds on top of `upstream`, per cause."""
    base = [layer.diff_id for layer in upstream.layers]
    if [layer.diff_id for layer in image.layers[:len(base)]] != base:
        raise engine.EngineError(f"{image.ref} is not built on {upstream.ref}")
    causes: dict[str, tuple[int, int]] = {}
    for layer in image.layers[len(base):]:
        size, gz = causes.get(layer.cause, (0, 0))
        causes[layer.cause] = (size + layer.size, gz + layer.gzip)
    return causes


def measure(refs: Sequence[str]) -> dict[str, ImageSize]:
    """Sizes of the local images `refs`, from one `docker save` (shared layers written once)."""
    cache_file = paths.cache() / "bench" / "layer-sizes.json"
    cache: dict[str, tuple[int, int]] = {}
    if cache_file.is_file():
        cache = {str(k): (int(v[0]), int(v[1]))
                 for k, v in json.loads(cache_file.read_text()).items()}
    found: dict[str, ImageSize] = {}
    with tempfile.TemporaryDirectory(prefix="pybase-bench-save-") as tmp:
        archive = Path(tmp) / "images.tar"
        engine.docker("save", "-o", str(archive), *refs, capture=True)
        with tarfile.open(archive) as tar:
            for ref in refs:
                found[ref] = _image(tar, ref, cache)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
    return found


def _image(tar: tarfile.TarFile, ref: str, cache: dict[str, tuple[int, int]]) -> ImageSize:
    inspected = engine.inspect(ref)
    if inspected is None:
        raise engine.EngineError(f"image {ref} is missing: run `nox -s build` first")
    manifest = json.loads(_read(tar, "manifest.json"))
    entry = next(m for m in manifest if m["Config"].removesuffix(".json").endswith(
        inspected.id.removeprefix("sha256:")))
    config = json.loads(_read(tar, entry["Config"]))
    steps = pair_history(config.get("history") or [], config["rootfs"]["diff_ids"])
    layers = []
    for (created_by, diff_id), member in zip(steps, entry["Layers"], strict=True):
        if diff_id not in cache:
            cache[diff_id] = _sizes(tar, member, diff_id)
        layers.append(Layer(diff_id, created_by, *cache[diff_id]))
    return ImageSize(ref, inspected.size, layers)


def _read(tar: tarfile.TarFile, name: str) -> bytes:
    stream = tar.extractfile(name)
    if stream is None:
        raise engine.EngineError(f"docker save wrote no {name}")
    return stream.read()


def _sizes(tar: tarfile.TarFile, member: str, diff_id: str) -> tuple[int, int]:
    """(uncompressed, gzip) bytes of one layer tar. Read, not taken from the member's header:
    docker save writes a layer that two images share once and links the other to it."""
    # The cache is keyed by diff id, so the pairing of tar and diff id is checked, not trusted.
    stream = tar.extractfile(member)
    if stream is None:
        raise engine.EngineError(f"docker save wrote no {member}")
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip framing
    size = compressed = 0
    digest = hashlib.sha256()
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
        compressed += len(compressor.compress(chunk))
    if f"sha256:{digest.hexdigest()}" != diff_id:
        raise engine.EngineError(f"docker save: {member} is not layer {diff_id}")
    return size, compressed + len(compressor.flush())
