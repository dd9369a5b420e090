"""The tag scheme, in one place (README, "Tags").

For Python 3.13.15 on bookworm (the default release), built on 2026-11-21, variant runtime:
  3.13.15-bookworm-20261121   immutable: never moved once pushed
  3.13.15-bookworm, 3.13-bookworm
  3.13.15, 3.13               rolling tags without a release follow debian.default
  latest                      only for tags.latest's minor on the default release
Variants append `-build` / `-dev` to each (`latest` becomes `build` / `dev`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from pybase.core.matrix import Matrix, Target, Variant


def suffix(variant: Variant) -> str:
    return "" if variant == "runtime" else f"-{variant}"


def immutable_tag(target: Target, variant: Variant, build_date: date, date_format: str,
                  serial: int = 0) -> str:
    """`3.13.15-bookworm-20261121`; a second changed build published the same day gets
    `.1` after the date (`3.13.15-bookworm-20261121.1-build`), a third `.2`, and so on."""
    same_day = f".{serial}" if serial else ""
    return f"{target.key}-{build_date.strftime(date_format)}{same_day}{suffix(variant)}"


@dataclass(frozen=True)
class ImmutableTag:
    """An immutable tag read back: `3.13.15-bookworm-20261121.1-build`."""

    target: Target
    variant: Variant
    built_on: date
    serial: int  # the same-day serial: 0 for the first image of the day, then .1, .2, ...


def parse_immutable(matrix: Matrix, tag: str) -> ImmutableTag | None:
    """The immutable tag `tag` of any declared entry, parsed; None for any other tag."""
    for target in matrix.targets(include_all=True):
        for variant in matrix.variants:
            found = re.fullmatch(rf"{re.escape(target.key)}-(\d{{8}})(?:\.(\d+))?"
                                 rf"{re.escape(suffix(variant))}", tag)
            if found:
                built = datetime.strptime(found.group(1), matrix.tags.date_format).date()
                return ImmutableTag(target, variant, built, int(found.group(2) or 0))
    return None


def local_tag(target: Target, variant: Variant) -> str:
    """The tag `nox -s build` gives an image locally and tests address it by: the platform's
    architecture ends it, but for the primary platform's (`3.13.15-bookworm-build-arm64`)."""
    return f"{target.key}{suffix(variant)}{target.local_suffix}"


def local_ref(matrix: Matrix, target: Target, variant: Variant) -> str:
    """`python-base:3.13.15-bookworm-dev`: the local image of one entry and variant."""
    return f"{matrix.image.name}:{local_tag(target, variant)}"


def tags_for(matrix: Matrix, target: Target, variant: Variant, build_date: date) -> list[str]:
    """Every tag of one built image, the immutable one first."""
    entry, release = target.python, target.release
    rolling = [f"{entry.version}-{release}", f"{entry.minor}-{release}"]
    if target.is_default_release:
        rolling += [entry.version, entry.minor]
    tags = [immutable_tag(target, variant, build_date, matrix.tags.date_format)]
    tags += [t + suffix(variant) for t in rolling]
    if target.is_default_release and entry.minor == matrix.tags.latest:
        tags.append("latest" if variant == "runtime" else variant)
    return tags
