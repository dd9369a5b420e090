"""Strict YAML configuration files, validated by pydantic, with every error as `file:line: ...`.

Shared by versions.yaml (pybase.core.matrix) and the audit exceptions file (pybase.verify.audit_ignore): this
module keeps what YAML loses on the way to plain data (the line of every value), refuses what a
configuration file never needs (anchors, aliases, tags, duplicate keys; PyYAML itself refuses
tabs), and turns pydantic's errors into lines that quote the value found. Each caller raises its
own exception class and words the rest of the message for its file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

__all__ = ["Document", "Location", "Problem", "dotted", "found", "parse", "validate"]

Location = tuple[str | int, ...]
Model = TypeVar("Model", bound=BaseModel)

_MAX_SHOWN = 60  # a whole mapping quoted back would drown the message


@dataclass(frozen=True)
class Document:
    filename: str
    data: object  # what yaml.safe_load would return
    lines: dict[Location, int]  # 1-based line of the document, every key and every list item

    def line(self, loc: Sequence[str | int]) -> int:
        """The line of the nearest enclosing value that exists in the file (a missing key: the
        mapping that lacks it)."""
        prefixes = (tuple(loc[:n]) for n in range(len(loc), -1, -1))
        return next((self.lines[p] for p in prefixes if p in self.lines), 1)


@dataclass(frozen=True)
class Problem:
    """One pydantic error, located in the file."""

    loc: Location
    line: int
    kind: str  # pydantic's error type, e.g. "missing", "literal_error"
    message: str  # pydantic's message, quoting the value found where there is one
    input: object
    context: dict[str, Any]  # pydantic's ctx, e.g. the pattern a string failed


def found(value: object) -> str:
    """A value from the file as error messages quote it (shortened)."""
    text = value.isoformat() if isinstance(value, date) else repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def dotted(loc: Iterable[str | int]) -> str:
    """`python[0].sha256` for ("python", 0, "sha256")."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def parse(text: str, filename: str, error: type[Exception]) -> Document | None:
    """The document with the line of every value; None when the file holds no document.

    Raises `error` for invalid YAML, anchors, aliases, explicit tags and duplicate keys.
    """
    try:
        # Anchors and aliases are how "billion laughs" documents blow up a parser: refuse them
        # before composing anything.
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.AnchorToken | yaml.AliasToken | yaml.TagToken):
                kind = type(token).__name__.removesuffix("Token").lower()
                raise error(
                    f"{filename}:{token.start_mark.line + 1}: YAML {kind} {token.value!r} is not "
                    "allowed here; write the value out in full"
                )
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            lines: dict[Location, int] = {}
            _index(node, (), lines, filename, error)
            return Document(filename, loader.construct_document(node), lines)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise error(f"{filename}:{line}: not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise error(f"{filename}: not valid YAML: {exc}") from None


def _index(
    node: yaml.Node,
    loc: Location,
    lines: dict[Location, int],
    filename: str,
    error: type[Exception],
) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if (*loc, key) in lines:
                raise error(
                    f"{filename}:{key_node.start_mark.line + 1}: key {dotted((*loc, key))!r} "
                    "appears twice"
                )
            # The key's line: a block value starts only on the next one.
            lines[(*loc, key)] = key_node.start_mark.line + 1
            _index(value_node, (*loc, key), lines, filename, error)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*loc, i), lines, filename, error)


def _problem(err: ErrorDetails, doc: Document) -> Problem:
    loc: Location = tuple(err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    # A missing field has no value, and an unknown one is named by its location.
    if err["type"] not in ("missing", "extra_forbidden"):
        shown = found(err["input"])
        if shown not in message:
            message = f"{message}; found {shown}"
    return Problem(loc, doc.line(loc), err["type"], message, err["input"], err.get("ctx", {}))


def validate(
    model: type[Model], doc: Document, error: type[Exception], explain: Callable[[Problem], str]
) -> Model:
    """`model` from the document, else `error` with one `file:line: explain(problem)` per line."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        problems = (_problem(err, doc) for err in exc.errors())
        raise error(
            "\n".join(f"{doc.filename}:{p.line}: {explain(p)}" for p in problems)
        ) from None
