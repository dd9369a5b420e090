"""OS packages, PID 1 and what each variant carries."""

from __future__ import annotations

from typing import Any

from conftest import Image, docker

BUILD_TOOLS = ("gcc", "g++", "make", "pkg-config")
DEV_TOOLS = ("curl", "git", "nano", "run-tests")


def test_no_upgradable_packages(image: Image) -> None:
    # A fresh look at the release's suites (security and updates included) from inside the image.
    result = docker(
        "run", "--rm", "--user", "0", "--entrypoint", "sh", image.ref, "-c",
        "apt-get update -qq >/dev/null && apt list --upgradable 2>/dev/null | grep -v '^Listing'",
        check=False, timeout=300,
    )
    assert result.returncode in {0, 1}, result.stderr
    assert result.stdout.strip() == "", f"upgradable packages:\n{result.stdout}"


def test_tini_is_pid_1_and_execs_the_cmd(host: Any) -> None:
    pid1 = host.file("/proc/1/cmdline").content_string.split("\0")
    assert pid1[:2] == ["/usr/bin/tini", "--"]
    # The entrypoint exec'd the CMD: tini's only child is `sleep`, not a shell.
    children = host.check_output("cat /proc/1/task/1/children").split()
    assert len(children) == 1
    assert host.file(f"/proc/{children[0]}/cmdline").content_string.split("\0")[0] == "sleep"


def test_variant_contents(host: Any, image: Image) -> None:
    def present(tool: str) -> bool:
        return host.run(f"command -v {tool}").rc == 0

    has_build_tools = image.variant in {"build", "dev"}
    for tool in BUILD_TOOLS:
        assert present(tool) is has_build_tools, f"{tool} in {image.variant}"
    for tool in DEV_TOOLS:
        assert present(tool) is (image.variant == "dev"), f"{tool} in {image.variant}"
    assert host.file("/usr/share/bash-completion/bash_completion").exists is (image.variant == "dev")
    assert not present("wget")


def test_headers_for_wheels_only_in_build_variants(host: Any, image: Image) -> None:
    assert host.file("/usr/include/openssl/ssl.h").exists is (image.variant != "runtime")
    # CPython's own headers come with the interpreter in every variant (no compiler to use them).
    assert host.run("ls /usr/local/include/python3*/Python.h").rc == 0


def test_dev_test_runner_runs_pytest_in_dev_mode(host: Any, image: Image) -> None:
    if image.variant != "dev":
        assert host.run("command -v run-tests").rc != 0
        return
    script = host.file("/usr/local/bin/run-tests").content_string
    assert "python -X dev -m pytest -x" in script
    assert host.check_output("run-tests --version 2>&1").startswith("pytest ")
