"""Where the project's files are: every module takes its paths from here, never from the
working directory, so commands work from any directory."""

from __future__ import annotations

from pathlib import Path

from pybase.core import settings

REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "reports"


def cache() -> Path:
    """Heavy results kept between runs (sources, tools, the local registry's data)."""
    return Path(settings.get(settings.CACHE) or Path.home() / ".cache" / "python-base")


def cache_dir() -> Path:
    """cache(), made if missing."""
    path = cache()
    path.mkdir(parents=True, exist_ok=True)
    return path


def report_name(ref: str) -> str:
    """`python-base:3.13.15-bookworm` -> `3.13.15-bookworm`: the local tag names every report and
    record of an image (test and audit records, SBOM, candidates)."""
    name = ref.rsplit("/", 1)[-1]
    tag = name.rpartition(":")[2] if ":" in name else name
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in tag)


def audit_records(reports: Path = REPORTS) -> Path:
    """Where `pybase audit --report-dir REPORTS` writes its per-image records (and the publish
    gate reads them)."""
    return reports / "audit"
