"""Run inside a container by pybase.bench.startup (standard library only, any Python 3.11+):
time each start-up case `runs` times, interleaved so that a busy moment hits every case alike.

Prints {case: [seconds, ...]} as JSON. Cases through our entrypoint exist only in our images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

ENTRYPOINT = "/usr/local/bin/python-base-entrypoint"
HEALTHCHECK = "/usr/local/bin/python-base-healthcheck"
SECRETS = ("DB_PASSWORD", "API_TOKEN", "SIGNING_KEY")
WARM_UP = 3


def cases() -> dict[str, tuple[list[str], dict[str, str], int]]:
    """name -> (argv, environment, expected exit code)."""
    env = dict(os.environ)
    found = {"python -c pass": (["python", "-c", "pass"], env, 0)}
    if os.path.exists(ENTRYPOINT):
        # The secrets loader as a module, for apps started without our entrypoint.
        found["python -m file_secrets true"] = (["python", "-m", "file_secrets", "true"], env, 0)
        # -s: tini is not PID 1 here, so it registers as a subreaper instead (one prctl).
        via = ["/usr/bin/tini", "-s", "--", ENTRYPOINT, "python", "-c", "pass"]
        found["tini + entrypoint"] = (via, env, 0)
        secrets = dict(env)
        folder = tempfile.mkdtemp()
        for name in SECRETS:
            path = os.path.join(folder, name.lower())
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(f"value of {name}\n")
            secrets[f"{name}_FILE"] = path
        found["tini + entrypoint + 3 secrets"] = (via, secrets, 0)
        # Nothing listens on the discard port: one probe's own cost, answered "unhealthy" (1).
        found["healthcheck probe"] = ([HEALTHCHECK], {**env, "HEALTHCHECK_PORT": "9"}, 1)
    return found


def main() -> None:
    runs = int(sys.argv[1])
    chosen = cases()
    samples: dict[str, list[float]] = {name: [] for name in chosen}
    for round_ in range(WARM_UP + runs):
        for name, (argv, env, expected) in chosen.items():
            started = time.perf_counter()
            code = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, check=False).returncode
            elapsed = time.perf_counter() - started
            if code != expected:
                sys.exit(f"{name}: exit {code}, expected {expected}")
            if round_ >= WARM_UP:
                samples[name].append(elapsed)
    print(json.dumps(samples))


if __name__ == "__main__":
    main()
