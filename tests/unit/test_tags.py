"""The tag scheme: computed from versions.yaml in one place."""

from __future__ import annotations

from datetime import date

import pytest

from pybase import matrix, tags

DAY = date(2026, 11, 21)


@pytest.fixture(scope="module")
def m() -> matrix.Matrix:
    return matrix.load()


def target(m: matrix.Matrix, selector: str) -> matrix.Target:
    (found,) = m.targets(include_all=True, only=[selector])
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
    seen: dict[str, str] = {}
    for t in m.targets(include_all=True):
        for variant in m.variants:
            for tag in tags.tags_for(m, t, variant, DAY):
                assert tag not in seen, f"{tag} given to {t.key}/{variant} and {seen[tag]}"
                seen[tag] = f"{t.key}/{variant}"


def test_local_tag(m: matrix.Matrix) -> None:
    assert tags.local_tag(target(m, "3.13-trixie"), "build") == "3.13.15-trixie-build"
