"""The bench's pure logic: statistics, layer attribution, JUnit parsing, the report's targets."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pybase.bench import builds, junit, report, stats
from pybase.bench.builds import BuildTimes
from pybase.bench.pipshare import PipShare
from pybase.bench.refresh import BaseRefresh, Refresh
from pybase.bench.results import Machine, Results, TargetResult
from pybase.bench.sizes import UPGRADE, ImageSize, Layer, classify, overhead, pair_history
from pybase.bench.speed import WITH_FRAME_POINTERS, Contender, Speed, ratios
from pybase.bench.startup import BARE, Startup
from pybase.build import images
from pybase.infra import engine

# --- statistics -------------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks() -> None:
    samples = [float(v) for v in range(1, 21)]  # 1..20
    assert stats.percentile(samples, 50) == pytest.approx(10.5)
    assert stats.percentile(samples, 95) == pytest.approx(19.05)
    assert stats.percentile(samples, 100) == 20
    assert stats.percentile([3.0], 95) == 3.0


def test_percentile_ignores_order_and_refuses_nonsense() -> None:
    assert stats.percentile([5.0, 1.0, 3.0], 0) == 1.0
    with pytest.raises(ValueError):
        stats.percentile([], 50)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


def test_geometric_mean_of_ratios_balances_faster_and_slower() -> None:
    assert stats.geometric_mean([2.0, 0.5]) == pytest.approx(1.0)
    assert stats.geometric_mean([1.1, 1.2, 1.3]) == pytest.approx(1.716 ** (1 / 3))
    with pytest.raises(ValueError):
        stats.geometric_mean([1.0, 0.0])


def test_summary_and_spread() -> None:
    summary = stats.Summary.of([0.010, 0.012, 0.011, 0.030])
    assert summary.median == pytest.approx(0.0115)
    assert summary.runs == 4
    assert summary.p95 == pytest.approx(0.0273)
    spread = stats.RatioSpread.of([0.9, 1.2])
    assert (spread.low, spread.high) == (0.9, 1.2)
    assert spread.mean == pytest.approx(math.sqrt(0.9 * 1.2))


def test_ratios_are_the_others_time_over_ours() -> None:
    seconds = {"ours": {"a": 1.0, "b": 2.0}, "debian": {"a": 1.2, "b": 1.0}}
    found = ratios(seconds, "ours")
    assert set(found) == {"debian"}
    assert found["debian"].low == 0.5
    assert found["debian"].high == 1.2
    assert found["debian"].mean == pytest.approx(math.sqrt(0.6))


# --- layers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("created_by", "cause"), [
    ('RUN |1 OS_UPGRADE_STAMP=20261125 /bin/sh -c set -eux; apt-get update; apt-get upgrade -y',
     UPGRADE),
    ('RUN /bin/sh -c set -eux; python3 -m venv "$VIRTUAL_ENV"; "$VIRTUAL_ENV/bin/python" -m pip',
     "venv (pip)"),
    ("RUN /bin/sh -c set -eux; apt-get update; apt-get install -y --no-install-recommends tini;",
     "tini"),
    ("COPY files/python-base-entrypoint files/python-base-healthcheck /usr/local/bin/ # buildkit",
     "our files"),
    ("COPY files/file_secrets.py /usr/local/lib/python-base/ # buildkit", "our files"),
    ("RUN |5 VARIANT=runtime ... > /usr/local/share/python-base/build-info.json", "our files"),
    ("COPY sbom.cdx.json /usr/local/share/python-base/sbom.cdx.json # buildkit", "SBOM"),
    ("RUN /bin/sh -c set -eux; groupadd --system --gid 10001 app; useradd --system", "user, /app"),
    ("WORKDIR /app", "anything else"),
])
def test_each_dockerfile_step_has_its_cause(created_by: str, cause: str) -> None:
    assert classify(created_by) == cause


def test_history_pairs_with_layers_skipping_empty_steps() -> None:
    history: list[dict[str, object]] = [{"created_by": "ADD rootfs"}, {"created_by": "ENV A=1", "empty_layer": True},
               {"created_by": "RUN x"}]
    assert pair_history(history, ["sha256:1", "sha256:2"]) == [("ADD rootfs", "sha256:1"),
                                                                ("RUN x", "sha256:2")]
    with pytest.raises(engine.EngineError, match="2 layer steps for 3 layers"):
        pair_history(history, ["sha256:1", "sha256:2", "sha256:3"])


def layer(diff_id: str, created_by: str, size: int) -> Layer:
    return Layer(diff_id, created_by, size, size // 3)


UPSTREAM = ImageSize("python:3.13.15-slim-trixie", 115_000_000,
                     [layer("sha256:a", "ADD rootfs", 80_000_000),
                      layer("sha256:b", "COPY /usr/local/ /usr/local/", 35_000_000)])
OURS = ImageSize("python-base:3.13.15-trixie", 123_000_000, [
    *UPSTREAM.layers,
    layer("sha256:c", "apt-get install -y --no-install-recommends tini", 1_800_000),
    layer("sha256:d", "python3 -m venv", 6_100_000),
    layer("sha256:e", "COPY files/file_secrets.py", 9_000),
    layer("sha256:f", "COPY files/python-base-entrypoint x", 18_000),
    layer("sha256:g", "apt-get upgrade -y", 12_000),
    layer("sha256:h", "COPY sbom.cdx.json /x", 180_000),
])


def test_overhead_sums_what_we_add_per_cause() -> None:
    found = overhead(OURS, UPSTREAM)
    assert found == {"tini": (1_800_000, 600_000), "venv (pip)": (6_100_000, 2_033_333),
                     "our files": (27_000, 9_000), UPGRADE: (12_000, 4_000),
                     "SBOM": (180_000, 60_000)}
    assert OURS.gzip - UPSTREAM.gzip == sum(gz for _, gz in found.values())


def test_overhead_refuses_an_image_not_built_on_that_upstream() -> None:
    other = ImageSize("x", 1, [layer("sha256:z", "ADD", 1), *OURS.layers[1:]])
    with pytest.raises(engine.EngineError, match="is not built on"):
        overhead(other, UPSTREAM)


def test_the_cold_build_copy_gets_its_own_cache_keys() -> None:
    text = "ARG X\nFROM ${UPSTREAM_IMAGE} AS runtime\nRUN true\n"
    assert builds.isolated_dockerfile(text) == (
        "ARG X\nFROM ${UPSTREAM_IMAGE} AS runtime\nARG PYBASE_BENCH_COLD\nRUN true\n")
    with pytest.raises(engine.EngineError, match="runtime stage"):
        builds.isolated_dockerfile("FROM debian\n")
    real = (images.CONTEXT / "Dockerfile").read_text(encoding="utf-8")
    assert builds.COLD_ARG in builds.isolated_dockerfile(real)


# --- JUnit --------------------------------------------------------------------------------------

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5" time="42.5">
<testcase classname="tests.test_image" name="test_user[3.13.15-bookworm]" time="1.5"/>
<testcase classname="tests.test_image" name="test_user[3.13.15-bookworm-dev]" time="2.0"/>
<testcase classname="tests.test_image" name="test_gcc[3.13.15-trixie-build-gcc]" time="3.0"/>
<testcase classname="tests.test_image" name="test_env[3.13.15-bookworm-dev-PATH]" time="0.5"/>
<testcase classname="tests.unit.test_tags" name="test_tags" time="0.25"/>
<testcase classname="tests.unit.test_tags" name="test_parse[3.12.13-trixie-20261121.1-build]" time="0.5"/>
<testcase classname="tests.test_podman" name="test_user[podman-3.13.15-trixie-build]" time="1.0"/>
</testsuite></testsuites>"""


