"""Runs images/python-base/files/python-base-healthcheck against a local http.server."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SCRIPT = (
    Path(__file__).resolve().parents[2]
    / "images"
    / "python-base"
    / "files"
    / "python-base-healthcheck"
)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = {"/": 200, "/fail": 500, "/missing": 404, "/moved": 302}.get(
            self.path.split("?")[0], 200
        )
        if self.path == "/slow":
            time.sleep(3)
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "http://elsewhere.invalid/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def check(**env: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-I", str(SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert out.count("\n") == 1, out  # one line for docker's health log
    return proc.returncode, out.strip()


def test_healthy(port: int) -> None:
    assert check(HEALTHCHECK_PORT=str(port)) == (
        0,
        f"healthy: GET http://127.0.0.1:{port}/ -> 200",
    )


def test_redirect_is_healthy_and_not_followed(port: int) -> None:
    code, out = check(HEALTHCHECK_PORT=str(port), HEALTHCHECK_PATH="/moved")
    assert (code, out.endswith("-> 302")) == (0, True)


@pytest.mark.parametrize("path", ["/fail", "/missing"])
def test_error_status_is_unhealthy(port: int, path: str) -> None:
    code, out = check(HEALTHCHECK_URL=f"http://127.0.0.1:{port}{path}?x=1")
    assert code == 1
    assert (
        out
        == f"unhealthy: GET http://127.0.0.1:{port}{path}?x=1 -> {path == '/fail' and 500 or 404}"
    )


def test_url_wins_over_port(port: int) -> None:
    code, _ = check(HEALTHCHECK_URL=f"http://localhost:{port}/", HEALTHCHECK_PORT="1")
    assert code == 0


def test_closed_port_is_unhealthy() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    code, out = check(HEALTHCHECK_PORT=str(free))
    assert code == 1 and out.endswith("Connection refused"), out


def test_timeout(port: int) -> None:
    code, out = check(
        HEALTHCHECK_PORT=str(port), HEALTHCHECK_PATH="/slow", HEALTHCHECK_TIMEOUT="0.5"
    )
    assert code == 1 and out.endswith("no answer within 0.5s"), out


def test_silent_listener_times_out() -> None:
    # Accepts the connection (backlog) but never answers.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        code, out = check(HEALTHCHECK_PORT=str(sock.getsockname()[1]), HEALTHCHECK_TIMEOUT="0.3")
    assert code == 1 and "no answer within 0.3s" in out


def test_not_http() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()

        def answer() -> None:
            conn, _ = sock.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"SSH-2.0-OpenSSH\r\n")

        threading.Thread(target=answer, daemon=True).start()
        code, out = check(HEALTHCHECK_PORT=str(sock.getsockname()[1]))
    assert code == 1 and "not an HTTP response" in out


def test_disabled() -> None:
    assert check(HEALTHCHECK_DISABLE="1", HEALTHCHECK_PORT="nonsense") == (
        0,
        "healthcheck disabled (HEALTHCHECK_DISABLE=1)",
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"HEALTHCHECK_PORT": "http"}, "HEALTHCHECK_PORT"),
        ({"HEALTHCHECK_PORT": "70000"}, "HEALTHCHECK_PORT"),
        ({"HEALTHCHECK_TIMEOUT": "soon"}, "HEALTHCHECK_TIMEOUT"),
        ({"HEALTHCHECK_TIMEOUT": "0"}, "HEALTHCHECK_TIMEOUT"),
        ({"HEALTHCHECK_TIMEOUT": "nan"}, "HEALTHCHECK_TIMEOUT"),
        ({"HEALTHCHECK_URL": "ftp://127.0.0.1/"}, "HEALTHCHECK_URL"),
        ({"HEALTHCHECK_URL": "127.0.0.1:8000"}, "HEALTHCHECK_URL"),
        ({"HEALTHCHECK_URL": "http://127.0.0.1:99999/"}, "HEALTHCHECK_URL"),
        ({"HEALTHCHECK_PATH": "health"}, "HEALTHCHECK_PATH"),
    ],
)
def test_bad_config(env: dict[str, str], variable: str) -> None:
    code, out = check(**env)
    assert code == 1
    assert out.startswith(f"unhealthy: bad configuration: {variable}="), out


@pytest.mark.parametrize(
    ("variable", "value", "shown"),
    [
        ("HEALTHCHECK_URL", "http://user:{pw}@127.0.0.1:{port}/", "GET http://user:***@127.0.0.1:"),
        ("HEALTHCHECK_URL", "http://user:{pw}@127.0.0.1:{port}/fail?q=a@b", "user:***@127.0.0.1"),
        ("HEALTHCHECK_URL", "http://{pw}@127.0.0.1:{port}/", "http://***@127.0.0.1"),  # a token
        ("HEALTHCHECK_URL", "http://user:{pw}@127.0.0.1:{closed}/", "user:***@127.0.0.1"),
        ("HEALTHCHECK_URL", "ftp://user:{pw}@127.0.0.1/", "'ftp://user:***@127.0.0.1/'"),
        ("HEALTHCHECK_URL", "http://user:{pw}@127.0.0.1:99999/", "user:***@127.0.0.1:99999/"),
        ("HEALTHCHECK_URL", "user:{pw}@127.0.0.1:8000", "'user:***@127.0.0.1:8000'"),
        ("HEALTHCHECK_HOST", "user:{pw}@127.0.0.1", "'user:***@127.0.0.1'"),
    ],
    ids=["healthy", "unhealthy", "token", "refused", "bad-scheme", "bad-port", "no-scheme", "host"],
)
def test_credentials_are_never_printed(port: int, variable: str, value: str, shown: str) -> None:
    # The probe's output lands in `docker inspect`'s health log.
    secret = "s3cr3t-pw"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    fill = {"pw": secret, "port": port, "closed": closed}
    _, out = check(**{variable: value.format(**fill)})
    assert secret not in out
    assert shown.format(**fill) in out, out


def test_https_self_signed(tmp_path: Path) -> None:
    # Certificates of the app's own port rarely match 127.0.0.1; the probe must not care.
    import shutil
    import ssl

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=app.example", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/fail"
        assert check(HEALTHCHECK_URL=url) == (1, f"unhealthy: GET {url} -> 500")
    finally:
        server.shutdown()
        server.server_close()
