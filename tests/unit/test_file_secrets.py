"""Unit tests for images/python-base/files/file_secrets.py (no image needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from image_files import FILES, load_file_secrets, without_root_file_access

fs = load_file_secrets()
SECRET = "s3cr3t-do-not-print"


def _secret(tmp_path: Path, data: bytes, name: str = "secret") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_loads_value_strips_one_newline_and_unsets(tmp_path: Path) -> None:
    env = {"DB_PASSWORD_FILE": _secret(tmp_path, b"pw\n\n"), "OTHER": "x"}
    assert fs.load(env) == ["DB_PASSWORD"]
    assert env == {"DB_PASSWORD": "pw\n", "OTHER": "x"}


def test_value_without_trailing_newline_is_kept(tmp_path: Path) -> None:
    env = {"A_FILE": _secret(tmp_path, b"pw")}
    fs.load(env)
    assert env == {"A": "pw"}


def test_multiple_files(tmp_path: Path) -> None:
    env = {
        "B_FILE": _secret(tmp_path, b"two\n", "b"),
        "A_FILE": _secret(tmp_path, b"one\n", "a"),
    }
    assert fs.load(env) == ["A", "B"]
    assert env == {"A": "one", "B": "two"}


def test_arbitrary_bytes_survive(tmp_path: Path) -> None:
    raw = "sp ace 'q' \"dq\" $HOME \\n `x` é 日本\t\n".encode() + b"\xff\xfe" + b"z" * 70_000
    env = {"X_FILE": _secret(tmp_path, raw)}
    fs.load(env)
    assert env["X"].encode("utf-8", "surrogateescape") == raw


def test_default_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.endswith("_FILE")]:  # the host's own, e.g. tool configs
        monkeypatch.delenv(var)
    monkeypatch.setenv("FS_TEST_TOKEN_FILE", _secret(tmp_path, b"tok\n"))
    monkeypatch.delenv("FS_TEST_TOKEN", raising=False)
    assert "FS_TEST_TOKEN" in fs.load()
    assert os.environ["FS_TEST_TOKEN"] == "tok"
    assert "FS_TEST_TOKEN_FILE" not in os.environ
    monkeypatch.delenv("FS_TEST_TOKEN")


def test_default_ignore_list_and_override(tmp_path: Path) -> None:
    path = _secret(tmp_path, b"pem\n")
    env = {"SSL_CERT_FILE": path, "AWS_WEB_IDENTITY_TOKEN_FILE": path}
    assert fs.load(env) == []
    env["PYTHON_BASE_SECRETS_IGNORE"] = "AWS_WEB_IDENTITY_TOKEN_FILE"
    assert fs.load(env) == ["SSL_CERT"]


def test_ignore_accepts_name_or_name_file(tmp_path: Path) -> None:
    path = _secret(tmp_path, b"v")
    env = {"A_FILE": path, "B_FILE": path, "PYTHON_BASE_SECRETS_IGNORE": " A\tB_FILE "}
    assert fs.load(env) == []


def test_names_that_are_not_identifiers_are_skipped(tmp_path: Path) -> None:
    path = _secret(tmp_path, b"v")
    env = {"_FILE": path, "1X_FILE": path, "my-var_FILE": path, "Ä_FILE": path}
    assert fs.load(env) == []


def _error(env: dict[str, str]) -> tuple[str, str]:
    before = dict(env)
    with pytest.raises(fs.SecretFileError) as info:
        fs.load(env)
    assert env == before, "a failed load must not change the environment"
    assert SECRET not in str(info.value)
    return info.value.variable, info.value.reason


def test_both_set(tmp_path: Path) -> None:
    env = {"A": SECRET, "A_FILE": _secret(tmp_path, b"x")}
    assert _error(env) == ("A_FILE", "A is also set; set only one of A and A_FILE")


def test_conflict_with_another_file_variable(tmp_path: Path) -> None:
    path = _secret(tmp_path, b"x")
    env = {"A_FILE": path, "A_FILE_FILE": path}
    assert _error(env)[0] == "A_FILE_FILE"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: "", "path is empty"),
        (lambda d: str(d / "missing"), "no such file"),
        (lambda d: str(d / "missing" / "deeper"), "no such file"),
        (lambda d: str(d), "is a directory"),
        (lambda d: "/dev/null", "not a regular file"),
    ],
)
def test_bad_paths(tmp_path: Path, make: Callable[[Path], str], reason: str) -> None:
    env = {"A_FILE": make(tmp_path)}
    assert _error(env) == ("A_FILE", reason)
    with pytest.raises(fs.SecretFileError) as info:
        fs.load(env)
    assert str(info.value) == f"A_FILE={env['A_FILE']}: {reason}"


def test_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    assert _error({"A_FILE": str(link)}) == ("A_FILE", "dangling symbolic link")


def test_symlink_to_file_is_followed(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(_secret(tmp_path, b"v\n"))
    env = {"A_FILE": str(link)}
    fs.load(env)
    assert env == {"A": "v"}


def test_empty_file_and_allow_empty(tmp_path: Path) -> None:
    for data in (b"", b"\n"):
        env = {"A_FILE": _secret(tmp_path, data)}
        assert _error(env)[1].startswith("file is empty")
        env["PYTHON_BASE_SECRETS_ALLOW_EMPTY"] = "OTHER A"
        fs.load(env)
        assert env["A"] == ""


def test_nul_byte(tmp_path: Path) -> None:
    env = {"A_FILE": _secret(tmp_path, SECRET.encode() + b"\0x")}
    assert "NUL" in _error(env)[1]


def test_file_too_large_for_the_environment(tmp_path: Path) -> None:
    limit = fs.MAX_ENV_STRING - len("LONG_NAME=") - 1
    env = {"LONG_NAME_FILE": _secret(tmp_path, b"a" * limit + b"\n")}
    assert fs.load(env) == ["LONG_NAME"] and len(env["LONG_NAME"]) == limit
    for size in (limit + 1, 13 << 20):
        env = {"LONG_NAME_FILE": _secret(tmp_path, b"a" * size)}
        assert _error(env) == ("LONG_NAME_FILE", (
            f"file is {size} bytes, more than the {limit} bytes LONG_NAME can hold (Linux limits "
            "one NAME=value to 128 KiB); read the file in the app instead"))


def test_cli_refuses_a_file_too_large_for_exec(tmp_path: Path) -> None:
    # Without the check, exec fails: "Argument list too long", exit 126.
    proc = _cli(["true"], {"A_FILE": _secret(tmp_path, b"a" * (13 << 20))})
    assert proc.returncode == 78
    assert proc.stderr.startswith("file_secrets: error: A_FILE=") and proc.stderr.count("\n") == 1
    assert "read the file in the app instead" in proc.stderr


def test_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET)
    path.chmod(0)
    code = f"import file_secrets as f; f.load({{'A_FILE': {str(path)!r}}})"
    proc = subprocess.run(
        [*without_root_file_access(), sys.executable, "-c", code],
        env={"PYTHONPATH": str(FILES), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "SecretFileError: A_FILE=" in proc.stderr
    assert proc.stderr.rstrip().endswith(": permission denied")
    assert SECRET not in proc.stderr


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(FILES), **env}
    full_env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "file_secrets", *args],
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_loads_and_execs(tmp_path: Path) -> None:
    code = "import os, sys; print(os.environ['A']); sys.exit('A_FILE' in os.environ and 9 or 5)"
    proc = _cli([sys.executable, "-c", code], {"A_FILE": _secret(tmp_path, b"val\n")})
    assert (proc.returncode, proc.stdout) == (5, "val\n")


def test_cli_error_exits_78_without_value(tmp_path: Path) -> None:
    proc = _cli(["true"], {"A": SECRET, "A_FILE": _secret(tmp_path, SECRET.encode())})
    assert proc.returncode == 78
    assert proc.stderr.startswith("file_secrets: error: A_FILE=")
    assert proc.stderr.count("\n") == 1
    assert SECRET not in proc.stdout + proc.stderr


def test_cli_usage_and_missing_command() -> None:
    assert _cli([], {}).returncode == 64
    proc = _cli(["/nonexistent/cmd"], {})
    assert proc.returncode == 127
    assert "cannot run /nonexistent/cmd" in proc.stderr


def test_importing_it_loads_nothing_a_start_has_not_loaded_already() -> None:
    # `python -m file_secrets` runs before every app that uses it: any module it imports at
    # run time (collections for its annotations' names was ~1.2 ms) is paid on each start.
    # What a start has loaded is what `site` leaves in sys.modules (os, stat, ...).
    probe = ("import sys; before = set(sys.modules); sys.path.insert(0, sys.argv[1]); "
             "import file_secrets; print(' '.join(sorted(set(sys.modules) - before)))")
    result = subprocess.run([sys.executable, "-I", "-c", probe, str(FILES)],
                            capture_output=True, text=True, check=True)
    assert set(result.stdout.split()) <= {"file_secrets", "__future__"}, result.stdout
