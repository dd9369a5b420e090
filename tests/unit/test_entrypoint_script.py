"""Runs images/python-base/files/python-base-entrypoint with /bin/sh (dash on Debian)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from image_files import FILES, load_file_secrets, without_root_file_access

from pybase.infra import host

SCRIPT = FILES / "python-base-entrypoint"
SECRET = "s3cr3t-do-not-print"
PREFIX = "python-base-entrypoint: error: "
# The image runs it with Debian's /bin/sh, which is dash; test with dash itself.
SH = host.program("dash")


file_secrets = load_file_secrets()


def run(
    env: dict[str, str], *cmd: str, pre: list[str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the entrypoint with exactly `env` (plus PATH); default CMD dumps the env."""
    return subprocess.run(
        [*(pre or []), SH, str(SCRIPT), *(cmd or ("env", "-0"))],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        check=False,
        timeout=60,
    )


def child_env(proc: subprocess.CompletedProcess[bytes]) -> dict[bytes, bytes]:
    assert proc.returncode == 0, proc.stderr
    pairs = (item.split(b"=", 1) for item in proc.stdout.split(b"\0") if item)
    env = {k: v for k, v in pairs}
    env.pop(b"PWD", None)  # dash exports PWD by itself
    return env


def secret(d: Path, data: bytes, name: str = "secret") -> str:
    path = d / name
    path.write_bytes(data)
    return str(path)


def test_value_from_file_one_newline_removed(tmp_path: Path) -> None:
    env = child_env(run({"DB_PASSWORD_FILE": secret(tmp_path, b"pw\n\n")}))
    assert env[b"DB_PASSWORD"] == b"pw\n"
    assert b"DB_PASSWORD_FILE" not in env


def test_multiple_files_and_untouched_rest(tmp_path: Path) -> None:
    env = child_env(
        run(
            {
                "A_FILE": secret(tmp_path, b"one", "a"),
                "B_FILE": secret(tmp_path, b"two\n", "b"),
                "KEEP": "k",
            }
        )
    )
    assert env == {b"PATH": b"/usr/bin:/bin", b"A": b"one", b"B": b"two", b"KEEP": b"k"}


def test_special_characters_byte_exact(tmp_path: Path) -> None:
    raw = "sp ace 'q' \"dq\" $HOME ${X} \\n \\ `id` $(id) * é 日本\r\n\tx".encode() + b"\xff\xfe"
    assert child_env(run({"X_FILE": secret(tmp_path, raw + b"\n")}))[b"X"] == raw


def test_large_value(tmp_path: Path) -> None:
    raw = (b"0123456789abcdef" * 63 + b"\n") * 100  # ~100 KiB, many lines
    assert child_env(run({"BIG_FILE": secret(tmp_path, raw + b"\n")}))[b"BIG"] == raw


def test_large_unrelated_variable_is_left_alone(tmp_path: Path) -> None:
    # A ~120 KiB line (the kernel caps one variable at 128 KiB) that even
    # contains _FILE=: parsed correctly, and within run()'s bounded wait.
    big = "x_FILE=" + "y" * 120_000
    env = child_env(run({"HUGE": big, "A_FILE": secret(tmp_path, b"v")}))
    assert env[b"HUGE"] == big.encode() and env[b"A"] == b"v"


def test_look_alike_lines_inside_values_are_ignored() -> None:
    tricky = "line\nexport FAKE_FILE=/nonexistent\nexport  X_FILE='/x'"
    assert child_env(run({"M": tricky}))[b"M"] == tricky.encode()


def test_no_file_variables_passes_environment_through() -> None:
    assert child_env(run({"A": "1", "B": "two words"})) == {
        b"PATH": b"/usr/bin:/bin",
        b"A": b"1",
        b"B": b"two words",
    }


def test_default_ignore_and_override(tmp_path: Path) -> None:
    path = secret(tmp_path, b"pem")
    env = child_env(run({"SSL_CERT_FILE": path, "AWS_WEB_IDENTITY_TOKEN_FILE": path}))
    assert env[b"SSL_CERT_FILE"] == path.encode() and b"SSL_CERT" not in env
    env = child_env(run({"SSL_CERT_FILE": path, "PYTHON_BASE_SECRETS_IGNORE": "X_FILE  Y"}))
    assert env[b"SSL_CERT"] == b"pem" and b"SSL_CERT_FILE" not in env
    env = child_env(run({"A_FILE": path, "PYTHON_BASE_SECRETS_IGNORE": "A"}))
    assert env[b"A_FILE"] == path.encode()


def test_allow_empty(tmp_path: Path) -> None:
    env = {"A_FILE": secret(tmp_path, b"\n"), "PYTHON_BASE_SECRETS_ALLOW_EMPTY": "Z A"}
    assert child_env(run(env))[b"A"] == b""


def expect_error(env: dict[str, str], variable: str, reason: str, **kw: list[str]) -> None:
    proc = run(env, "sh", "-c", "echo CMD-RAN", **kw)
    assert proc.returncode == 78
    assert proc.stdout == b""  # the CMD never started
    err = proc.stderr.decode()
    assert err.startswith(f"{PREFIX}{variable}=") and err.count("\n") == 1, err
    assert err.rstrip("\n").endswith(f": {reason}"), err
    assert SECRET.encode() not in proc.stdout + proc.stderr


