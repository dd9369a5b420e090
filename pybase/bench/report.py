"""The bench's Markdown report: targets (met or missed, by how much, and what closes a miss)
first, then one table per measurement."""

from __future__ import annotations

from pybase.bench import pyperformance
from pybase.bench.results import RUNTIME, Results, TargetResult
from pybase.bench.sizes import UPGRADE
from pybase.bench.speed import AGAIN, NO_PGO, PIE, VARIANTS, Speed, ratios
from pybase.bench.startup import BARE, ENTRYPOINT, FILE_SECRETS
from pybase.bench.stats import RatioSpread, Summary, noise_band
from pybase.infra import emulation

# The targets (issue 21). Sizes in bytes; MB = 10**6 bytes.
OVERHEAD_LIMIT = 2_500_000  # uncompressed: everything the runtime image adds but the OS upgrade
# The image users compare the bookworm runtime image with: docker-library's
# python:3.13-slim-bookworm, 44.3 MB compressed (it cannot be pulled here: figure from its
# registry page, 2026-12). Our image may be no bigger.
COMPRESSED_LIMITS = {"bookworm": ("docker-library python:3.13-slim-bookworm", 44_300_000)}
SPEED_TARGET = 1.05         # geometric mean of Debian's time over ours, all benchmarks
SPEED_FLOOR = 0.98          # no benchmark slower than this against Debian's
# Start-up paths of ours, each compared with the upstream image's bare `python -c pass`.
STARTUP_PATHS = (BARE, FILE_SECRETS, ENTRYPOINT)
DEBIAN = "Debian"


def mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def added(target: TargetResult) -> int:
    """What the runtime image adds beyond the upgrade payload, uncompressed."""
    return sum(size for cause, (size, _) in target.overhead.items() if cause != UPGRADE)


def verdict(met: bool, detail: str) -> str:
    return f"**met** ({detail})" if met else f"**missed** ({detail})"


def within(value: int, limit: int) -> str:
    """A size against its limit: met or missed, with the margin either way."""
    gap = limit - value
    return verdict(gap >= 0, f"{mb(abs(gap))} " + ("to spare" if gap >= 0 else "over"))


def target_lines(results: Results) -> list[str]:
    lines = []
    for t in results.targets:
        value = added(t)
        lines.append(f"- Our bytes ≤ {mb(OVERHEAD_LIMIT)} over upstream (uncompressed, all but "
                     f"the OS upgrade), {t.key}: {mb(value)}: " + within(value, OVERHEAD_LIMIT))
        release = t.key.rsplit("-", 1)[1]
        if release in COMPRESSED_LIMITS:
            name, limit = COMPRESSED_LIMITS[release]
            size = t.images[RUNTIME].gzip
            lines.append(f"- Runtime image ≤ {name} ({mb(limit)} compressed), {t.key}: "
                         f"{mb(size)}: " + within(size, limit))
        lines += _startup_lines(t)
    lines += _refresh_lines(results)
    lines += _speed_lines(results)
    return lines


def _startup_lines(t: TargetResult) -> list[str]:
    """Each path of ours against the upstream image's bare start, median and p95."""
    theirs = t.startup.upstream
    lines = []
    for case in STARTUP_PATHS:
        ours = t.startup.ours.get(case)
        if ours is None:
            continue
        met = ours.median <= theirs.median and ours.p95 <= theirs.p95
        lines.append(
            f"- Start-up no slower than upstream's `python -c pass`, {t.key}, {case}: median "
            f"{ms(ours.median)} vs {ms(theirs.median)} ms ({ours.median / theirs.median:.2f}x), "
            f"p95 {ms(ours.p95)} vs {ms(theirs.p95)} ms ({ours.p95 / theirs.p95:.2f}x): "
            + ("**met**" if met else "**missed**"))
    return lines


def _noise(speed: Speed) -> float | None:
    """This run's noise band for a geometric mean (stats.noise_band), from ours against itself;
    None when the run had no such contender (or too few benchmarks)."""
    if AGAIN not in speed.seconds or len(speed.seconds[AGAIN]) < 2:
        return None
    ours = speed.contenders[0].label
    return noise_band([speed.seconds[AGAIN][w] / speed.seconds[ours][w]
                       for w in speed.seconds[ours]])