def test_junit_times_are_summed_per_image() -> None:
    built = ["3.13.15-bookworm", "3.13.15-bookworm-dev", "3.13.15-trixie-build"]
    found = junit.parse(JUNIT, built)
    assert found.per_image == {"3.13.15-bookworm": 1.5, "3.13.15-bookworm-dev": 2.5,
                               "3.13.15-trixie-build": 4.0, junit.NOT_AN_IMAGE: 0.75}
    assert (found.total, found.tests) == (42.5, 7)


def test_a_missing_junit_report_gives_no_figure(tmp_path: Path) -> None:
    assert junit.read(["3.13.15-bookworm"], tmp_path / "junit.xml") is None


# --- the report ---------------------------------------------------------------------------------


REFRESH = Refresh([BaseRefresh("trixie", 41.5, True)], {"3.13.15-trixie": 12.25})


def results(shared_size: int, speed: Speed | None, payload: int = 2_000_000) -> Results:
    summary = stats.Summary(0.02, 0.03, 41)
    checks = {"pip --version": (True, "pip 26 from /opt/venv/...")}
    target = TargetResult(
        "3.13.15-trixie", UPSTREAM, {"runtime": OURS}, overhead(OURS, UPSTREAM),
        Startup({BARE: summary, "tini + entrypoint": stats.Summary(0.025, 0.04, 41)}, summary,
                stats.Summary(0.5, 0.6, 7), stats.Summary(0.45, 0.5, 7)),
        BuildTimes(60.0, 12.0), PipShare(checks, checks, shared_size, shared_size // 5),
        payload)
    machine = Machine(2, 23.4, "Some CPU", "6.1", "docker 20.10", "2026-11-25T09:00:00+00:00")
    return Results(machine, [target], None, speed, REFRESH, 10_000_000, 150.0)


def test_report_says_missed_by_how_much_and_what_closes_it() -> None:
    text = report.render(results(30_000, None))
    # 1.8 + 6.1 + 0.027 + 0.18 MB added besides the upgrade: 8.107 MB against 5 MB.
    assert "3.13.15-trixie: 8.11 MB: **missed** by 3.11 MB" in text
    assert "makes it 2.04 MB, met, with every pip check passing" in text
    assert "Interpreter speed ≥ Debian's: not measured in this run" in text
    assert "2 cores (Some CPU), 23.4 GiB memory" in text
    assert "No `reports/junit.xml`" in text
    assert "| 3.13.15-trixie | tini + entrypoint | 25.0 | 40.0 | 41 | 5.0 | 1.25x |" in text
    assert "| matrix | 60.0 s | 12.0 s | 12.2 s |" in text


def test_report_gives_the_refresh_time_and_the_upgrade_payload_against_its_limit() -> None:
    text = report.render(results(30_000, None))
    assert ("Refresh < 60 s per image, 3.13.15-trixie: 53.8 s (base 41.5 s + assembly 12.2 s): "
            "**met**") in text
    assert "the same image as the current base: reproducible" in text
    assert "| **refresh of the selection** | | | **53.8 s** |" in text
    assert ("OS-upgrade payload, 3.13.15-trixie: 2.00 MB of the 10.00 MB that versions.yaml's "
            "debian.rebootstrap_payload_mb allows: within it") in text
    over = report.render(results(30_000, None, payload=12_500_000))
    assert "12.50 MB of the 10.00 MB" in over and "**over: the next bootstrap makes" in over


def test_report_speed_target_met_and_missed() -> None:
    contenders = [Contender("ours (PGO+LTO)", "a", "p", "3.13.15"),
                  Contender("Debian trixie python3.13", "b", "p", "3.13.5")]
    seconds = {"ours (PGO+LTO)": {"w": 1.0}, "Debian trixie python3.13": {"w": 0.97}}
    stdev = {label: {"w": 0.02} for label in seconds}
    slower = Speed(contenders, seconds, stdev, ratios(seconds, "ours (PGO+LTO)"), 3)
    assert "**missed** by 3.0 %" in report.render(results(30_000, slower))
    seconds["Debian trixie python3.13"]["w"] = 1.05
    faster = Speed(contenders, seconds, stdev, ratios(seconds, "ours (PGO+LTO)"), 3)
    text = report.render(results(30_000, faster))
    assert "**met** (ours 5.0 % faster)" in text
    assert "| w | 1000.00 ±2% | 1050.00 ±2% |" in text


def test_report_target_met_when_little_is_added() -> None:
    small = ImageSize(OURS.ref, 1, [*UPSTREAM.layers, layer("sha256:g", "apt-get upgrade -y",
                                                             9_000_000)])
    found = results(30_000, None)
    target = found.targets[0]
    lean = TargetResult(target.key, UPSTREAM, {"runtime": small}, overhead(small, UPSTREAM),
                        target.startup, target.builds, target.pip, 0)
    text = report.render(Results(found.machine, [lean], None, None, REFRESH, 10_000_000, 1.0))
    assert f"{lean.key}: 0.00 MB: **met** (5.00 MB to spare)" in text


def test_report_names_the_measured_fix_for_a_speed_miss() -> None:
    contenders = [Contender("ours", "a", "p", "3.13.15"), Contender(WITH_FRAME_POINTERS, "s", "p"),
                  Contender("Debian trixie python3.13", "b", "p", "3.13.5")]
    seconds = {"ours": {"w": 1.0}, WITH_FRAME_POINTERS: {"w": 0.8},
               "Debian trixie python3.13": {"w": 0.82}}
    found = Speed(contenders, seconds, {label: {"w": 0.0} for label in seconds},
                  ratios(seconds, "ours"), 3)
    text = report.render(results(30_000, found))
    assert "**missed** by 18.0 %" in text
    assert f"Measured in this run: {WITH_FRAME_POINTERS} is at 1.025, met." in text
    seconds[WITH_FRAME_POINTERS]["w"] = 1.1  # slower than ours: names nothing
    slower = Speed(contenders, seconds, found.stdev, ratios(seconds, "ours"), 3)
    assert "No build measured in this run does better" in report.render(results(30_000, slower))
