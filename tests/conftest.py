"""Shared fixtures: the image matrix (from versions.yaml) and running containers as test hosts.

Image tests take the `image` fixture (or `host`/`root_host`, which use it) and run once per
selected (entry, variant); the selection is versions.yaml's default build set, narrowed with
`--only 3.13-trixie` (repeatable). An image that should have been built but is missing fails its
tests; it is never skipped.

Which variants a test applies to is data, not a branch in its body: `@pytest.mark.variants("build",
"dev")` runs it for those variants only (unmarked: every variant), so a property that differs
between variants is two tests, e.g. "build tools present" for build+dev and "absent" for runtime.
`runtime_image` is the same as `image` restricted to the runtime variant.

Which platforms a test applies to is data too. Images of the engine's own platform get every
test; another platform's (arm64 here, under emulation: 5-20x slower) only the tests marked
`@pytest.mark.every_platform`, the subset that proves the platform's image is whole (README,
"Platforms" lists it). The slowest of them under emulation (a downstream build) say
`every_platform(emulated="first entry")`: an emulated platform runs them on its first entry in
versions.yaml only.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import testinfra
from support import (
    MATRIX,
    PENDING_FIX_PACKAGE,
    PENDING_FIX_REPO,
    Image,
    PendingFix,
    default_runtime_image,
    docker,
    emulated,
    on_platforms,
    selected_images,
    write_apt_repository,
)

from pybase.infra import emulation, engine
from pybase.verify import gates


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--only", action="append", default=[],
                     help="matrix selector (3.13, 3.13-trixie, ...); repeatable")


def marked_variants(metafunc: pytest.Metafunc) -> set[str]:
    """The variants named by the test's `variants` marker; every variant when it has none."""
    marker = metafunc.definition.get_closest_marker("variants")
    if marker is None:
        return set(MATRIX.variants)
    unknown = sorted(set(marker.args) - set(MATRIX.variants))
    if not marker.args or unknown:
        pytest.fail(f"{metafunc.function.__name__}: @pytest.mark.variants takes variant names "
                    f"from versions.yaml ({', '.join(MATRIX.variants)}); got {list(marker.args)}",
                    pytrace=False)
    return set(marker.args)


def on_marked_platforms(metafunc: pytest.Metafunc, images: list[Image]) -> list[Image]:
    """The images the test's `every_platform` marker lets it run on (see the module doc)."""
    marker = metafunc.definition.get_closest_marker("every_platform")
    try:
        return on_platforms(images, None if marker is None
                            else marker.kwargs.get("emulated", "every entry"))
    except ValueError as error:
        pytest.fail(f"{metafunc.function.__name__}: {error}", pytrace=False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    selected = selected_images(metafunc.config)
    images = on_marked_platforms(metafunc, selected)
    variants = marked_variants(metafunc)
    for name, wanted in (("image", variants), ("runtime_image", variants & {"runtime"})):
        if name in metafunc.fixturenames:
            if not wanted:
                pytest.fail(f"{metafunc.function.__name__}: {name} with @pytest.mark.variants"
                            f"({', '.join(sorted(variants))}) selects no image", pytrace=False)
            chosen = [i for i in images if i.variant in wanted]
            if not chosen and any(i.variant in wanted for i in selected):
                # Only emulated images are selected (an arm64 job): say why this one is not run.
                emulated = sorted({i.target.platform for i in selected})
                metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(
                    reason=f"runs on the engine's own platform only; the selection has "
                           f"{', '.join(emulated)} images, emulated here"))],
                    ids=["emulated-only"], scope="session")
                continue
            metafunc.parametrize(name, chosen, ids=[i.id for i in chosen], scope="session")


@pytest.fixture(scope="session")
def container(image: Image) -> Iterator[str]:
    """A long-running container of the image (tini -> entrypoint -> sleep), removed afterwards."""
    image.inspect()
    name = f"pybase-test-{uuid.uuid4().hex[:10]}"
    docker("run", "-d", "--rm", "--name", name, *emulated(image), image.ref, "sleep", "infinity")
    try:
        yield name
    finally:
        docker("rm", "-f", name, check=False)


@pytest.fixture(scope="session")
def host(container: str) -> Any:
    return testinfra.get_host(f"docker://{container}")


@pytest.fixture(scope="session")
def root_host(container: str) -> Any:
    return testinfra.get_host(f"docker://root@{container}")