def _resolved(spread: RatioSpread, band: float | None) -> str:
    if band is None:
        return "no noise measured in this run"
    if abs(spread.mean - 1) <= band:
        return f"within this run's noise (±{band:.1%})"
    return f"beyond this run's noise (±{band:.1%})"


def _speed_lines(results: Results) -> list[str]:
    speed = results.speed
    if speed is None:
        return ["- Interpreter speed: not measured in this run (`nox -s bench -- --speed`)."]
    debian = next(c.label for c in speed.contenders if c.label.startswith(DEBIAN))
    spread, core = speed.ratios[debian], speed.core_ratios[debian]
    band = _noise(speed)
    lines = [
        f"- Interpreter speed ≥ {SPEED_TARGET:.2f}x Debian's ({len(speed.seconds[debian])} "
        f"benchmarks, geometric mean): {spread.mean:.3f}: "
        + verdict(spread.mean >= SPEED_TARGET, f"{(spread.mean - SPEED_TARGET) * 100:+.1f} points")
        + f"; the first eight alone: {core.mean:.3f}",
        f"- No benchmark below {SPEED_FLOOR:.2f}x Debian's: lowest {spread.low:.3f}: "
        + ("**met**" if spread.low >= SPEED_FLOOR else "**missed**"),
    ]
    if band is not None:
        same = speed.ratios[AGAIN]
        lines.append(f"- This run's noise: ours against itself (the same image as another "
                     f"contender) {same.mean:.3f}, {same.low:.3f}–{same.high:.3f} per "
                     f"benchmark, so a geometric mean within ±{band:.1%} of 1 is not resolved")
    if PIE in speed.ratios:
        shipped = speed.ratios[PIE]
        lines.append(f"- Ahead of the recipe shipped until now ({PIE}): {shipped.mean:.3f}x: "
                     + ("**met**" if shipped.mean > 1.0 else "**missed**")
                     + f", {_resolved(shipped, band)}")
    if (pgo := speed.ratios.get(NO_PGO)) is not None:
        lines.append(f"- What PGO is worth, so what the cross-compiled arm64 trees lack ({NO_PGO}"
                     f" on linux/{emulation.native_arch()}): ours is {pgo.mean:.3f}x as fast "
                     f"({pgo.low:.3f}–{pgo.high:.3f}), {_resolved(pgo, band)}")
    for label in (label for label, _, _, _ in VARIANTS if label not in (PIE, NO_PGO)):
        if (lever := speed.ratios.get(label)) is not None:
            lines.append(f"- Lever {label}: ours is {lever.mean:.3f}x as fast ({lever.low:.3f}–"
                         f"{lever.high:.3f}; below 1: the lever is faster), "
                         + _resolved(lever, band))
    if spread.mean < SPEED_TARGET:
        lines.append(f"  - {_speed_fix(results, debian)}")
    return lines


REFRESH_TARGET = 60.0  # seconds per image: base from today's archive + CPython assembled


NO_BUILDS = "not measured in this run (`--no-builds`)"


def _refresh_lines(results: Results) -> list[str]:
    refresh, lines = results.refresh, []
    for t in results.targets:
        release = t.key.rsplit("-", 1)[1]
        if refresh is None:
            lines.append(f"- Refresh < {REFRESH_TARGET:.0f} s per image, {t.key}: {NO_BUILDS}")
        else:
            seconds = refresh.per_image(t.key, release)
            verdict = "met" if seconds <= REFRESH_TARGET else "missed"
            lines.append(f"- Refresh < {REFRESH_TARGET:.0f} s per image, {t.key}: "
                         f"{seconds:.1f} s (base {seconds - refresh.assemble_s[t.key]:.1f} s + "
                         f"assembly {refresh.assemble_s[t.key]:.1f} s): **{verdict}**")
        due = t.upgrade_payload > results.payload_limit
        lines.append(f"- OS-upgrade payload, {t.key}: {mb(t.upgrade_payload)} of the "
                     f"{mb(results.payload_limit)} that versions.yaml's "
                     f"debian.rebootstrap_payload_mb allows: "
                     + ("**over: the next bootstrap makes the base again**" if due
                        else "within it (the base is kept)"))
    return lines


