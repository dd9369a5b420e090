"""The GitLab pipeline: which jobs each pipeline source gets, the fan-out, and its drift check.

GitLab's rules are evaluated here for the small expression language this file uses
(`$A == "x"`, `$A == $B`, joined by `&&`), which is enough to tell what a merge request, a push
to the default branch, the weekly and the daily schedule and the daily run's child pipeline run.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pybase import gitlab
from pybase.core import matrix
from pybase.infra import host

CONFIG: dict[str, Any] = yaml.safe_load(gitlab.GITLAB_CI.read_text())
SOURCES = {
    "merge request": {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main"},
    "default branch": {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main",
                       "CI_DEFAULT_BRANCH": "main"},
    "feature branch": {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "wip",
                       "CI_DEFAULT_BRANCH": "main"},
    "schedule": {"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main",
                 "CI_DEFAULT_BRANCH": "main"},
    "weekly schedule": {"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main",
                        "CI_DEFAULT_BRANCH": "main", "PYTHON_BASE_SCHEDULE": "weekly"},
    "daily schedule": {"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main",
                       "CI_DEFAULT_BRANCH": "main", "PYTHON_BASE_SCHEDULE": "daily"},
    # What the daily run's `refresh` starts: pipeline variables are not forwarded to it.
    "daily refresh (child)": {"CI_PIPELINE_SOURCE": "parent_pipeline", "CI_COMMIT_BRANCH": "main",
                              "CI_DEFAULT_BRANCH": "main"},
}
_COMPARISON = re.compile(r'^\$(\w+) (==|!=) (?:"([^"]*)"|\$(\w+))$')


def holds(expression: str, env: dict[str, str]) -> bool:
    return all(_compare(part, env) for part in expression.split("&&"))


def _compare(expression: str, env: dict[str, str]) -> bool:
    found = _COMPARISON.match(expression.strip())
    assert found, f"unsupported rule expression: {expression}"
    name, op, literal, other = found.groups()
    left, right = env.get(name), literal if other is None else env.get(other)
    return (left == right) if op == "==" else (left != right)


def decide(rules: list[dict[str, Any]] | None, env: dict[str, str]) -> dict[str, Any] | None:
    """The first matching rule (GitLab semantics), or None when the job is left out."""
    if rules is None:
        return {}
    for rule in rules:
        if "if" not in rule or holds(rule["if"], env):
            return None if rule.get("when") == "never" else rule
    return None


def jobs_for(source: str) -> set[str]:
    env = SOURCES[source]
    if decide(CONFIG["workflow"]["rules"], env) is None:
        return set()
    return {name for name, job in CONFIG.items()
            if isinstance(job, dict) and ("script" in job or "trigger" in job)
            and not name.startswith(".")
            and decide(job.get("rules"), env) is not None}


@pytest.mark.parametrize(("source", "jobs"), [
    ("merge request", {"lint", "build", "test", "audit"}),
    ("default branch", {"lint", "build", "test", "audit", "publish"}),
    ("schedule", {"lint", "build", "test", "audit", "publish"}),
    ("weekly schedule", {"lint", "build", "test", "audit", "publish"}),
    ("daily schedule", {"check", "refresh"}),
    ("daily refresh (child)", {"lint", "build", "test", "audit", "publish"}),
    ("feature branch", set()),
])
def test_jobs_per_pipeline_source(source: str, jobs: set[str]) -> None:
    assert jobs_for(source) == jobs


def test_schedule_refreshes_the_base_and_rebuilds_the_os_upgrade_layer() -> None:
    for source, fresh in (("schedule", True), ("weekly schedule", True),
                          ("daily refresh (child)", True), ("default branch", False),
                          ("merge request", False)):
        rule = decide(CONFIG["build"]["rules"], SOURCES[source])
        assert rule is not None
        variables = rule.get("variables", {})
        assert ("PYTHON_BASE_OS_UPGRADE_STAMP" in variables) is fresh
        assert (variables.get("BOOTSTRAP_OPTIONS") == "--refresh") is fresh
    assert "$NOX -s bootstrap -- $ENTRY-$ARCH $BOOTSTRAP_OPTIONS" in CONFIG["build"]["script"]


def test_publish_is_serialized_and_promotes_tested_candidates() -> None:
    job = CONFIG["publish"]
    assert job["resource_group"]
    assert set(job["needs"]) == {"build", "test", "audit"}
    assert any("--from-candidates" in line for line in job["script"])
    assert not any("build" in line.split("-s", 1)[-1] for line in job["script"]), "no rebuild"


def test_every_entry_job_fans_out_over_the_generated_matrix() -> None:
    """One job per entry and architecture, on a runner of that architecture."""
    [entries] = CONFIG[".entries"]["parallel"]["matrix"]
    targets = matrix.load().targets()
    assert [f"{e}-{a}" for e in entries["ENTRY"] for a in entries["ARCH"]] == [
        t.name for t in targets]
    assert CONFIG[".entries"]["tags"] == ["python-base", "$ARCH"]
    for name in ("build", "test", "audit"):
        assert CONFIG[name]["extends"] == ".entries"
        assert all("$ENTRY" not in line or "$ENTRY-$ARCH" in line
                   for line in CONFIG[name]["script"]), name


def test_artifacts_carry_every_report() -> None:
    paths = [p for job in CONFIG.values() if isinstance(job, dict)
             for p in job.get("artifacts", {}).get("paths", [])]
    for wanted in ("reports/candidates/", "reports/gates/", "reports/audit/", "reports/sbom/",
                   "reports/publish/"):
        assert wanted in paths
    assert CONFIG["test"]["artifacts"]["reports"]["junit"] == "reports/junit.xml"


def test_drift_is_caught_and_fixed(tmp_path: Path) -> None:
    copy = tmp_path / ".gitlab-ci.yml"
    copy.write_text(gitlab.GITLAB_CI.read_text().replace('"3.13.15-trixie"', '"3.13.14-trixie"'))
    m = matrix.load()
    with pytest.raises(gitlab.PipelineError, match="differ from versions.yaml"):
        gitlab.sync(m, check=True, path=copy)
    assert gitlab.sync(m, check=False, path=copy) is False
    assert gitlab.current(copy) == gitlab.entries(m)
    assert copy.read_text() == gitlab.GITLAB_CI.read_text()


def test_cache_bound_check_runs_where_the_cache_is() -> None:
    """The warm-rebuild test needs the build cache: the build job runs it, the test job (on any
    runner, images pulled) says it skips it."""
    assert any("-ktest_warm_rebuild_reuses_every_layer" in line
               for line in CONFIG["build"]["script"])
    assert CONFIG["test"]["variables"]["PYTHON_BASE_CANDIDATES_PULLED"] == "1"
    assert "PYTHON_BASE_CANDIDATES_PULLED" in (gitlab.GITLAB_CI.parent / "tests" / "image" / "test_build.py").read_text()


def _check_job_outcome(tmp_path: Path, status: int) -> tuple[int, str | None]:
    """Run the check job's script with `pybase check` replaced by a stand-in exiting `status`;
    (the job's exit code, the child pipeline configuration it left)."""
    pybase = tmp_path / "cache" / "nox" / "check" / "bin" / "pybase"
    pybase.parent.mkdir(parents=True, exist_ok=True)
    pybase.write_text(f"#!/bin/sh\nexit {status}\n")
    pybase.chmod(0o755)
    (tmp_path / ".gitlab-ci.yml").write_text(gitlab.GITLAB_CI.read_text())
    script = ["set -eo pipefail", "NOX=true", f"PYTHON_BASE_CACHE={tmp_path / 'cache'}",
              *CONFIG["check"]["script"]]  # GitLab's shell runs the lines in one bash, -e
    done = subprocess.run([host.program("bash"), "-c", "\n".join(script)], cwd=tmp_path, check=False,
                          capture_output=True, text=True)
    child = tmp_path / "reports" / "check" / "child-pipeline.yml"
    return done.returncode, child.read_text() if child.exists() else None


@pytest.mark.parametrize("status", [0, 1, 2])
def test_daily_check_starts_the_refresh_only_when_something_is_due(tmp_path: Path,
                                                                   status: int) -> None:
    code, child = _check_job_outcome(tmp_path, status)
    if status == 2:  # could not look: the job fails, `refresh` (needs: check) never starts
        assert code == 2 and child is None
        return
    assert code == 0 and child is not None
    config = yaml.safe_load(child)
    if status == 1:  # due: the child pipeline is this file, run as the weekly refresh
        assert config == CONFIG
    else:
        assert set(config) == {"nothing-due"}
    trigger = CONFIG["refresh"]["trigger"]
    assert trigger["include"] == [{"artifact": "reports/check/child-pipeline.yml", "job": "check"}]
    assert CONFIG["refresh"]["needs"] == ["check"]
    assert trigger["forward"]["pipeline_variables"] is False
    assert "reports/check/" in CONFIG["check"]["artifacts"]["paths"]
