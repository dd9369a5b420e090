"""What is, and is not, on the filesystem."""

from __future__ import annotations

from typing import Any

from support import Image


def test_no_setuid_or_setgid_files(root_host: Any) -> None:
    found = root_host.check_output("find / -xdev -type f -perm /6000 -print")
    assert found == ""


def test_no_bytecode_tests_or_static_libraries(host: Any) -> None:
    found = host.check_output(
        "find /usr/local /opt/venv \\( -name '*.pyc' -o -name '*.pyo' -o -name 'libpython*.a' "
        "-o \\( -type d \\( -name test -o -name tests -o -name idle_test \\) "
        "-path '*/lib/python3*' \\) \\) -print"
    )
    # pip vendors packages with their own `tests` helpers nowhere; anything found is a leftover.
    assert found == ""


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