def _speed_fix(results: Results, debian: str) -> str:
    """What the run itself says about closing the speed gap: every other build of ours that
    does better against Debian's."""
    speed = results.speed
    if speed is None:
        return ""
    ours = speed.contenders[0].label
    against_debian = {label: ratios(speed.seconds, label)[debian].mean for label in speed.seconds
                      if label not in (ours, AGAIN, debian)}
    better = [(label, value) for label, value in against_debian.items()
              if value > speed.ratios[debian].mean]
    if not better:
        return "No build measured in this run does better; the per-benchmark table shows where."
    return "Measured in this run: " + "; ".join(
        f"{label} is at {value:.3f}, " + ("met" if value >= SPEED_TARGET
                                         else f"still missed by {(SPEED_TARGET - value) * 100:.1f} points")
        for label, value in better) + "."


def _size_table(results: Results) -> list[str]:
    """Every platform's images beside its upstream image (arm64 beside amd64)."""
    rows = [("| platform | image | uncompressed | compressed (gzip layers) | layers "
             "| added uncompressed | added compressed | added layers |"),
            "| --- | --- | --: | --: | --: | --: | --: | --: |"]
    for p in results.platforms:
        up = p.upstream
        rows.append(f"| {p.platform} | `{up.ref}` | {mb(up.engine_size)} | {mb(up.gzip)} "
                    f"| {len(up.layers)} | | | |")
        rows += [f"| {p.platform} | `{image.ref}` | {mb(image.engine_size)} | {mb(image.gzip)} "
                 f"| {len(image.layers)} | +{mb(image.engine_size - up.engine_size)} "
                 f"| +{mb(image.gzip - up.gzip)} | +{len(image.layers) - len(up.layers)} |"
                 for image in p.images.values()]
    return rows


def _overhead_table(results: Results) -> list[str]:
    causes = sorted({c for t in results.targets for c in t.overhead})
    keys = [t.key for t in results.targets]
    rows = ["| runtime image adds (layer tars) | " + " | ".join(keys) + " |",
            "| --- |" + " --: |" * len(keys)]
    for cause in causes:
        cells = [t.overhead.get(cause, (0, 0)) for t in results.targets]
        rows.append(f"| {cause} | " + " | ".join(f"{mb(s)} ({mb(g)} gz)" for s, g in cells) + " |")
    rows.append("| **all but the OS upgrade** | "
                + " | ".join(f"**{mb(added(t))}**" for t in results.targets) + " |")
    return rows


def _startup_rows(t: TargetResult) -> list[str]:
    s = t.startup
    bare = s.ours[BARE]

    def row(image: str, case: str, found: Summary, base: Summary | None) -> str:
        extra = (f"{ms(found.median - base.median)} | {found.median / base.median:.2f}x"
                 if base else " | ")
        return (f"| {image} | {case} | {ms(found.median)} | {ms(found.p95)} | {found.runs} "
                f"| {extra} |")
    rows = [row(f"upstream {t.key}", BARE, s.upstream, None)]
    rows += [row(t.key, case, found, None if case == BARE else bare)
             for case, found in s.ours.items()]
    rows.append(row(f"upstream {t.key}", "`docker run --rm`", s.container_upstream, None))
    rows.append(row(t.key, "`docker run --rm` (tini + entrypoint)", s.container_ours,
                    s.container_upstream))
    return rows


