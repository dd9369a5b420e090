"""Load and validate versions.yaml: the build matrix every session works from.

Validation is pydantic's, read through pybase.core.validated_yaml: every error names file, line, field,
the value found and what was expected.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from pybase.core import paths, validated_yaml
from pybase.core.errors import PybaseError
from pybase.core.validated_yaml import Location, Problem, dotted, found

DEFAULT_PATH = paths.REPO / "versions.yaml"

Variant = Literal["runtime", "build", "dev"]
Release = Literal["bullseye", "bookworm", "trixie", "forky"]
Platform = Literal["linux/amd64", "linux/arm64"]
PLATFORMS: tuple[Platform, ...] = typing.get_args(Platform)
Minor = Annotated[str, Field(strict=True, pattern=r"^3\.\d{1,2}$")]
PatchVersion = Annotated[str, Field(strict=True, pattern=r"^3\.\d{1,2}\.\d{1,3}$")]
Sha256 = Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{64}$")]


class MatrixError(PybaseError):
    """versions.yaml is unusable; the message says where and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ImageConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")]
    registry: Annotated[str, Field(min_length=1)]
    title: str
    vendor: str
    source: str
    licenses: str


class DebianRelease(_Strict):
    version: Annotated[str, Field(pattern=r"^\d+$")]


class DebianConfig(_Strict):
    default: Release
    releases: Annotated[dict[Release, DebianRelease], Field(min_length=1)]
    # MB (10**6 bytes, uncompressed) that the OS-upgrade layer may add before bootstrap makes the
    # base again from today's archive (pybase.upstream.payload).
    rebootstrap_payload_mb: Annotated[int, Field(ge=1, le=1000)]


class CPythonConfig(_Strict):
    optimize: bool


class TagPolicy(_Strict):
    date_format: Literal["%Y%m%d"]
    latest: Minor


class PythonEntry(_Strict):
    minor: Minor
    version: PatchVersion
    sha256: Sha256
    debian: Annotated[list[Release], Field(min_length=1)]
    build: bool


class Matrix(_Strict):
    image: ImageConfig
    debian: DebianConfig
    platforms: Annotated[list[Platform], Field(min_length=1)]
    variants: Annotated[list[Variant], Field(min_length=1)]
    cpython: CPythonConfig
    tags: TagPolicy
    python: Annotated[list[PythonEntry], Field(min_length=1)]

    @property
    def archs(self) -> list[str]:
        """The platforms' architectures: `amd64`, `arm64`."""
        return [p.partition("/")[2] for p in self.platforms]

    def targets(self, *, include_all: bool = False, only: Iterable[str] = ()) -> list[Target]:
        """Every (python, release, platform) to work on, optionally narrowed. The platforms of
        one (python, release) come together, in versions.yaml's order.

        `only` takes selectors such as `3.13`, `3.13-trixie`, `3.13.15-bookworm`, `arm64` or
        `3.13-trixie-arm64`; a selector that matches nothing is an error rather than a silently
        empty run.
        """
        chosen = [
            Target(entry, release, release == self.debian.default, platform,
                   platform == self.platforms[0])
            for entry in self.python
            if include_all or entry.build or only
            for release in entry.debian
            for platform in self.platforms
        ]
        wanted = list(only)
        if wanted:
            for selector in wanted:
                if not any(t.matches(selector) for t in chosen):
                    raise MatrixError(f"selector {selector!r} matches no entry of the matrix")
            chosen = [t for t in chosen if any(t.matches(s) for s in wanted)]
        return chosen

    def on(self, target: Target, platform: str) -> Target:
        """The same python and release on another platform (the engine's own, for a cross-
        compile's build interpreter), named as this matrix names it."""
        if platform not in PLATFORMS:
            raise MatrixError(f"platform {platform!r} is not one pybase builds for "
                              f"({', '.join(PLATFORMS)})")
        return replace(target, platform=platform,
                       is_primary_platform=platform == self.platforms[0])


@dataclass(frozen=True)
class Target:
    """One Python version on one Debian release for one platform: the unit that is
    bootstrapped, built and tested. The platforms of a (python, release) share its tags."""

    python: PythonEntry
    release: Release
    is_default_release: bool
    platform: Platform = "linux/amd64"
    # The first of versions.yaml's platforms: its local images carry the plain names
    # (`python-base:3.13`); another platform's end in its architecture (`python-base:3.13-arm64`),
    # since an engine's image store holds one image per name.
    is_primary_platform: bool = True

    @property
    def key(self) -> str:
        """`3.13.15-bookworm`: what the published tags are made of (the same on every platform)."""
        return f"{self.python.version}-{self.release}"

    @property
    def arch(self) -> str:
        """`amd64`, `arm64`: the platform's architecture (Docker's and Debian's name agree)."""
        return self.platform.partition("/")[2]

    @property
    def local_suffix(self) -> str:
        """What a local image name of this platform ends in: nothing for the primary platform."""
        return "" if self.is_primary_platform else f"-{self.arch}"

    @property
    def name(self) -> str:
        """`3.13.15-bookworm-arm64`: the target in reports and messages (platform included)."""
        return f"{self.key}-{self.arch}"

    @property
    def debian_image(self) -> str:
        return f"debian:{self.release}-slim{self.local_suffix}"

    @property
    def upstream_image(self) -> str:
        return f"python:{self.python.version}-slim-{self.release}{self.local_suffix}"

    def matches(self, selector: str) -> bool:
        plain = {
            self.python.minor,
            self.python.version,
            f"{self.python.minor}-{self.release}",
            self.key,
            self.release,
        }
        return selector in plain or selector in {self.arch, self.platform} or selector in {
            f"{name}-{self.arch}" for name in plain}


