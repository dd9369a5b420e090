"""Pure-Python workloads, pinned (their sizes are part of the figure), run by each interpreter
inside a container by pybase.bench.speed: standard library only, any Python 3.11+.

`python3 -c <this file> K` prints {workload: best of K runs, seconds} as JSON. Each workload takes
about 0.1-0.3 s on 2 cores, so one call is a few seconds.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator


def nbody(steps: int = 40_000) -> float:
    """Float arithmetic on five bodies (the classic n-body, shortened)."""
    bodies = [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 39.47], [4.84, -1.16, -0.10, 0.60, 2.81, -0.02, 0.03],
              [8.34, 4.12, -0.40, -1.01, 1.82, 0.008, 0.01], [12.89, -15.11, -0.22, 1.08, 0.86,
              -0.01, 0.001], [15.37, -25.91, 0.17, 0.97, 0.59, -0.03, 0.002]]
    pairs = [(a, b) for i, a in enumerate(bodies) for b in bodies[i + 1:]]
    for _ in range(steps):
        for a, b in pairs:
            dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]
            mag = 0.01 / ((dx * dx + dy * dy + dz * dz) ** 1.5)
            a[3] -= dx * b[6] * mag
            a[4] -= dy * b[6] * mag
            a[5] -= dz * b[6] * mag
            b[3] += dx * a[6] * mag
            b[4] += dy * a[6] * mag
            b[5] += dz * a[6] * mag
        for body in bodies:
            body[0] += 0.01 * body[3]
            body[1] += 0.01 * body[4]
            body[2] += 0.01 * body[5]
    return bodies[0][0]


def json_roundtrip(rounds: int = 300) -> int:
    document = {"items": [{"id": i, "name": f"item {i}", "tags": ["a", "b", "c"], "price": i / 7,
                           "ok": i % 2 == 0, "child": {"depth": i % 5}} for i in range(100)]}
    total = 0
    for _ in range(rounds):
        total += len(json.loads(json.dumps(document))["items"])
    return total


def regex(rounds: int = 150) -> int:
    text = " ".join(f"user{i}@host{i % 13}.example.org 2026-11-{i % 28 + 1:02d} GET /p/{i}"
                    for i in range(400))
    mail = re.compile(r"([a-z0-9]+)@([a-z0-9]+)\.example\.org")
    day = re.compile(r"\d{4}-\d{2}-(\d{2})")
    return sum(len(mail.findall(text)) + len(day.findall(text)) for _ in range(rounds))


def sorting(rounds: int = 12) -> int:
    import random
    shuffled = random.Random(42)
    data = [shuffled.random() for _ in range(50_000)]
    words = [f"w{shuffled.randrange(10**6)}" for _ in range(20_000)]
    return sum(len(sorted(data)) + len(sorted(words, key=str.lower)) for _ in range(rounds))


def dict_str(rounds: int = 40) -> int:
    total = 0
    for r in range(rounds):
        counts: dict[str, int] = {}
        for i in range(5000):
            key = f"k{(i * 7 + r) % 1000}"
            counts[key] = counts.get(key, 0) + 1
        total += len("".join(sorted(counts)).upper().split("K"))
    return total


def recursion(n: int = 29) -> int:
    def fib(k: int) -> int:
        return k if k < 2 else fib(k - 1) + fib(k - 2)
    return fib(n)


def generators(n: int = 1_500_000) -> int:
    def numbers() -> Iterator[int]:
        yield from range(n)
    evens = (x for x in numbers() if x % 2 == 0)
    squares = (x * x for x in evens)
    return sum(x % 1000 for x in squares)


WORKLOADS: dict[str, Callable[[], object]] = {
    "nbody (float)": nbody,
    "json dumps/loads": json_roundtrip,
    "regex": regex,
    "sorting": sorting,
    "dict/str": dict_str,
    "recursion": recursion,
    "generators": generators,
}


def best_of(workload: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        workload()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    runs = int(sys.argv[1])
    print(json.dumps({name: best_of(workload, runs) for name, workload in WORKLOADS.items()}))


if __name__ == "__main__":
    main()
