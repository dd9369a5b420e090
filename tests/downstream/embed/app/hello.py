"""A WSGI app served by uWSGI, which embeds the interpreter (tests/downstream/embed)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any


def application(environ: dict[str, Any],
                start_response: Callable[[str, list[tuple[str, str]]], Any]) -> Iterable[bytes]:
    import uwsgi  # type: ignore[import-untyped]  # only inside the uWSGI process embedding us

    body = json.dumps({
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "executable": sys.executable,
        "uwsgi": uwsgi.version.decode(),
        "path": environ["PATH_INFO"],
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