def parity(env: dict[str, str]) -> None:
    """The shell and file_secrets.py must reject with the same message."""
    with pytest.raises(file_secrets.SecretFileError) as info:
        file_secrets.load(dict(env))
    assert run(env).stderr.decode() == f"{PREFIX}{info.value}\n"


def test_both_set(tmp_path: Path) -> None:
    env = {"A": SECRET, "A_FILE": secret(tmp_path, SECRET.encode())}
    expect_error(env, "A_FILE", "A is also set; set only one of A and A_FILE")
    parity(env)


def test_conflict_with_another_file_variable(tmp_path: Path) -> None:
    path = secret(tmp_path, SECRET.encode())
    env = {"A_FILE": path, "A_FILE_FILE": path}
    expect_error(env, "A_FILE_FILE", "A_FILE is also set; set only one of A_FILE and A_FILE_FILE")
    parity(env)


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("", "path is empty"),
        ("missing", "no such file"),
        ("dir", "is a directory"),
        ("dangling", "dangling symbolic link"),
        ("/dev/null", "not a regular file"),
        ("empty", "file is empty (list A in PYTHON_BASE_SECRETS_ALLOW_EMPTY to allow)"),
        ("newline", "file is empty (list A in PYTHON_BASE_SECRETS_ALLOW_EMPTY to allow)"),
        ("nul", "contains a NUL byte, which an environment variable cannot hold"),
    ],
)
def test_bad_secret_files(tmp_path: Path, where: str, reason: str) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "newline").write_bytes(b"\n")
    (tmp_path / "nul").write_bytes(SECRET.encode() + b"\0" + SECRET.encode())
    path = where if where in ("", "/dev/null") else str(tmp_path / where)
    env = {"A_FILE": path, "OK_FILE": secret(tmp_path, SECRET.encode(), "ok")}
    expect_error(env, "A_FILE", reason)
    parity(env)


# Linux execs with no environment string ("X=" + value + NUL) over 128 KiB.
X_LIMIT = 128 * 1024 - len("X=") - 1
BIG = {
    "at-the-limit": (b"a" * X_LIMIT, True),
    "at-the-limit-plus-newline": (b"a" * X_LIMIT + b"\n", True),  # that newline is dropped
    "one-byte-over": (b"a" * (X_LIMIT + 1), False),
    "one-byte-over-plus-newline": (b"a" * (X_LIMIT + 1) + b"\n", False),
    "13-MiB": (b"a" * (13 << 20), False),
}


@pytest.mark.parametrize(("content", "fits"), BIG.values(), ids=BIG.keys())
def test_file_too_large_for_the_environment(tmp_path: Path, content: bytes, fits: bool) -> None:
    env = {"X_FILE": secret(tmp_path, content)}
    if fits:
        assert child_env(run(env))[b"X"] == content.removesuffix(b"\n")
        return
    expect_error(env, "X_FILE", f"file is {len(content)} bytes, more than the {X_LIMIT} bytes X "
                 "can hold (Linux limits one NAME=value to 128 KiB); read the file in the app "
                 "instead")
    parity(env)


def test_unreadable_file(tmp_path: Path) -> None:
    path = secret(tmp_path, SECRET.encode())
    os.chmod(path, 0)
    expect_error({"A_FILE": path}, "A_FILE", "permission denied", pre=without_root_file_access())


def test_exit_code_propagates_and_cmd_replaces_shell() -> None:
    assert run({}, "sh", "-c", "exit 7").returncode == 7
    proc = subprocess.Popen(
        [SH, str(SCRIPT), "sh", "-c", "echo $$"],
        env={"PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
    )
    out, _ = proc.communicate(timeout=30)
    assert int(out) == proc.pid  # exec, not a child process


def test_command_not_found() -> None:
    assert run({}, "/nonexistent/cmd").returncode == 127


def test_no_command_is_a_usage_error() -> None:
    proc = subprocess.run(
        [SH, str(SCRIPT)], env={"PATH": "/usr/bin:/bin"}, capture_output=True, check=False
    )
    assert proc.returncode == 64
    assert proc.stderr.startswith(b"python-base-entrypoint: error: no command given")


def test_build_info(tmp_path: Path) -> None:
    info = secret(tmp_path, b'{"python": "3.13.1", "debian": "trixie"}\n', "build-info.json")
    on = {"PYTHON_BASE_LOG_BUILD_INFO": "1", "PYTHON_BASE_BUILD_INFO": info}
    proc = run(on, "true")
    assert (proc.returncode, proc.stderr) == (
        0,
        b'python-base: {"python": "3.13.1", "debian": "trixie"}\n',
    )
    assert run({"PYTHON_BASE_BUILD_INFO": info}, "true").stderr == b""
    missing = run({**on, "PYTHON_BASE_BUILD_INFO": str(tmp_path / "nope")}, "true")
    assert missing.returncode == 0 and missing.stderr.count(b"\n") == 1
    assert missing.stderr.startswith(b"python-base: build info unavailable")


def test_shellcheck_clean() -> None:
    proc = subprocess.run(
        [host.program("shellcheck"), "-s", "sh", str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout
