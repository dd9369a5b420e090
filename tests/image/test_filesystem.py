"""What is, and is not, on the filesystem."""

from __future__ import annotations

from typing import Any

from support import Image, pyc_written


def test_no_setuid_or_setgid_files(root_host: Any) -> None:
    found = root_host.check_output("find / -xdev -type f -perm /6000 -print")
    assert found == ""


def test_no_tests_or_static_libraries(host: Any) -> None:
    found = host.check_output(
        "find /usr/local /opt/venv \\( -name '*.pyo' -o -name 'libpython*.a' "
        "-o \\( -type d \\( -name test -o -name tests -o -name idle_test \\) "
        "-path '*/lib/python3*' \\) \\) -print"
    )
    # pip vendors packages with their own `tests` helpers nowhere; anything found is a leftover.
    assert found == ""


# The start-up paths (images/python-base/Dockerfile), run as root with bytecode writes allowed.
STARTUP_PATHS = ("env -u PYTHONDONTWRITEBYTECODE python -c pass; "
                 "env -u PYTHONDONTWRITEBYTECODE python -m file_secrets true; "
                 "HEALTHCHECK_PORT=9 python3 -I /usr/local/bin/python-base-healthcheck >/dev/null")


def test_start_up_compiles_nothing(image: Image) -> None:
    """Every module that start-up imports has its .pyc already: none is written when allowed."""
    assert pyc_written(image.ref, STARTUP_PATHS) == ""


def test_bytecode_is_only_what_start_up_reads(host: Any) -> None:
    """A few hundred KB in the stdlib's __pycache__ and our secrets module's (imported through
    its link in the venv), no other package's."""
    found = host.check_output("find /usr/local /opt/venv -name '*.pyc' -printf '%s %p\\n'")
    sizes = [line.split(" ", 1) for line in found.splitlines()]
    assert sizes, "no .pyc at all: start-up would compile every module it imports"
    assert sum(int(size) for size, _ in sizes) < 1_000_000
    for _, path in sizes:
        folder, name = path.rsplit("/", 1)
        assert folder.endswith("/__pycache__"), path
        if "/site-packages/" in folder:
            assert folder.startswith("/opt/venv/") and name.startswith("file_secrets."), path
        else:
            assert folder.startswith(("/usr/local/lib/python3.", "/usr/local/lib/python-base/")), \
                path


def test_ca_bundle_is_usable(host: Any) -> None:
    assert host.file("/etc/ssl/certs/ca-certificates.crt").size > 100_000
    count = host.check_output(
        "python -c 'import ssl; print(ssl.create_default_context().cert_store_stats()[\"x509_ca\"])'"
    )
    assert int(count) > 100


def test_tzdata_is_installed(host: Any) -> None:
    out = host.check_output(
        "python -c 'import zoneinfo, datetime; "
        "print(datetime.datetime(2026, 7, 1, tzinfo=zoneinfo.ZoneInfo(\"Europe/Berlin\")).utcoffset())'"
    )
    assert out == "2:00:00"


def test_apt_lists_and_logs_are_not_shipped(host: Any, image: Image) -> None:
    lists = host.check_output("ls /var/lib/apt/lists").split()
    assert set(lists) <= {"lock", "partial"}
    assert not host.file("/var/log/dpkg.log").exists


def test_only_the_tini_that_runs_is_installed(host: Any) -> None:
    """Debian's tini package also ships tini-static, which dpkg is told not to unpack."""
    assert host.file("/usr/bin/tini").is_file
    assert not host.file("/usr/bin/tini-static").exists
    assert host.file("/etc/dpkg/dpkg.cfg.d/python-base-tini").content_string.strip() == \
        "path-exclude=/usr/bin/tini-static"
