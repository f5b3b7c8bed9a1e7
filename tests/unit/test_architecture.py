"""The layering rules of STYLE.md B2 that import-linter cannot express, checked on the AST.

- The pure core does no I/O and reads no clock: it imports none of the modules
  below, calls no `open`/`print`/`input`, and never asks `datetime` for the time.
  The core is the modules listed in CORE plus every module whose docstring
  declares itself `PURE.`, so a new pure module is checked from its first commit.
  `os` is forbidden in the core entirely (also `os.path`: use `posixpath` for
  string-only path handling, as `rktargs` does).
- `plan` and `backoff` import nothing from the project but `controller.model`.
- Only `procs` imports `subprocess`, only `watch` imports `watchdog`, and only
  `logs` calls `structlog.configure`.
- Every module has a docstring.
Reading the sources is the only I/O here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

import controller

PACKAGE = Path(controller.__file__).parent
MODULES = {
    ".".join(p.relative_to(PACKAGE).with_suffix("").parts): p
    for p in sorted(PACKAGE.rglob("*.py"))
    if "__pycache__" not in p.parts
}

CORE = {
    "manifest", "observe", "plan", "rktargs", "status", "backoff", "constraints", "interpolate",
}  # fmt: skip
FORBIDDEN_IN_CORE = {
    # processes, threads, clocks, signals
    "subprocess", "multiprocessing", "threading", "concurrent", "asyncio", "time", "sched",
    "signal",
    # files, sockets, the host
    "os", "shutil", "tempfile", "fcntl", "glob", "socket", "selectors", "ssl", "http",
    "urllib.request", "platform", "sys",
    # logging belongs to the shell; the core explains itself through return values
    "logging", "structlog", "watchdog",
    # nondeterminism
    "random", "secrets",
}  # fmt: skip
FORBIDDEN_CALLS_IN_CORE = {"open", "print", "input", "breakpoint", "exec", "eval"}
CLOCK_READS = {"now", "utcnow", "today"}

# module -> why it may import subprocess; procs is the rule, the rest exceptions.
SUBPROCESS_ALLOWED = {
    "procs": "every rkt, systemd-run and journalctl call goes through procs.execute",
    "demo": "the demo script launches `rktctl run` as a child, as a person would",
}
ONLY_IMPORTER = {"watchdog": {"watch"}}
PROJECT_IMPORTS_ALLOWED = {
    "plan": {"controller.model"},
    "backoff": {"controller.model"},
}


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))


def _imports(tree: ast.Module) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """Yield (line, imported module, imported names) for every import statement."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the controller package
                base = "controller" + (f".{base}" if base else "")
            yield node.lineno, base, tuple(a.name for a in node.names)


def _matches(module: str, forbidden: str) -> bool:
    return module == forbidden or module.startswith(forbidden + ".")


def _declares_pure(module: str) -> bool:
    doc = ast.get_docstring(_tree(module)) or ""
    return any(line.startswith("PURE") for line in doc.splitlines())


def core_modules() -> list[str]:
    return sorted(m for m in MODULES if m in CORE or _declares_pure(m))


@pytest.mark.parametrize("module", core_modules())
def test_core_module_imports_no_io_clock_or_logging(module: str) -> None:
    bad = []
    for line, imported, names in _imports(_tree(module)):
        if imported == "pathlib" and all(n.startswith("Pure") for n in names) and names:
            continue  # PurePath & co. only compute on strings
        if imported == "pathlib" or any(_matches(imported, f) for f in FORBIDDEN_IN_CORE):
            bad.append(f"{MODULES[module].name}:{line} imports {imported}")
    assert bad == []


@pytest.mark.parametrize("module", core_modules())
def test_core_module_does_no_io_and_reads_no_clock(module: str) -> None:
    bad = []
    for node in ast.walk(_tree(module)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS_IN_CORE:
            bad.append(f"{MODULES[module].name}:{node.lineno} calls {func.id}()")
        elif isinstance(func, ast.Attribute) and func.attr in CLOCK_READS:
            owner = func.value
            if isinstance(owner, ast.Name) and owner.id in {"datetime", "date"}:
                bad.append(f"{MODULES[module].name}:{node.lineno} reads the clock")
    assert bad == []


@pytest.mark.parametrize("module", sorted(CORE & set(MODULES)))
def test_core_modules_say_they_are_pure(module: str) -> None:
    """The docstring tells readers the stage is PURE; the list above and the text agree.
    (Core modules not written yet are skipped.)"""
    assert _declares_pure(module)


@pytest.mark.parametrize("module", sorted(PROJECT_IMPORTS_ALLOWED))
def test_planner_and_backoff_import_only_the_model(module: str) -> None:
    project = {imp for _, imp, _ in _imports(_tree(module)) if _matches(imp, "controller")}
    assert project <= PROJECT_IMPORTS_ALLOWED[module]


def test_only_procs_imports_subprocess() -> None:
    importers = {
        module
        for module in MODULES
        for _, imported, _ in _imports(_tree(module))
        if _matches(imported, "subprocess")
    }
    assert importers <= set(SUBPROCESS_ALLOWED)
    assert "procs" in importers or "procs" not in MODULES


@pytest.mark.parametrize(("library", "allowed"), sorted(ONLY_IMPORTER.items()))
def test_only_its_owner_imports(library: str, allowed: set[str]) -> None:
    importers = {
        module
        for module in MODULES
        for _, imported, _ in _imports(_tree(module))
        if _matches(imported, library)
    }
    assert importers <= allowed


def test_only_logs_configures_structlog() -> None:
    configurers = set()
    for module in MODULES:
        tree = _tree(module)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in {"configure", "configure_once"}
                and isinstance(node.value, ast.Name)
                and node.value.id == "structlog"
            ):
                configurers.add(module)
        for _, imported, names in _imports(tree):
            if imported == "structlog" and {"configure", "configure_once"} & set(names):
                configurers.add(module)
    assert configurers <= {"logs"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_has_a_docstring(module: str) -> None:
    assert ast.get_docstring(_tree(module)), f"{MODULES[module]} needs a module docstring"
