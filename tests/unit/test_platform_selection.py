"""Which images a test runs on by its `every_platform` marker (tests/support.on_platforms): the
rule that keeps emulated platforms to the checks that prove their image whole."""

from __future__ import annotations

import pytest
from support import MATRIX, Image, on_platforms

from pybase.core import tags
from pybase.infra import emulation

IMAGES = [Image(t, variant, tags.local_ref(MATRIX, t, variant))
          for t in MATRIX.targets(include_all=True) for variant in MATRIX.variants]
NATIVE = [i for i in IMAGES if emulation.is_native(i.target.arch)]
EMULATED = [i for i in IMAGES if not emulation.is_native(i.target.arch)]


def test_the_matrix_has_both_kinds_of_platform() -> None:
    # Without an emulated entry the cases below would prove nothing.
    assert NATIVE and EMULATED, [i.id for i in IMAGES]


def test_an_unmarked_test_runs_on_the_engines_own_platform_only() -> None:
    assert on_platforms(IMAGES, None) == NATIVE


def test_every_platform_runs_on_every_entry() -> None:
    assert on_platforms(IMAGES, "every entry") == IMAGES


def test_first_entry_keeps_each_emulated_platforms_first_entry_in_versions_yaml() -> None:
    chosen = on_platforms(IMAGES, "first entry")
    assert [i for i in chosen if i in NATIVE] == NATIVE
    kept = [i for i in chosen if i in EMULATED]
    first: dict[str, str] = {}
    for target in MATRIX.targets(include_all=True):
        first.setdefault(target.platform, target.key)
    assert kept == [i for i in EMULATED if first[i.target.platform] == i.target.key]
    # Every variant of that entry, and no other entry of the same platform.
    assert {i.variant for i in kept} == set(MATRIX.variants)
    assert len({(i.target.platform, i.target.key) for i in kept}) == len(
        {i.target.platform for i in EMULATED})
    assert len(kept) < len(EMULATED)


def test_a_misspelt_choice_names_the_choices() -> None:
    with pytest.raises(ValueError, match="takes one of .*'every entry'.*got 'first'"):
        on_platforms(IMAGES, "first")
