"""The venv's own pip is most of what we add (≈ 5.7 MB): measure a venv that shares the system
interpreter's pip instead, built as a bench-only image, beside the shipped one.

The alternative: `python3 -m venv --system-site-packages --without-pip` (the system site-packages
of the slim image hold only pip, and PIP_REQUIRE_VIRTUALENV keeps anything else out) plus the
`pip`, `pip3`, `pip3.X` scripts pip would install, pointing at the venv's interpreter, so that a
bare `pip` still installs into the venv instead of reaching the system one further down PATH.
Both images answer the same questions (pip_probe.py) as root, as downstream Dockerfiles use pip.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pybase.bench import sizes
from pybase.infra import engine

PROBE = Path(__file__).with_name("pip_probe.py")
BENCH_REPOSITORY = "pybase-bench/python-base"
# The shipped image's environment (PYTHONDONTWRITEBYTECODE keeps the system pip's .pyc files,
# written when pip first runs, out of the layer).
ENV = ("VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH LANG=C.UTF-8 PYTHONUNBUFFERED=1 "
       "PYTHONDONTWRITEBYTECODE=1 PYTHONFAULTHANDLER=1 PIP_NO_CACHE_DIR=1 "
       "PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_REQUIRE_VIRTUALENV=1 PIP_ROOT_USER_ACTION=ignore")
SHARED_VENV = r"""RUN set -eux; \
    python3 -m venv --system-site-packages --without-pip "$VIRTUAL_ENV"; \
    versioned="$(python3 -c 'import sys; print("pip%d.%d" % sys.version_info[:2])')"; \
    for name in pip pip3 "$versioned"; do \
        printf '#!%s/bin/python\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n' \
            "$VIRTUAL_ENV" > "$VIRTUAL_ENV/bin/$name"; \
        chmod 0755 "$VIRTUAL_ENV/bin/$name"; \
    done; \
    "$VIRTUAL_ENV/bin/pip" --version; \
    find "$VIRTUAL_ENV" -name '__pycache__' -type d -prune -exec rm -rf '{}' +
"""

Checks = dict[str, tuple[bool, str]]


@dataclass(frozen=True)
class PipShare:
    shipped: Checks
    shared: Checks
    shared_size: int  # the shared venv's layer, uncompressed
    shared_gzip: int


def probe(ref: str) -> Checks:
    result = engine.docker("run", "--rm", "--network", "none", "--user", "0", "--entrypoint",
                           "python3", ref, "-c", PROBE.read_text(encoding="utf-8"), capture=True)
    found: dict[str, list[object]] = json.loads(result.stdout)
    return {name: (bool(passed), str(detail)) for name, (passed, detail) in found.items()}


def measure(ref: str, upstream: str, key: str) -> PipShare:
    variant = f"{BENCH_REPOSITORY}:{key}-venv-shared"
    with tempfile.TemporaryDirectory(prefix="pybase-bench-venv-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(f"FROM {upstream}\nENV {ENV}\n{SHARED_VENV}",
                                              encoding="utf-8")
        engine.docker("build", "--quiet", "-t", variant, tmp, capture=True)
    try:
        measured = sizes.measure([variant, upstream])
        added = measured[variant].layers[len(measured[upstream].layers):]
        return PipShare(probe(ref), probe(variant), sum(layer.size for layer in added),
                        sum(layer.gzip for layer in added))
    finally:
        engine.docker("image", "rm", variant, capture=True, check=False)
