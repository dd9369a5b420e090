"""Where pip-audit gets its vulnerability data: an offline OSV database served on 127.0.0.1
(pybase.verify.osv_server), or an online service."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pybase.core import settings
from pybase.verify import osv, osv_server
from pybase.verify.audit.report import AuditError

_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


@dataclass(frozen=True)
class SourceChoice:
    """Where pip-audit gets its data: an offline database, or an online service."""

    advisory_db: Path | None = None
    service: str = "pypi"
    osv_url: str | None = None

    @property
    def offline(self) -> bool:
        return self.advisory_db is not None


def choose_source(advisory_db: Path | None, service: str | None, osv_url: str | None,
                  environ: dict[str, str] | None = None) -> SourceChoice:
    """--advisory-db wins; an explicit --service/--osv-url means online; then $PYTHON_BASE_ADVISORY_DB;
    then the online PyPI service."""
    if advisory_db is not None:
        if service is not None or osv_url is not None:
            raise AuditError("--advisory-db (offline) and --service/--osv-url (online) exclude "
                             "each other")
        return SourceChoice(advisory_db=advisory_db)
    if osv_url is not None:
        if service not in (None, "osv"):
            raise AuditError(f"--osv-url needs --service osv, not {service}")
        return SourceChoice(service="osv", osv_url=osv_url)
    if service is not None:
        return SourceChoice(service=service)
    configured = settings.advisory_db(environ)
    if configured:
        return SourceChoice(advisory_db=Path(configured[1]))
    return SourceChoice(service="pypi")


@dataclass(frozen=True)
class VulnerabilitySource:
    description: str
    args: list[str]
    env: dict[str, str]


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


@functools.lru_cache(maxsize=2)
def _cached_database(path: str, mtime_ns: int, size: int) -> osv.OsvDatabase:
    try:
        return osv.load_database(Path(path))
    except osv.OsvError as exc:
        raise AuditError(f"advisory database: {exc}") from None


def _load_database(path: Path) -> osv.OsvDatabase:
    """Read once per process (2 s for the PyPA snapshot), again if the file changes."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise AuditError(f"advisory database {path}: {exc.strerror}; expected an OSV directory, "
                         ".zip or .tar.gz") from None
    return _cached_database(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@contextmanager
def vulnerability_source(choice: SourceChoice) -> Iterator[VulnerabilitySource]:
    """pip-audit arguments for `choice`; an offline database is served for the duration."""
    if choice.advisory_db is None:
        args = ["-s", choice.service]
        if choice.osv_url:
            args += ["--osv-url", choice.osv_url]
        where = f" at {choice.osv_url}" if choice.osv_url else ""
        yield VulnerabilitySource(f"online {choice.service} service{where}", args,
                                  dict(os.environ))
        return
    db = _load_database(choice.advisory_db)
    if len(db) == 0:
        raise AuditError(f"advisory database {choice.advisory_db}: no advisories in it; an empty "
                         "database would pass everything")
    with osv_server.serve(db) as url:
        yield VulnerabilitySource(
            f"offline OSV database {choice.advisory_db} ({len(db)} advisories)",
            ["-s", "osv", "--osv-url", url], _offline_env())