def _build_table(results: Results) -> list[str]:
    refresh = results.refresh
    times = [(t.key, t.builds) for t in results.targets if t.builds is not None]
    if refresh is None or len(times) != len(results.targets):
        return [f"Cold and warm builds and the refresh: {NO_BUILDS}."]
    rows = [("| image | cold: our layers + SBOM (`--no-cache`) | warm: no-change rebuild "
            "| refresh: CPython assembled on a new base (`--no-cache`) |"),
            "| --- | --: | --: | --: |"]
    for key, builds in times:
        rows.append(f"| {key} (runtime) | {builds.cold_s:.1f} s | {builds.warm_s:.1f} s "
                    f"| {refresh.assemble_s[key]:.1f} s |")
    rows.append(f"| matrix | {sum(b.cold_s for _, b in times):.1f} s "
                f"| {sum(b.warm_s for _, b in times):.1f} s "
                f"| {sum(refresh.assemble_s.values()):.1f} s |")
    for base in refresh.bases:
        rows.append(f"| debian:{base.release}-slim from today's archive (mmdebstrap) | | "
                    f"| {base.seconds:.1f} s ("
                    + ("the same image as the current base: reproducible" if base.same_as_current
                       else "differs from the current base: the archive moved since") + ") |")
    rows.append(f"| **refresh of the selection** | | | **{refresh.total:.1f} s** |")
    return rows + ["", ("Cold and warm: on a bench-only copy of images/python-base/Dockerfile "
                   "(same steps, `pybase-bench/` tag, removed afterwards); the upstream image "
                   "is present. Refresh: bench-only tags; no compiler runs.")]


def _tests_table(results: Results) -> list[str]:
    if results.tests is None:
        return ["No `reports/junit.xml`: run `nox -s test` first; no figure is given."]
    rows = ["| image | test time |", "| --- | --: |"]
    rows += [f"| {image} | {seconds:.1f} s |" for image, seconds in results.tests.per_image.items()]
    rows.append(f"| whole suite ({results.tests.tests} tests) | {results.tests.total:.1f} s |")
    return rows


def _speed_table(results: Results) -> list[str]:
    speed = results.speed
    if speed is None:
        return ["Not run: add `-- --speed`."]
    labels = [c.label for c in speed.contenders]
    rows = ["| benchmark (ms per iteration; ± largest stdev) | "
            + " | ".join(f"{c.label} ({c.version})" for c in speed.contenders) + " |",
            "| --- |" + " --: |" * len(labels)]
    for benchmark in speed.seconds[labels[0]]:
        rows.append(f"| {benchmark} | " + " | ".join(
            f"{speed.seconds[label][benchmark] * 1000:.2f} ±{speed.stdev[label][benchmark]:.0%}"
            for label in labels) + " |")
    for label, spread in speed.ratios.items():
        core = speed.core_ratios[label]
        rows.append(f"| **ours vs {label}** (× faster, geo. mean; min–max) | "
                    f"{spread.mean:.3f} ({spread.low:.3f}–{spread.high:.3f}); first eight "
                    f"{core.mean:.3f} ({core.low:.3f}–{core.high:.3f}) |"
                    + " |" * (len(labels) - 1))
    return rows + ["", (f"pyperformance {pyperformance.PYPERFORMANCE.partition('==')[2]} "
                        f"benchmarks under pyperf {pyperformance.PYPERF.partition('==')[2]} "
                        f"`--fast`; {speed.rounds} rounds, contenders alternating, each run in a "
                        "fresh `--network none` container.")]


def render(results: Results) -> str:
    m = results.machine
    parts = [
        "# python-base bench", "",
        (f"Taken {m.taken} on {m.cores} cores ({m.cpu or 'unknown CPU'}), "
        f"{m.memory_gib:.1f} GiB memory, kernel {m.kernel}, {m.engine}; the bench took "
        f"{results.seconds:.0f} s. MB = 10⁶ bytes. Nothing here is a timed test assertion."), "",
        "## Targets", "", *target_lines(results), "",
        "## Size", "", *_size_table(results), "",
        "## Our overhead by cause", "", *_overhead_table(results), "",
        "## Start-up (ms, in-container runs)", "",
        "| image | case | median | p95 | runs | overhead vs bare | ratio |",
        "| --- | --- | --: | --: | --: | --: | --: |",
        *[r for t in results.targets for r in _startup_rows(t)], "",
        "## Build", "", *_build_table(results), "",
        "## Tests (from reports/junit.xml)", "", *_tests_table(results), "",
        "## Interpreter speed", "", *_speed_table(results), "",
    ]
    return "\n".join(parts)
