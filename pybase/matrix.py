"""Load and validate versions.yaml: the build matrix every session works from.

Validation is pydantic's; this module adds what YAML loses on the way to plain data: the line each
value came from, so that every error names file, line, field and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "versions.yaml"

Variant = Literal["runtime", "build", "dev"]
Release = Literal["bullseye", "bookworm", "trixie", "forky"]
Minor = Annotated[str, Field(strict=True, pattern=r"^3\.\d{1,2}$")]
PatchVersion = Annotated[str, Field(strict=True, pattern=r"^3\.\d{1,2}\.\d{1,3}$")]
Sha256 = Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{64}$")]


class MatrixError(ValueError):
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
    variants: Annotated[list[Variant], Field(min_length=1)]
    cpython: CPythonConfig
    tags: TagPolicy
    python: Annotated[list[PythonEntry], Field(min_length=1)]

    def targets(self, *, include_all: bool = False, only: Iterable[str] = ()) -> list[Target]:
        """Every (python, release) pair to work on, optionally narrowed.

        `only` takes selectors such as `3.13`, `3.13-trixie` or `3.13.15-bookworm`; a selector that
        matches nothing is an error rather than a silently empty run.
        """
        chosen = [
            Target(entry, release, release == self.debian.default)
            for entry in self.python
            if include_all or entry.build or only
            for release in entry.debian
        ]
        wanted = list(only)
        if wanted:
            for selector in wanted:
                if not any(t.matches(selector) for t in chosen):
                    raise MatrixError(f"selector {selector!r} matches no entry of the matrix")
            chosen = [t for t in chosen if any(t.matches(s) for s in wanted)]
        return chosen


@dataclass(frozen=True)
class Target:
    """One Python version on one Debian release: the unit that is bootstrapped, built and tested."""

    python: PythonEntry
    release: Release
    is_default_release: bool

    @property
    def key(self) -> str:
        return f"{self.python.version}-{self.release}"

    @property
    def debian_image(self) -> str:
        return f"debian:{self.release}-slim"

    @property
    def upstream_image(self) -> str:
        return f"python:{self.python.version}-slim-{self.release}"

    def matches(self, selector: str) -> bool:
        return selector in {
            self.python.minor,
            self.python.version,
            f"{self.python.minor}-{self.release}",
            self.key,
            self.release,
        }


def load(path: Path = DEFAULT_PATH) -> Matrix:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read: {exc.strerror}") from None
    return parse(text, str(path))


def parse(text: str, filename: str = "versions.yaml") -> Matrix:
    data, lines = _load_yaml(text, filename)
    if not isinstance(data, dict):
        raise MatrixError(f"{filename}:1: expected a mapping at the top level, got {_kind(data)}")
    try:
        result = Matrix.model_validate(data)
    except ValidationError as exc:
        errors = [_describe(err, lines, filename) for err in exc.errors()]
        raise MatrixError("\n".join(errors)) from None
    problems = [
        f"{filename}:{_line(loc, lines)}: {_dotted(loc)}: {message}"
        for loc, message in _cross_checks(result)
    ]
    if problems:
        raise MatrixError("\n".join(problems))
    return result


def _cross_checks(m: Matrix) -> Iterator[tuple[Location, str]]:
    """Rules that span fields, each reported at the value that breaks it."""
    if m.debian.default not in m.debian.releases:
        yield ("debian", "default"), f"{m.debian.default!r} is not one of debian.releases"
    if "runtime" not in m.variants:
        yield ("variants",), "must include 'runtime'"
    if len(set(m.variants)) != len(m.variants):
        yield ("variants",), "lists a variant twice"
    first_seen: dict[str, int] = {}
    for i, entry in enumerate(m.python):
        if not entry.version.startswith(entry.minor + "."):
            yield ("python", i, "version"), f"{entry.version!r} is not a {entry.minor} release"
        if entry.minor in first_seen:
            yield (
                ("python", i, "minor"),
                f"python {entry.minor} is declared twice (first at python[{first_seen[entry.minor]}])",
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


Location = tuple[str | int, ...]


def _load_yaml(text: str, filename: str) -> tuple[object, dict[Location, int]]:
    """Plain data plus the line of every mapping value and list item.

    Anchors, aliases and explicit tags are refused: a configuration file needs none of them, and
    aliases are how "billion laughs" documents blow up a parser.
    """
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.AnchorToken | yaml.AliasToken | yaml.TagToken):
                kind = type(token).__name__.removesuffix("Token").lower()
                raise MatrixError(
                    f"{filename}:{token.start_mark.line + 1}: YAML {kind} {token.value!r} is not "
                    "allowed here; write the value out in full"
                )
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise MatrixError(f"{filename}:1: the file is empty; expected the matrix mapping")
            lines: dict[Location, int] = {}
            _index(node, (), lines, filename)
            return loader.construct_document(node), lines
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise MatrixError(f"{filename}:{line}: not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise MatrixError(f"{filename}: not valid YAML: {exc}") from None


def _index(node: yaml.Node, loc: Location, lines: dict[Location, int], filename: str) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in keys:
                raise MatrixError(
                    f"{filename}:{key_node.start_mark.line + 1}: key {_dotted((*loc, key))!r} "
                    "appears twice"
                )
            keys.add(key)
            _index(value_node, (*loc, key), lines, filename)
            lines.setdefault((*loc, key), key_node.start_mark.line + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*loc, i), lines, filename)


def _describe(err: Any, lines: dict[Location, int], filename: str) -> str:
    loc: Location = tuple(err["loc"])
    field = _dotted(loc) or "(top level)"
    line = _line(loc, lines)
    kind, message = err["type"], err["msg"]
    if kind == "missing":
        expected = "required field is missing"
    elif kind == "extra_forbidden":
        expected = "unknown field (a typo?); see versions.yaml's documented fields"
    elif kind == "string_type" and isinstance(err.get("input"), float | int):
        expected = f"expected a string, got the number {err['input']!r}; quote it"
    elif kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        expected = f"{err['input']!r} does not have the expected form {_pattern_hint(pattern)}"
    else:
        expected = message.removeprefix("Value error, ")
    return f"{filename}:{line}: {field}: {expected}"


def _line(loc: Location, lines: dict[Location, int]) -> int:
    """The line of the nearest enclosing value that exists in the file."""
    return next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), 1)


def _pattern_hint(pattern: str) -> str:
    hints = {
        r"^3\.\d{1,2}$": "(a minor version such as '3.13')",
        r"^3\.\d{1,2}\.\d{1,3}$": "(an exact version such as '3.13.15')",
        r"^[0-9a-f]{64}$": "(64 lowercase hex characters)",
    }
    return hints.get(pattern, f"(pattern {pattern})")


def _dotted(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__
