"""OS packages, PID 1 and what each variant carries."""

from __future__ import annotations

from typing import Any

import pytest
from support import Image

from pybase.verify import audit

BUILD_TOOLS = ("gcc", "g++", "make", "pkg-config")
DEV_TOOLS = ("curl", "git", "nano", "run-tests")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"


def test_no_upgradable_packages(image: Image) -> None:
    # The audit's own look from inside the image with fresh indices: no newer version in any
    # suite, neither a pending fix (security/updates) nor a point release (a notice).
    result = audit.debian_check(image.ref)
    newer = [f"{p.package} {p.installed} -> {p.candidate} ({p.suite})" for p in result.findings]
    newer += [f"{p.package} {p.installed} -> {p.candidate} ({p.suite})" for p in result.notices]
    assert result.packages > 0 and newer == [], "upgradable packages:\n" + "\n".join(newer)


# Under emulation the kernel starts qemu-user for the program (binfmt_misc, P flag): its
# cmdline is the interpreter, the program's path, then the program's own argv.
EMULATOR = "/usr/libexec/qemu-binfmt/"


def argv(host: Any, pid: int | str) -> list[str]:
    """A process's argv as the program itself sees it, emulated or not."""
    found: list[str] = host.file(f"/proc/{pid}/cmdline").content_string.split("\0")
    return found[2:] if found[0].startswith(EMULATOR) else found


@pytest.mark.every_platform
def test_tini_is_pid_1_and_execs_the_cmd(host: Any) -> None:
    assert argv(host, 1)[:2] == ["/usr/bin/tini", "--"]
    # The entrypoint exec'd the CMD: tini's only child is `sleep`, not a shell.
    children = host.check_output("cat /proc/1/task/1/children").split()
    assert len(children) == 1
    assert argv(host, children[0])[0] == "sleep"


def present(host: Any, tool: str) -> bool:
    return bool(host.run(f"command -v {tool}").rc == 0)


@pytest.mark.every_platform
@pytest.mark.variants("build", "dev")
def test_build_tools_present(host: Any) -> None:
    for tool in BUILD_TOOLS:
        assert present(host, tool), f"{tool} missing"


@pytest.mark.variants("runtime")
def test_build_tools_absent(host: Any) -> None:
    for tool in BUILD_TOOLS:
        assert not present(host, tool), f"{tool} present"


@pytest.mark.variants("dev")
def test_dev_tools_present(host: Any) -> None:
    for tool in DEV_TOOLS:
        assert present(host, tool), f"{tool} missing"
    assert host.file(BASH_COMPLETION).exists


@pytest.mark.variants("runtime", "build")
def test_dev_tools_absent(host: Any) -> None:
    # run-tests among them: the test runner exists only in dev.
    for tool in DEV_TOOLS:
        assert not present(host, tool), f"{tool} present"
    assert not host.file(BASH_COMPLETION).exists


def test_no_wget(host: Any) -> None:
    assert not present(host, "wget")


@pytest.mark.variants("build", "dev")
def test_headers_for_wheels_present(host: Any) -> None:
    assert host.file("/usr/include/openssl/ssl.h").exists


@pytest.mark.variants("runtime")
def test_headers_for_wheels_absent(host: Any) -> None:
    assert not host.file("/usr/include/openssl/ssl.h").exists


def test_cpython_headers_in_every_variant(host: Any) -> None:
    # CPython's own headers come with the interpreter in every variant (no compiler to use them).
    assert host.run("ls /usr/local/include/python3*/Python.h").rc == 0


@pytest.mark.variants("dev")
def test_dev_test_runner_runs_pytest_in_dev_mode(host: Any) -> None:
    script = host.file("/usr/local/bin/run-tests").content_string
    assert "python -X dev -m pytest -x" in script
    assert host.check_output("run-tests --version 2>&1").startswith("pytest ")