def load(path: Path = DEFAULT_PATH) -> Matrix:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read: {exc.strerror}") from None
    return _parse_once(text, str(path))


@functools.lru_cache(maxsize=4)
def _parse_once(text: str, filename: str) -> Matrix:
    # A command may load the matrix more than once; validating the same text again is waste.
    # Keyed by content, so an edited file is still read afresh.
    return parse(text, filename)


def parse(text: str, filename: str = "versions.yaml") -> Matrix:
    doc = validated_yaml.parse(text, filename, MatrixError)
    if doc is None:
        raise MatrixError(f"{filename}:1: the file is empty; expected the matrix mapping")
    if not isinstance(doc.data, dict):
        got = "nothing" if doc.data is None else f"{type(doc.data).__name__} {found(doc.data)}"
        raise MatrixError(f"{filename}:1: expected a mapping at the top level, got {got}")
    result = validated_yaml.validate(Matrix, doc, MatrixError, _explain)
    problems = [
        f"{filename}:{doc.line(loc)}: {dotted(loc)}: {message}"
        for loc, message in _cross_checks(result)
    ]
    if problems:
        raise MatrixError("\n".join(problems))
    return result


def _cross_checks(m: Matrix) -> Iterator[tuple[Location, str]]:
    """Rules that span fields, each reported at the value that breaks it."""
    if m.debian.default not in m.debian.releases:
        yield ("debian", "default"), (
            f"{m.debian.default!r} is not one of debian.releases ({', '.join(m.debian.releases)})"
        )
    for i, platform in enumerate(m.platforms):
        if platform in m.platforms[:i]:
            yield ("platforms", i), f"platform {platform!r} is listed twice"
    if "runtime" not in m.variants:
        yield ("variants",), f"{found(m.variants)} does not include 'runtime'"
    for i, variant in enumerate(m.variants):
        if variant in m.variants[:i]:
            yield ("variants", i), f"variant {variant!r} is listed twice"
    first_seen: dict[str, int] = {}
    for i, entry in enumerate(m.python):
        if not entry.version.startswith(entry.minor + "."):
            yield ("python", i, "version"), f"{entry.version!r} is not a {entry.minor} release"
        if entry.minor in first_seen:
            yield ("python", i, "minor"), (
                f"python {entry.minor!r} is declared twice "
                f"(first at python[{first_seen[entry.minor]}])"
            )
        first_seen.setdefault(entry.minor, i)
        for j, release in enumerate(entry.debian):
            if release not in m.debian.releases:
                yield (
                    ("python", i, "debian", j),
                    f"release {release!r} is not declared under debian.releases",
                )
            elif release in entry.debian[:j]:
                yield ("python", i, "debian", j), f"release {release!r} is listed twice"
    if m.tags.latest not in first_seen:
        yield ("tags", "latest"), f"{m.tags.latest!r} is not a declared python minor"


def _explain(problem: Problem) -> str:
    field = dotted(problem.loc) or "(top level)"
    value = problem.input
    if problem.kind == "missing":
        expected = "required field is missing"
    elif problem.kind == "extra_forbidden":
        expected = "unknown field (a typo?); see versions.yaml's documented fields"
    elif problem.kind == "string_type" and type(value) in (float, int):  # not bool: true/false
        expected = f"expected a string, got the number {value!r}; quote it"
    elif problem.kind == "string_pattern_mismatch":
        pattern = str(problem.context.get("pattern", ""))
        expected = f"{found(value)} does not have the expected form {_pattern_hint(pattern)}"
    else:
        expected = problem.message
    return f"{field}: {expected}"


def _pattern_hint(pattern: str) -> str:
    hints = {
        r"^3\.\d{1,2}$": "(a minor version such as '3.13')",
        r"^3\.\d{1,2}\.\d{1,3}$": "(an exact version such as '3.13.15')",
        r"^[0-9a-f]{64}$": "(64 lowercase hex characters)",
    }
    return hints.get(pattern, f"(pattern {pattern})")