@pytest.fixture(scope="session")
def pending_fix(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[PendingFix]:
    """The default runtime image with a newer PENDING_FIX_PACKAGE in its -security suite."""
    base = default_runtime_image(request.config)
    arch, installed = docker(
        "run", "--rm", "--entrypoint", "sh", base.ref, "-c",
        f"dpkg --print-architecture; dpkg-query -W -f='${{Version}}' {PENDING_FIX_PACKAGE}",
    ).stdout.split()
    fix = PendingFix(f"pybase-pending-fix:{uuid.uuid4().hex[:10]}", base, PENDING_FIX_PACKAGE,
                     installed, f"{installed}+pybase1", f"{base.target.release}-security")
    context = tmp_path_factory.mktemp("pending-fix")
    write_apt_repository(context / "repo", fix.suite, arch, {fix.package: fix.candidate})
    (context / "pending-fix.list").write_text(
        f"deb [trusted=yes] file:{PENDING_FIX_REPO} {fix.suite} main\n")
    (context / "Dockerfile").write_text(
        f"FROM {base.ref}\nCOPY repo {PENDING_FIX_REPO}\n"
        "COPY pending-fix.list /etc/apt/sources.list.d/pybase-pending-fix.list\n")
    try:
        docker("build", "-q", "-t", fix.ref, str(context), timeout=300)
        yield fix
    finally:
        engine.docker("image", "rm", "-f", fix.ref, capture=True, check=False)


# --- publish gate records --------------------------------------------------------------------
# One record per selected image (pybase.verify.gates): the image ID it had when the session started and
# the outcome of every test that used it. `nox -s publish` publishes only an image whose exact
# ID has a passing record, so a failure anywhere (unit tests too), a narrowed run (-k) or an
# image replaced during the session blocks it.
#
# Under pytest-xdist (`nox -s test` runs workers) the tests run in worker processes: each report
# names its image (a user property, also in the JUnit XML), the controller tallies the reports,
# and each worker hands over what it collected and deselected; only the controller writes.


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Gates(config), "pybase-gates")


def _image_of(item: pytest.Item) -> Image | None:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return next((v for v in params.values() if isinstance(v, Image)), None)


@dataclass
class _Gates:
    config: pytest.Config
    ids: dict[str, str | None] = field(default_factory=dict)
    outcomes: dict[str, list[str]] = field(default_factory=dict)
    collected: set[str] = field(default_factory=set)
    failed_elsewhere: int = 0
    deselected: int = 0

    IMAGE = "image"  # the user property that names a test's image in its reports
    HANDOVER = "pybase_gates"  # a worker's collection facts, in xdist's workeroutput

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        images = selected_images(self.config)
        emulation.ensure(i.target.arch for i in images)
        if not self.is_worker:
            self.ids = {i.ref: engine.image_id(i.ref) for i in images}
            self.outcomes = {i.ref: [] for i in images}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = {image.ref for item in session.items
                          if (image := _image_of(item)) is not None}

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
            self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if (image := _image_of(item)) is not None:
            report.user_properties.append((self.IMAGE, image.ref))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker or (report.when != "call" and not report.failed
                              and not report.skipped):
            return
        ref = dict(report.user_properties).get(self.IMAGE)
        kind = "error" if report.when != "call" and report.failed else report.outcome
        if ref in self.outcomes:
            self.outcomes[ref].append(kind)
        elif report.failed:
            self.failed_elsewhere += 1

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        handed = getattr(node, "workeroutput", {}).get(self.HANDOVER)
        if handed:
            self.collected |= set(handed["collected"])
            # Every worker collects the whole suite: they deselect the same tests.
            self.deselected = max(self.deselected, handed["deselected"])

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.config.option.collectonly:
            return
        if self.is_worker:
            self.config.workeroutput[self.HANDOVER] = {  # type: ignore[attr-defined]
                "collected": sorted(self.collected), "deselected": self.deselected}
            return
        for ref, image_id in self.ids.items():
            if image_id is None or ref not in self.collected:
                continue  # missing (its tests failed), or not tested in this session
            seen = self.outcomes[ref]
            replaced = engine.image_id(ref) != image_id  # rebuilt into another image meanwhile
            gates.write_test_record(gates.TestRecord(
                ref, image_id, passed=seen.count("passed"),
                failed=seen.count("failed") + replaced,
                errors=seen.count("error"), skipped=seen.count("skipped"),
                failed_elsewhere=self.failed_elsewhere, deselected=self.deselected,
                partial=self.config.args_source != pytest.Config.ArgsSource.TESTPATHS,
                finished=gates.now()))
