"""The verbs maintainers type. Sessions stay thin: the logic lives in the pybase package.

    nox -s bootstrap build     set up the engine, the upstream images, then build (the main job)
    nox -s test                unit tests, then every built image verified with testinfra
    nox -s audit               pip-audit, Debian security state, SBOM for every built image
    nox -s lint                ruff, mypy, import layers, hadolint, versions.yaml
    nox -s publish             push what passed test and audit and changed (`-- --local`)
    nox -s verify -- REF       an image's signature and attestations, checked offline
    nox -s check               is a rebuild due? (pending Debian fixes, newer CPython patches)
    nox -s update              write newer verified CPython patch releases into versions.yaml
    nox -s bench               sizes, start-up, build and test times (`-- --speed`: speed)
    nox -s engine              start a local Docker Engine (installs docker.io as root)
    nox -s candidate/pipeline  GitLab: pipeline candidates / the generated entry list

Every session first installs, as root, the Debian packages it runs (pybase/infra/host.py lists
them per session; not root and something missing: an error naming the packages).

Selectors after `--` narrow the matrix: `nox -s build test -- 3.13-trixie`.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "bootstrap", "build", "test"]
nox.options.reuse_venv = "yes"
nox.options.error_on_external_run = True

PACKAGE = "."
SHIPPED_PYTHON = ("images/python-base/files/file_secrets.py",
                  "images/python-base/files/python-base-healthcheck")


def install(session: nox.Session, extras: str = "") -> None:
    """The project (with `extras`) into the session's venv, then, as root, the Debian packages
    the session runs (pybase/infra/host.py lists them; not root: an error naming what is missing)."""
    session.install("-e", f"{PACKAGE}[{extras}]" if extras else PACKAGE)
    session.run("pybase", "host", session.name)


@nox.session
def engine(session: nox.Session) -> None:
    """Start a local Docker Engine if none answers (as root on Debian: installs docker.io)."""
    install(session)
    session.run("pybase", "engine")


@nox.session
def bootstrap(session: nox.Session) -> None:
    """Build debian:<release>-slim and python:<version>-slim-<release> here, from source."""
    install(session)
    session.run("pybase", "engine")
    session.run("pybase", "bootstrap", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """Build the hardened images for every selected entry and variant, each with its SBOM."""
    install(session, "audit")  # debsbom and cyclonedx-py write the SBOM shipped in each image
    session.run("pybase", "build", *session.posargs)


@nox.session
def test(session: nox.Session) -> None:
    """Unit tests, then testinfra against every built image; JUnit XML in reports/."""
    install(session, "test,audit")  # tests/integration/test_audit.py drives pip-audit, debsbom, cyclonedx-py
    # Selectors narrow the matrix; options (`-kEXPR`, `-x`) go to pytest as they are.
    selection = [a if a.startswith("-") else f"--only={a}" for a in session.posargs]
    # A worker per core: most of a test's time is a container starting or answering, so two
    # files at once use the machine better than one. A file stays on one worker (its module
    # fixtures build downstream images and registries once); `-- -n0` runs in one process.
    session.run("pytest", "--numprocesses=auto", "--dist=loadfile",
                "--junitxml=reports/junit.xml", *selection)


@nox.session
def audit(session: nox.Session) -> None:
    """pip-audit (offline with $PYTHON_BASE_ADVISORY_DB), pending Debian fixes and an SBOM for every
    built image; reports in reports/audit/ and reports/sbom/."""
    install(session, "audit")
    session.run("pybase", "audit", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy on the Python code, the stages' import layers, hadolint on every
    Dockerfile, versions.yaml's schema."""
    install(session, "lint,test")  # mypy reads the tests, so their imports must be there
    session.run("pybase", "targets", "--all", silent=True)
    session.run("pybase", "pipeline", "--check")
    # What ships in the images is linted like the rest (the healthcheck has no .py suffix).
    session.run("ruff", "check", "pybase", "tests", "noxfile.py", *SHIPPED_PYTHON)
    session.run("mypy")  # its file list, pyproject's [tool.mypy], names the same
    session.run("lint-imports")  # the stages' layers, pyproject's [tool.importlinter]
    dockerfiles = sorted(str(p) for top in ("images", "tests/downstream")
                         for p in Path(top).rglob("*Dockerfile"))
    session.run("hadolint", "--config", ".hadolint.yaml", *dockerfiles)


@nox.session
def bench(session: nox.Session) -> None:
    """Size, start-up, build and test times of every built image beside its upstream; report in
    reports/bench.md and .json. `-- --speed` adds the interpreter-speed comparison."""
    install(session, "audit")  # the cold and warm builds embed the SBOM, as `build` does
    session.run("pybase", "bench", *session.posargs)


@nox.session
def publish(session: nox.Session) -> None:
    """Push tested, audited images whose content changed; move the rolling tags; changelog and
    record in reports/publish/. `-- --local` publishes to a registry on 127.0.0.1."""
    install(session)
    session.run("pybase", "publish", *session.posargs)


@nox.session
def verify(session: nox.Session) -> None:
    """`-- REF`: the image's signature and attestations against our public key (exit 0
    verified, 1 not, 2 could not look)."""
    install(session)
    session.run("pybase", "verify", *session.posargs)


@nox.session(name="signing-key")
def signing_key(session: nox.Session) -> None:
    """`-- DIR`: write DIR/python-base.key, encrypted with $PYTHON_BASE_SIGNING_PASSPHRASE, and
    DIR/python-base.pub (cosign's formats)."""
    install(session)
    session.run("pybase", "signing-key", *session.posargs)


@nox.session
def candidate(session: nox.Session) -> None:
    """`-- push` / `-- pull`: this pipeline's candidate images in the registry (GitLab jobs)."""
    install(session)
    session.run("pybase", "candidate", *session.posargs)


@nox.session
def pipeline(session: nox.Session) -> None:
    """Write .gitlab-ci.yml's entry list from versions.yaml (lint checks it)."""
    install(session)
    session.run("pybase", "pipeline", *session.posargs)


@nox.session
def check(session: nox.Session) -> None:
    """Is a rebuild due? Pending Debian fixes per image (local, `--image REF` or `--published`)
    and newer CPython patch releases; exit 0 nothing due, 1 due, 2 could not look."""
    install(session)
    session.run("pybase", "check", *session.posargs)


@nox.session
def update(session: nox.Session) -> None:
    """Write newer verified CPython patch releases and their sha256 into versions.yaml (and the
    pipeline's entry list); `-- --dry-run` prints the diff only."""
    install(session)
    session.run("pybase", "update", *session.posargs)
