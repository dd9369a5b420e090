"""A local, read-only OSV API endpoint so pip-audit can audit offline against an OsvDatabase.

pip-audit (`-s osv --osv-url URL`) POSTs `{"package": {"name", "ecosystem"}, "version"}` to
URL itself, one request per dependency, and reads `{"vulns": [record, ...]}`; an empty
object means "no vulnerabilities", as on the public API. It never uses /v1/querybatch, so
neither do we: this serves exactly the one route the audit gate needs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pybase.verify.osv import ECOSYSTEM, OsvDatabase

__all__ = ["QUERY_PATH", "serve"]

QUERY_PATH = "/v1/query"
_MAX_BODY = 64 * 1024  # a query is ~100 bytes; refuse to buffer anything large


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client must not keep the audit process alive

    def __init__(self, address: tuple[str, int], db: OsvDatabase) -> None:
        super().__init__(address, _Handler)
        self.db = db


class _BadRequest(Exception):
    pass


def _for_pip_audit(record: dict[str, Any]) -> dict[str, Any]:
    """Adjust a record copy to what pip-audit's parser can digest.

    pip-audit compares `affected[].package.name` with the canonical name literally (records
    such as `jw.util` would lose their fix versions) and crashes on a `fixed` value that is
    not PEP 440 (`2019-09-12` exists in the PyPA data). Matching already happened here, so
    this only shapes the report.
    """
    for affected in record.get("affected", []):
        package = affected.get("package") or {}
        if package.get("ecosystem") == ECOSYSTEM and isinstance(package.get("name"), str):
            package["name"] = canonicalize_name(package["name"])
        for range_ in affected.get("ranges", []):
            if range_.get("type") == "ECOSYSTEM":
                range_["events"] = [e for e in range_.get("events", []) if _fixed_ok(e)]
    return record


def _fixed_ok(event: dict[str, str]) -> bool:
    try:
        Version(event.get("fixed", "0"))
    except InvalidVersion:
        return False
    return True


def _parse_query(body: bytes) -> tuple[str, str, str]:
    try:
        query = json.loads(body)
    except ValueError as exc:
        raise _BadRequest(f"body is not JSON: {exc}") from None
    package = query.get("package") if isinstance(query, dict) else None
    if not isinstance(package, dict):
        raise _BadRequest('expected {"package": {"name": ..., "ecosystem": ...}, "version": ...}')
    name, ecosystem, version = package.get("name"), package.get("ecosystem"), query.get("version")
    if not all(isinstance(value, str) and value for value in (name, ecosystem, version)):
        raise _BadRequest("package.name, package.ecosystem and version must be non-empty strings")
    return str(name), str(ecosystem), str(version)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: pip-audit sends one request per dependency

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != QUERY_PATH:
            self._reply(404, {"error": f"unknown path {self.path}; only POST {QUERY_PATH}"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
            if not 0 < length <= _MAX_BODY:
                raise ValueError
        except ValueError:
            self._reply(400, {"error": f"need a Content-Length between 1 and {_MAX_BODY}"})
            return
        try:
            name, ecosystem, version = _parse_query(self.rfile.read(length))
        except _BadRequest as exc:
            self._reply(400, {"error": str(exc)})
            return
        # Other ecosystems are simply not in this database, which is "no vulnerabilities".
        vulns = self.server.db.query(name, version) if ecosystem == ECOSYSTEM else []
        self._reply(200, {"vulns": [_for_pip_audit(v) for v in vulns]} if vulns else {})

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == QUERY_PATH:
            self._reply(405, {"error": f"use POST {QUERY_PATH}"}, allow="POST")
        else:
            self._reply(404, {"error": f"unknown path {self.path}; only POST {QUERY_PATH}"})

    def _reply(self, status: int, payload: dict[str, Any], allow: str | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        if status >= 400:
            # The request body may be unread; reusing the connection would misparse it.
            self.close_connection = True
            self.send_header("Connection", "close")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if allow:
            self.send_header("Allow", allow)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # audit output must stay readable; errors reach the client as JSON instead


@contextmanager
def serve(db: OsvDatabase, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `db` in a background thread; yield the URL to pass to `pip-audit --osv-url`.

    pip-audit posts to that URL verbatim, so it is the full query endpoint, not a base.
    Port 0 lets the OS pick a free port, so parallel test runs cannot collide. IPv4 only.
    """
    server = _Server((host, port), db)
    # A short poll interval keeps shutdown() (which waits for the next poll) near-instant.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="osv-server", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}{QUERY_PATH}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
