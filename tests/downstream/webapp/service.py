"""A small downstream web service on python-base (tests/image/test_downstream.py builds and runs it).

  GET /healthz      200 {"status": "ok"}: the image's HEALTHCHECK probes it (HEALTHCHECK_PATH)
  GET /             200: the service's name and the bottle version
  GET /api/whoami   needs "Authorization: Bearer <APP_TOKEN>"; 401 otherwise

APP_TOKEN is never baked into the image: the operator mounts it as a file (Compose/Swarm:
/run/secrets/app_token) and sets APP_TOKEN_FILE; the base image's entrypoint turns that into
APP_TOKEN before this process starts.
"""

from __future__ import annotations

import hmac
import os
import sys
from typing import Any

import bottle

EX_CONFIG = 78

app = bottle.Bottle()


def _token() -> bytes:
    return os.environ.get("APP_TOKEN", "").encode("utf-8", "surrogateescape")


@app.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@app.get("/")
def index() -> dict[str, Any]:
    return {"service": "webapp", "bottle": bottle.__version__}


@app.get("/api/whoami")
def whoami() -> dict[str, Any]:
    scheme, _, presented = bottle.request.get_header("Authorization", "").partition(" ")
    # WSGI hands headers over as latin-1 text; compare bytes in constant time.
    given = presented.strip().encode("latin-1", "replace")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given, _token()):
        bottle.response.status = 401
        bottle.response.set_header("WWW-Authenticate", 'Bearer realm="webapp"')
        return {"error": "unauthorized"}
    return {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid()}


def main() -> int:
    if not _token():
        print("service: error: set APP_TOKEN_FILE (or APP_TOKEN)", file=sys.stderr)
        return EX_CONFIG
    port = int(os.environ.get("PORT", "8000"))
    print(f"service: listening on 0.0.0.0:{port} as uid {os.getuid()}", file=sys.stderr)
    bottle.run(app, host="0.0.0.0", port=port, quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
