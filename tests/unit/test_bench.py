"""The bench's pure logic: statistics, layer attribution, JUnit parsing, the report's targets."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from pybase.bench import builds, junit, report, stats
from pybase.bench.builds import BuildTimes
from pybase.bench.refresh import BaseRefresh, Refresh
from pybase.bench.results import Machine, PlatformSizes, Results, TargetResult
from pybase.bench.sizes import UPGRADE, ImageSize, Layer, classify, overhead, pair_history
from pybase.bench.speed import AGAIN, BOLT, NO_PGO, PIE, Contender, Speed, ratios
from pybase.bench.startup import BARE, ENTRYPOINT, FILE_SECRETS, Startup
from pybase.build import images
from pybase.infra import emulation, engine

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
    ('RUN /bin/sh -c set -eux; python3 -m venv --system-site-packages --without-pip "$VIRTUAL_ENV"',
     "venv"),
    ("RUN /bin/sh -c set -eux; env -u PYTHONDONTWRITEBYTECODE python3 -c pass;",
     "start-up bytecode"),
    ("RUN /bin/sh -c set -eux; cp -av /tmp/cpython-lib/libpython3*.so* /usr/local/lib/",
     "libpython (build)"),
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
    assert found == {"tini": (1_800_000, 600_000), "venv": (6_100_000, 2_033_333),
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
DEBIAN = "Debian trixie python3.13"


def results(speed: Speed | None, payload: int = 2_000_000, ours: ImageSize = OURS,
            startup: dict[str, stats.Summary] | None = None) -> Results:
    upstream = stats.Summary(0.020, 0.030, 41)
    target = TargetResult(
        "3.13.15-trixie", UPSTREAM, {"runtime": ours}, overhead(ours, UPSTREAM),
        Startup(startup or {BARE: upstream, ENTRYPOINT: stats.Summary(0.025, 0.04, 41)},
                upstream, stats.Summary(0.5, 0.6, 7), stats.Summary(0.45, 0.5, 7)),
        BuildTimes(60.0, 12.0), payload)
    machine = Machine(2, 23.4, "Some CPU", "6.1", "docker 20.10", "2026-11-25T09:00:00+00:00")
    return Results(machine, [target], None, speed, REFRESH, 10_000_000, 150.0)


def test_report_says_missed_by_how_much() -> None:
    text = report.render(results(None))
    # 1.8 + 6.1 + 0.027 + 0.18 MB added besides the upgrade: 8.107 MB against 2.5 MB.
    assert "3.13.15-trixie: 8.11 MB: **missed** (5.61 MB over)" in text
    assert "Interpreter speed: not measured in this run" in text
    assert "2 cores (Some CPU), 23.4 GiB memory" in text
    assert "No `reports/junit.xml`" in text
    assert "| 3.13.15-trixie | tini + entrypoint | 25.0 | 40.0 | 41 | 5.0 | 1.25x |" in text
    assert "| matrix | 60.0 s | 12.0 s | 12.2 s |" in text


def test_report_compares_each_start_up_path_with_upstreams_bare_start() -> None:
    faster, slower = stats.Summary(0.015, 0.025, 41), stats.Summary(0.021, 0.029, 41)
    text = report.render(results(None, startup={BARE: faster, FILE_SECRETS: slower,
                                                ENTRYPOINT: stats.Summary(0.019, 0.031, 41)}))
    assert ("python -c pass: median 15.0 vs 20.0 ms (0.75x), p95 25.0 vs 30.0 ms (0.83x): "
            "**met**") in text
    assert "python -m file_secrets true: median 21.0 vs 20.0 ms (1.05x)" in text
    assert "tini + entrypoint: median 19.0 vs 20.0 ms (0.95x), p95 31.0 vs 30.0 ms (1.03x): " \
           "**missed**" in text  # the p95 counts too


def test_report_gives_the_refresh_time_and_the_upgrade_payload_against_its_limit() -> None:
    text = report.render(results(None))
    assert ("Refresh < 60 s per image, 3.13.15-trixie: 53.8 s (base 41.5 s + assembly 12.2 s): "
            "**met**") in text
    assert "the same image as the current base: reproducible" in text
    assert "| **refresh of the selection** | | | **53.8 s** |" in text
    assert ("OS-upgrade payload, 3.13.15-trixie: 2.00 MB of the 10.00 MB that versions.yaml's "
            "debian.rebootstrap_payload_mb allows: within it") in text
    over = report.render(results(None, payload=12_500_000))
    assert "12.50 MB of the 10.00 MB" in over and "**over: the next bootstrap makes" in over


def test_a_run_without_builds_says_what_it_did_not_measure() -> None:
    full = results(None)
    target = dataclasses.replace(full.targets[0], builds=None)
    text = report.render(dataclasses.replace(full, targets=[target], refresh=None))
    assert ("- Refresh < 60 s per image, 3.13.15-trixie: not measured in this run "
            "(`--no-builds`)") in text
    assert "Cold and warm builds and the refresh: not measured in this run" in text
    assert "OS-upgrade payload, 3.13.15-trixie: 2.00 MB" in text  # read from the image itself
    assert "| **refresh of the selection** |" not in text


def speed_of(seconds: dict[str, dict[str, float]]) -> Speed:
    contenders = [Contender(label, "ref", "p", "3.13.15") for label in seconds]
    stdev = {label: {w: 0.02 for w in times} for label, times in seconds.items()}
    return Speed(contenders, seconds, stdev, ratios(seconds, "ours"),
                 ratios(seconds, "ours", ["nbody"]), 2)


def test_report_speed_targets_met_and_missed() -> None:
    seconds = {"ours": {"nbody": 1.0, "go": 1.0}, DEBIAN: {"nbody": 0.97, "go": 1.2}}
    text = report.render(results(speed_of(seconds)))
    # sqrt(0.97 * 1.2) = 1.0789: the mean is met, the floor is not (nbody at 0.97).
    assert "≥ 1.05x Debian's (2 benchmarks, geometric mean): 1.079: **met** (+2.9 points); " \
           "the first eight alone: 0.970" in text
    assert "No benchmark below 0.98x Debian's: lowest 0.970: **missed**" in text
    assert "| nbody | 1000.00 ±2% | 970.00 ±2% |" in text
    seconds[DEBIAN] = {"nbody": 1.02, "go": 1.0}
    text = report.render(results(speed_of(seconds)))
    assert "1.010: **missed** (-4.0 points)" in text
    assert "lowest 1.000: **met**" in text


def test_report_target_met_when_little_is_added() -> None:
    small = ImageSize(OURS.ref, 1, [*UPSTREAM.layers, layer("sha256:g", "apt-get upgrade -y",
                                                             9_000_000)])
    text = report.render(results(None, ours=small))
    assert "3.13.15-trixie: 0.00 MB: **met** (2.50 MB to spare)" in text


def test_report_checks_the_bookworm_image_against_the_official_one() -> None:
    bookworm = results(None)
    target = bookworm.targets[0]
    named = TargetResult("3.13.15-bookworm", target.upstream, target.images, target.overhead,
                         target.startup, target.builds, 0)
    text = report.render(Results(bookworm.machine, [named], None, None,
                                 Refresh([BaseRefresh("bookworm", 40.0, True)],
                                         {"3.13.15-bookworm": 1.0}), 10_000_000, 1.0))
    # OURS: a third of its layers' 123.1 MB, compressed.
    assert ("Runtime image ≤ docker-library python:3.13-slim-bookworm (44.30 MB compressed), "
            "3.13.15-bookworm: 41.04 MB: **met** (3.26 MB to spare)") in text
    assert "Runtime image ≤" not in report.render(results(None))  # trixie: no official figure


def test_report_names_the_shipped_recipe_and_the_measured_fix_for_a_speed_miss() -> None:
    seconds = {"ours": {"nbody": 1.0}, PIE: {"nbody": 0.8}, DEBIAN: {"nbody": 0.82}}
    text = report.render(results(speed_of(seconds)))
    assert "**missed** (-23.0 points)" in text
    assert f"Ahead of the recipe shipped until now ({PIE}): 0.800x: **missed**" in text
    assert f"Measured in this run: {PIE} is at 1.025, still missed by 2.5 points." in text
    seconds[PIE]["nbody"] = 1.1  # slower than ours: names nothing
    text = report.render(results(speed_of(seconds)))
    assert "No build measured in this run does better" in text
    assert f"({PIE}): 1.100x: **met**" in text


def test_report_states_what_pgo_is_worth_and_what_bolt_adds() -> None:
    seconds = {"ours": {"nbody": 1.0, "go": 1.0}, NO_PGO: {"nbody": 1.21, "go": 1.0},
               BOLT: {"nbody": 0.9, "go": 0.9}, DEBIAN: {"nbody": 1.0, "go": 1.0}}
    text = report.render(results(speed_of(seconds)))
    # sqrt(1.21 * 1.0) = 1.1: PGO's worth on this machine, the arm64 trees' missing part.
    assert f"({NO_PGO} on linux/{emulation.native_arch()}): ours is 1.100x as fast " \
           "(1.000–1.210)" in text
    assert (f"- Lever {BOLT}: ours is 0.900x as fast (0.900–0.900; below 1: the lever is "
            "faster), no noise measured in this run") in text
    del seconds[NO_PGO], seconds[BOLT]
    assert "What PGO is worth" not in report.render(results(speed_of(seconds)))


def test_noise_band_is_the_standard_error_of_the_mean_log_ratio() -> None:
    assert stats.noise_band([1.0, 1.0, 1.0]) == 0.0
    # log-ratios +-0.1: stdev 0.11547 over 4 -> 0.05774 standard error, times 1.96.
    spread = [math.exp(0.1), math.exp(-0.1)] * 2
    assert stats.noise_band(spread) == pytest.approx(math.exp(1.96 * 0.1 / math.sqrt(3)) - 1)
    # The same spread over four times as many benchmarks halves the band (roughly).
    assert stats.noise_band(spread * 4) < stats.noise_band(spread) / 1.9
    with pytest.raises(ValueError, match="two or more positive"):
        stats.noise_band([1.0])


def test_report_holds_each_lever_against_the_runs_own_noise() -> None:
    # Ours against itself: +-2 % on alternate benchmarks, so a band of ~2.3 % over four.
    seconds = {"ours": {"nbody": 1.0, "go": 1.0, "float": 1.0, "chaos": 1.0},
               AGAIN: {"nbody": 1.02, "go": 0.98, "float": 1.02, "chaos": 0.98},
               BOLT: {"nbody": 0.99, "go": 0.99, "float": 0.99, "chaos": 0.99},
               NO_PGO: {"nbody": 1.2, "go": 1.2, "float": 1.2, "chaos": 1.2},
               DEBIAN: {"nbody": 1.0, "go": 1.0, "float": 1.0, "chaos": 1.0}}
    text = report.render(results(speed_of(seconds)))
    band = stats.noise_band([1.02, 0.98, 1.02, 0.98])
    assert (f"- This run's noise: ours against itself (the same image as another contender) "
            f"1.000, 0.980–1.020 per benchmark, so a geometric mean within ±{band:.1%} of 1 is "
            "not resolved") in text
    assert f"below 1: the lever is faster), within this run's noise (±{band:.1%})" in text
    assert f"(1.200–1.200), beyond this run's noise (±{band:.1%})" in text
    # Ours against itself is noise, never a build that closes the gap.
    assert "ours again" not in text.partition("Measured in this run")[2].partition("\n")[0]


def test_every_platform_gets_its_sizes_beside_its_upstream() -> None:
    base = results(None)
    arm64 = PlatformSizes("3.13.15-trixie-arm64", "linux/arm64", UPSTREAM, {"runtime": OURS})
    text = report.render(Results(base.machine, base.targets, None, None, REFRESH, 10_000_000,
                                 1.0, [arm64]))
    section = text.split("## Size", 1)[1].split("## ", 1)[0]
    added = len(OURS.layers) - len(UPSTREAM.layers)
    assert (f"| linux/arm64 | `{OURS.ref}` | {report.mb(OURS.engine_size)} "
            f"| {report.mb(OURS.gzip)} | {len(OURS.layers)} "
            f"| +{report.mb(OURS.engine_size - UPSTREAM.engine_size)} "
            f"| +{report.mb(OURS.gzip - UPSTREAM.gzip)} | +{added} |") in section
    assert f"| linux/arm64 | `{UPSTREAM.ref}` |" in section
