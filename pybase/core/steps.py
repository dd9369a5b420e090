"""Steps that depend on each other, run a few at a time.

Bootstrap's images form a small graph (a Debian base, then the trees compiled on it, then each
assembly on its tree and base). Run one after another, a 2-core machine sits half idle through
every single-threaded phase: configure, PGO's profile run, the link, mmdebstrap's dpkg under
qemu. `run_all` starts each step once the steps it comes after have finished, at most `jobs` at
once, preferring the one listed first; on the first failure it starts nothing more, lets the
running steps finish and raises that failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


def default_jobs() -> int:
    """One step more than cores: the steps spend long stretches on one core (configure, a
    profile run, a link, apt and dpkg, anything under qemu)."""
    return (os.cpu_count() or 1) + 1


@dataclass(frozen=True)
class Step(Generic[T]):
    name: str
    action: Callable[[], T]
    after: tuple[str, ...] = ()


def check(steps: Sequence[Step[T]]) -> None:
    """Unique names, known predecessors listed before their successors (so no cycle)."""
    seen: set[str] = set()
    for step in steps:
        if step.name in seen:
            raise ValueError(f"two steps are named {step.name!r}")
        missing = [name for name in step.after if name not in seen]
        if missing:
            raise ValueError(f"step {step.name!r} comes after {', '.join(missing)}, "
                             "which is not listed before it")
        seen.add(step.name)


def run_all(steps: Sequence[Step[T]], *, jobs: int,
            done: Callable[[Step[T], T], None] = lambda step, result: None) -> list[T]:
    """Run every step, each after its predecessors, `jobs` at a time. `done` is called in the
    caller's thread as each step succeeds (also after another failed: what it made is kept);
    the results come back in the steps' order."""
    check(steps)
    if jobs < 1:
        raise ValueError(f"jobs must be 1 or more, not {jobs}")
    results: dict[str, T] = {}
    waiting = list(steps)
    running: dict[Future[T], Step[T]] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while waiting or running:
            if failure is None:
                for step in [s for s in waiting if all(a in results for a in s.after)]:
                    if len(running) >= jobs:
                        break
                    waiting.remove(step)
                    running[pool.submit(step.action)] = step
            if not running:
                break  # after a failure: what still waits never starts
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                step = running.pop(future)
                error = future.exception()
                if error is not None:
                    failure = failure or error
                    continue
                results[step.name] = future.result()
                done(step, results[step.name])
    if failure is not None:
        raise failure
    return [results[step.name] for step in steps]
