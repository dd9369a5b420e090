"""Steps run after their predecessors, a bounded number at a time (pybase.core.steps), and
bootstrap's plan puts each image after what it is made from (pybase.upstream.bootstrap)."""

from __future__ import annotations

import threading
import time

import pytest

from pybase.core import matrix
from pybase.core.steps import Step, run_all
from pybase.infra import emulation
from pybase.upstream import bootstrap


def test_each_step_starts_after_its_predecessors_finish() -> None:
    finished: list[str] = []

    def action(name: str) -> Step[str]:
        return Step(name, lambda: finished.append(name) or name)  # type: ignore[func-returns-value]

    def after(name: str, *before: str) -> Step[str]:
        def act() -> str:
            assert set(before) <= set(finished), f"{name} started before {before}"
            finished.append(name)
            return name
        return Step(name, act, before)

    steps = [action("base"), after("tree", "base"), after("cross", "tree"),
             action("other base"), after("assembly", "cross", "other base")]
    assert run_all(steps, jobs=3) == ["base", "tree", "cross", "other base", "assembly"]
    assert finished.index("assembly") == 4


def test_independent_steps_run_at_the_same_time_up_to_jobs() -> None:
    both = threading.Barrier(2, timeout=10)  # breaks (fails the test) unless two run together
    running = 0
    most = 0
    lock = threading.Lock()

    def act() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        both.wait()
        time.sleep(0.05)
        with lock:
            running -= 1

    run_all([Step(f"s{i}", act) for i in range(4)], jobs=2)
    assert most == 2


def test_after_a_failure_nothing_more_starts() -> None:
    started: list[str] = []

    def act(name: str, fail: bool = False) -> str:
        started.append(name)
        if fail:
            raise RuntimeError(f"{name} failed")
        return name

    steps = [Step("broken", lambda: act("broken", fail=True)), Step("later", lambda: act("later")),
             Step("needs broken", lambda: act("needs broken"), ("broken",))]
    with pytest.raises(RuntimeError, match="broken failed"):
        run_all(steps, jobs=1)
    assert started == ["broken"]


def test_a_failure_lets_the_running_steps_end_and_reports_them() -> None:
    """The images a concurrent step made are kept and said; then the failure is raised."""
    ended: list[str] = []
    failed = threading.Event()

    def slow() -> str:
        assert failed.wait(timeout=10)
        time.sleep(0.2)  # the failure is seen first
        ended.append("slow")
        return "slow"

    def broken() -> str:
        failed.set()
        raise RuntimeError("compile failed")

    done: list[str] = []
    steps = [Step("slow", slow), Step("broken", broken),
             Step("later", lambda: ended.append("later") or "later")]  # type: ignore[func-returns-value]
    with pytest.raises(RuntimeError, match="compile failed"):
        run_all(steps, jobs=2, done=lambda step, result: done.append(step.name))
    assert ended == ["slow"] and done == ["slow"]


def test_a_plan_naming_an_unknown_or_later_step_is_refused() -> None:
    with pytest.raises(ValueError, match="'tree' comes after base"):
        run_all([Step("tree", lambda: 1, ("base",)), Step("base", lambda: 2)], jobs=1)
    with pytest.raises(ValueError, match="two steps are named 'base'"):
        run_all([Step("base", lambda: 1), Step("base", lambda: 2)], jobs=1)
    with pytest.raises(ValueError, match="jobs must be 1 or more"):
        run_all([Step("base", lambda: 1)], jobs=0)


def test_bootstrap_makes_each_image_after_what_it_is_made_from(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On amd64: the arm64 tree is cross-compiled by the amd64 tree of the same entry on the
    amd64 base; each assembly waits for its tree and its own platform's base; the native
    bases and compiles come first in the list, so free slots take them first."""
    monkeypatch.setattr(emulation, "native_arch", lambda: "amd64")
    m = matrix.load()
    targets = [t for t in m.targets() if t.python.version.startswith("3.13.")]
    assert {t.arch for t in targets} == {"amd64", "arm64"}
    steps = bootstrap.plan(m, targets, optimize=True)
    after = {s.name: s.after for s in steps}
    names = [s.name for s in steps]
    for t in targets:
        native = m.on(t, "linux/amd64")
        if t.arch == "arm64":
            assert after[f"tree {t.name}"] == (f"base {native.debian_image}",
                                               f"tree {native.name}")
        else:
            assert after[f"tree {t.name}"] == (f"base {t.debian_image}",)
        assert after[f"assembly {t.name}"] == (f"tree {t.name}", f"base {t.debian_image}")
    kinds = [n.split()[0] + (" arm64" if "arm64" in n and "assembly" not in n else "")
             for n in names]
    assert kinds == sorted(kinds, key=["base", "tree", "base arm64", "tree arm64",
                                       "assembly"].index)
    assert len(names) == len(set(names))


def test_an_arm64_only_selection_compiles_the_native_tree_it_needs_without_assembling_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulation, "native_arch", lambda: "amd64")
    m = matrix.load()
    arm64 = m.targets(only=["3.13-bookworm-arm64"])
    assert [t.arch for t in arm64] == ["arm64"]
    native = m.on(arm64[0], "linux/amd64")
    names = [s.name for s in bootstrap.plan(m, arm64, optimize=True)]
    assert names == [f"base {native.debian_image}", f"tree {native.name}",
                     f"base {arm64[0].debian_image}", f"tree {arm64[0].name}",
                     f"assembly {arm64[0].name}"]

