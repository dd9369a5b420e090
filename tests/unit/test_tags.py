"""The tag scheme: computed from versions.yaml in one place."""

from __future__ import annotations

from datetime import date

import pytest

from pybase.core import matrix, tags

DAY = date(2026, 11, 21)


@pytest.fixture(scope="module")
def m() -> matrix.Matrix:
    return matrix.load()


def target(m: matrix.Matrix, selector: str, arch: str = "amd64") -> matrix.Target:
    (found,) = m.targets(include_all=True, only=[f"{selector}-{arch}"])
    return found


def test_default_release_of_latest_minor_gets_every_rolling_tag(m: matrix.Matrix) -> None:
    assert tags.tags_for(m, target(m, "3.13-bookworm"), "runtime", DAY) == [
        "3.13.15-bookworm-20261121", "3.13.15-bookworm", "3.13-bookworm", "3.13.15", "3.13",
        "latest",
    ]


def test_variants_suffix_every_tag(m: matrix.Matrix) -> None:
    assert tags.tags_for(m, target(m, "3.13-bookworm"), "build", DAY) == [
        "3.13.15-bookworm-20261121-build", "3.13.15-bookworm-build", "3.13-bookworm-build",
        "3.13.15-build", "3.13-build", "build",
    ]
    assert tags.tags_for(m, target(m, "3.13-bookworm"), "dev", DAY)[-1] == "dev"


def test_other_release_never_takes_the_release_less_tags(m: matrix.Matrix) -> None:
    assert tags.tags_for(m, target(m, "3.13-trixie"), "runtime", DAY) == [
        "3.13.15-trixie-20261121", "3.13.15-trixie", "3.13-trixie",
    ]


def test_other_minor_has_no_latest(m: matrix.Matrix) -> None:
    got = tags.tags_for(m, target(m, "3.12-bookworm"), "dev", DAY)
    assert got[0] == "3.12.13-bookworm-20261121-dev"
    assert "3.12-dev" in got and "dev" not in got and "latest" not in got


def test_rolling_minor_follows_the_default_release(m: matrix.Matrix) -> None:
    text = matrix.DEFAULT_PATH.read_text(encoding="utf-8").replace("default: bookworm", "default: trixie")
    switched = matrix.parse(text)
    assert "3.13" in tags.tags_for(switched, target(switched, "3.13-trixie"), "runtime", DAY)
    assert "3.13" not in tags.tags_for(switched, target(switched, "3.13-bookworm"), "runtime", DAY)


def test_no_two_images_share_a_tag(m: matrix.Matrix) -> None:
    """No two (entry, variant) share a tag; the platforms of one share all of them (an index)."""
    seen: dict[str, str] = {}
    for t in m.targets(include_all=True):
        for variant in m.variants:
            for tag in tags.tags_for(m, t, variant, DAY):
                owner = f"{t.key}/{variant}"
                assert seen.setdefault(tag, owner) == owner, f"{tag}: {owner} and {seen[tag]}"
    per_platform = {t.arch: tags.tags_for(m, t, "runtime", DAY)
                    for t in m.targets(only=["3.13-bookworm"])}
    assert set(per_platform) == {"amd64", "arm64"}
    assert per_platform["amd64"] == per_platform["arm64"]


def test_local_tag_names_every_platform_but_the_primary(m: matrix.Matrix) -> None:
    assert tags.local_tag(target(m, "3.13-trixie"), "build") == "3.13.15-trixie-build"
    assert tags.local_tag(target(m, "3.13-trixie", "arm64"), "build") == "3.13.15-trixie-build-arm64"
    assert tags.local_ref(m, target(m, "3.13-trixie", "arm64"), "runtime") == (
        "python-base:3.13.15-trixie-arm64")


def test_same_day_serial_goes_between_date_and_variant(m: matrix.Matrix) -> None:
    t = target(m, "3.13-bookworm")
    assert tags.immutable_tag(t, "build", DAY, "%Y%m%d", 2) == "3.13.15-bookworm-20261121.2-build"
    assert tags.immutable_tag(t, "runtime", DAY, "%Y%m%d") == "3.13.15-bookworm-20261121"


@pytest.mark.parametrize(("tag", "expected"), [
    ("3.13.15-bookworm-20261121", ("3.13.15-bookworm", "runtime", 0)),
    ("3.13.15-bookworm-20261121.3", ("3.13.15-bookworm", "runtime", 3)),
    ("3.13.15-trixie-20261121-dev", ("3.13.15-trixie", "dev", 0)),
    ("3.12.13-trixie-20261121.1-build", ("3.12.13-trixie", "build", 1)),
])
def test_immutable_tags_parse_back(m: matrix.Matrix, tag: str,
                                   expected: tuple[str, str, int]) -> None:
    found = tags.parse_immutable(m, tag)
    assert found is not None
    assert (found.target.key, found.variant, found.serial) == expected and found.built_on == DAY


@pytest.mark.parametrize("tag", ["3.13.15-bookworm", "3.13", "latest", "3.13.15-bookworm-2026112",
                                 "3.13.15-bookworm-20261121-slim", "3.13.99-bookworm-20261121"])
def test_rolling_and_foreign_tags_are_not_immutable(m: matrix.Matrix, tag: str) -> None:
    assert tags.parse_immutable(m, tag) is None
