"""A static screen of the code a student hands in, run on its text outside any kernel.

It reads each code cell as Python (IPython's magics first turned into the calls IPython
makes) and flags what an answer has no business doing, because it could change what the
tests compare against or reach what they compare with:

- **monkeypatching**: assigning to (or deleting) an attribute of an imported module or of
  anything reached from one (``np.allclose = ...``, ``numpy.testing.assert_allclose = ...``,
  ``descent.checking.RTOL = 1``), ``setattr``/``delattr``;
- **redefining the test helpers**: binding ``check``, ``assert_close``, ``np``, ``numpy`` ...;
- **reaching outside the notebook**: files, the OS, processes, the interpreter
  (``open``, ``os``, ``sys``, ``subprocess``, ``pathlib``, ``importlib``, ``__import__``,
  ``exec``, ``eval``, ``compile``, ``builtins``, ``globals()``, ``getattr`` with a dunder or
  computed name, dunder attributes such as ``__class__``/``__subclasses__``/``__globals__``),
  shell escapes and magics that run files (``!ls``, ``%run``);
- **the reference**: any mention of ``solutions`` or ``autograder``;
- in **answer cells** only: imports other than numpy, math, functools, itertools, collections,
  typing and the course's ``descent`` helpers.

Answer cells get every check; the other cells a student can edit or add get all but the
import whitelist and the computed-``getattr`` rule (a notebook may import matplotlib). The
screen is one layer: grades never depend on it alone, since :mod:`autograder.verify` re-runs
every answer in a separate process whatever the screen says (see there).
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass


def words(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text`` (for long lists of names)."""
    return frozenset(text.split())


#: Top-level modules an answer cell may import.
ANSWER_IMPORTS = frozenset(
    {"numpy", "math", "cmath", "functools", "itertools", "collections", "typing", "descent"}
)
#: Modules no cell may import: files, the OS, processes, the interpreter's internals, the net.
FORBIDDEN_MODULES = words(
    """
    os posix nt sys subprocess pathlib importlib builtins shutil socket ctypes io _io gc
    inspect pickle marshal signal threading _thread multiprocessing concurrent asyncio resource
    tempfile glob runpy code codeop pty urllib http mmap fcntl zipimport pkgutil site sysconfig
    webbrowser sqlite3 shelve dbm linecache fileinput zipfile tarfile types dill cloudpickle
    psutil requests jupyter_client ipykernel nbgrader nbformat nbclient solutions autograder
    """
)
#: Names whose rebinding would change what the notebook's tests use, with the one import
#: that may bind each (``None``: nothing may).
PROTECTED_NAMES = {
    "check": None,
    "CHECKS": None,
    "assert_close": "descent.checking.assert_close",
    "np": "numpy",
    "numpy": "numpy",
    "descent": "descent",
    "solutions": None,
    "autograder": None,
}
#: Built-in functions that reach files, the interpreter or other namespaces.
FORBIDDEN_CALLS = {
    "open": "opens a file",
    "exec": "runs code from a string",
    "eval": "runs code from a string",
    "compile": "compiles code from a string",
    "__import__": "imports a module by name",
    "globals": "reaches the notebook's namespace",
    "locals": "reaches a namespace",
    "vars": "reaches a namespace",
    "breakpoint": "starts a debugger",
    "setattr": "changes an attribute by name",
    "delattr": "deletes an attribute by name",
}
#: Dunder names that reach the interpreter when read as names.
FORBIDDEN_DUNDER_NAMES = frozenset(
    {"__builtins__", "__import__", "__loader__", "__spec__", "__file__", "__cached__"}
)
#: Dunder attributes harmless enough to allow (a class's own ``__init__``, a function name).
SAFE_DUNDER_ATTRIBUTES = words(
    """
    __init__ __name__ __qualname__ __doc__ __len__ __iter__ __next__ __call__ __repr__ __str__
    __enter__ __exit__ __array__
    """
)
#: Modules no cell may reach, as names or attributes (e.g. ``numpy.lib.format.os``).
FORBIDDEN_ATTRIBUTES = frozenset(
    {"os", "sys", "subprocess", "builtins", "ctypes", "importlib", "shutil", "socket", "pathlib"}
)
#: IPython magics that only time or display things.
SAFE_MAGICS = frozenset({"timeit", "time", "matplotlib", "precision", "pinfo", "pinfo2"})
#: Names imported modules are commonly bound to, whether or not the notebook imports them.
USUAL_MODULE_NAMES = words(
    """
    np numpy math plt matplotlib mpl descent functools itertools collections typing sys os
    builtins sklearn ipywidgets widgets
    """
)
_REFERENCE_STRING = re.compile(
    r"^(autograder|solutions)(\.\w|$)|(^|[/\\])(autograder|solutions)([/\\]|\.py\b)"
)


@dataclass(frozen=True)
class Flag:
    """One construct the screen does not accept: where, what, and why."""

    line: int
    construct: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: `{self.construct}` {self.reason}"


@functools.lru_cache(maxsize=4096)  # a class hands in the same locked cells many times
def python_source(source: str) -> str:
    """The Python IPython runs for a cell's text (magics become ``get_ipython()`` calls)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython is a dependency of the kernel
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # a cell IPython cannot read either: it will fail where it runs
        return source


@functools.lru_cache(maxsize=4096)
def parse(source: str) -> ast.Module | None:
    """``source`` (already through :func:`python_source`) as an AST, or None if invalid.

    The tree is shared between callers (cached): read it, never change it.
    """
    try:
        flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        return compile(source, "<cell>", "exec", flags=flags, dont_inherit=True)
    except (SyntaxError, ValueError):
        return None


def imported_names(sources: Iterable[str]) -> set[str]:
    """Names bound by imports in any of ``sources``, plus the usual module names.

    An attribute assigned on any of these is a monkeypatch, whichever cell did the import.
    Simple aliases (``n = np``, ``t = np.testing``) count too.
    """
    names = set(USUAL_MODULE_NAMES)
    aliases: list[tuple[str, tuple[str, ...]]] = []
    for source in sources:
        imports, assignments = _bindings(source)
        names |= imports
        aliases += assignments
    changed = True
    while changed:  # aliases of aliases
        changed = False
        for root, targets in aliases:
            if root in names and not names.issuperset(targets):
                names.update(targets)
                changed = True
    return names


@functools.lru_cache(maxsize=4096)
def _bindings(source: str) -> tuple[frozenset[str], tuple[tuple[str, tuple[str, ...]], ...]]:
    """One cell's imported names, and its assignments ``a = b.c`` as (``b``, targets)."""
    tree = parse(python_source(source))
    imports: set[str] = set()
    assignments = []
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Import | ast.ImportFrom):
            imports.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign) and (root := _module_path_root(node.value)):
            targets = tuple(t.id for t in node.targets if isinstance(t, ast.Name))
            if targets:
                assignments.append((root, targets))
    return frozenset(imports), tuple(assignments)


def screen_cell(source: str, *, answer: bool, imported: set[str] | None = None) -> list[Flag]:
    """The constructs in one code cell the screen does not accept (empty: the cell is fine).

    ``answer`` selects the full screen of an answer cell. ``imported`` holds the names bound
    to modules anywhere in the notebook (see :func:`imported_names`); by default this cell's.
    A cell that is not valid Python is not flagged: it fails wherever it runs.
    """
    if imported is None:
        imported = imported_names([source])
    return list(_screened(source, answer, frozenset(imported)))


@functools.lru_cache(maxsize=4096)  # the same locked cells, and often the same answers
def _screened(source: str, answer: bool, imported: frozenset[str]) -> tuple[Flag, ...]:
    python = python_source(source)
    tree = parse(python)
    if tree is None:
        return ()
    visitor = _Screen(python, answer=answer, imported=imported)
    visitor.visit(tree)
    unique: dict[tuple[int, str], Flag] = {}
    for flag in visitor.flags:
        unique.setdefault((flag.line, flag.construct), flag)
    return tuple(sorted(unique.values(), key=lambda flag: flag.line))


def screen_notebook(cells: list[tuple[str, bool]]) -> list[list[Flag]]:
    """Screen ``(source, is_answer)`` code cells together (imports are notebook-wide)."""
    imported = imported_names(source for source, _ in cells)
    return [screen_cell(source, answer=answer, imported=imported) for source, answer in cells]


def _module_path_root(node: ast.AST) -> str | None:
    """``a`` for ``a`` or ``a.b.c``; None for anything computed (calls, subscripts ...)."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


class _Screen(ast.NodeVisitor):
    def __init__(self, source: str, *, answer: bool, imported: set[str]) -> None:
        self.source = source
        self.answer = answer
        self.imported = imported
        self.flags: list[Flag] = []
        self.allowed_get_ipython: set[int] = set()

    def flag(self, node: ast.AST, reason: str, construct: str | None = None) -> None:
        text = construct or ast.get_source_segment(self.source, node) or type(node).__name__
        text = " ".join(text.split())
        if len(text) > 60:
            text = text[:57] + "..."
        self.flags.append(Flag(getattr(node, "lineno", 0), text, reason))

    # imports ------------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            self._check_import(node, alias.name, bound, alias.name if alias.asname else bound)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.flag(node, "is a relative import")
            return
        for alias in node.names:
            full = f"{node.module}.{alias.name}"
            self._check_import(node, node.module or "", alias.asname or alias.name, full)

    def _check_import(self, node: ast.AST, module: str, bound: str, value: str) -> None:
        parts = module.split(".")
        if any(part in FORBIDDEN_MODULES for part in parts):
            self.flag(node, f"imports {module}, which reaches outside the notebook")
        elif self.answer and parts[0] not in ANSWER_IMPORTS:
            allowed = ", ".join(sorted(ANSWER_IMPORTS))
            self.flag(node, f"imports {parts[0]}; an answer may import only {allowed}")
        if bound in PROTECTED_NAMES and PROTECTED_NAMES[bound] != value:
            self.flag(node, f"rebinds `{bound}`, which the tests use")

    # names and attributes -----------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store | ast.Del) and node.id in PROTECTED_NAMES:
            self.flag(node, "rebinds a name the tests use", construct=f"{node.id} = ...")
        elif node.id in FORBIDDEN_DUNDER_NAMES:
            self.flag(node, "reaches the interpreter's internals")
        elif node.id in ("solutions", "autograder"):
            self.flag(node, "refers to the reference solutions or the autograder")
        elif node.id in FORBIDDEN_ATTRIBUTES:
            self.flag(node, f"uses {node.id}, which reaches outside the notebook")
        elif node.id == "get_ipython" and id(node) not in self.allowed_get_ipython:
            self.flag(node, "reaches IPython itself", construct="get_ipython()")

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name in PROTECTED_NAMES:
            self.flag(node, f"rebinds `{node.name}`, which the tests use")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Store | ast.Del) and self._reaches_module(node.value):
            target = ast.get_source_segment(self.source, node) or node.attr
            self.flag(node, "changes a module the tests rely on", construct=f"{target} = ...")
        if node.attr.startswith("__") and node.attr.endswith("__"):
            if node.attr not in SAFE_DUNDER_ATTRIBUTES:
                self.flag(node, "reaches the interpreter's internals")
        elif node.attr in FORBIDDEN_ATTRIBUTES:
            self.flag(node, f"reaches the {node.attr} module")
        elif node.attr in ("solutions", "autograder"):
            self.flag(node, "refers to the reference solutions or the autograder")
        self.generic_visit(node)

    def _reaches_module(self, node: ast.AST) -> bool:
        return any(
            isinstance(inner, ast.Name) and inner.id in self.imported for inner in ast.walk(node)
        ) or not isinstance(_innermost(node), ast.Name)

    # definitions --------------------------------------------------------------------------

    def _check_definition(self, node: ast.FunctionDef | ast.ClassDef) -> None:
        if node.name in PROTECTED_NAMES:
            self.flag(
                node,
                f"redefines `{node.name}`, which the tests use",
                construct=f"def {node.name}(...)",
            )
        self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _check_definition

    def visit_Global(self, node: ast.Global | ast.Nonlocal) -> None:
        for name in node.names:
            if name in PROTECTED_NAMES:
                self.flag(node, f"rebinds `{name}`, which the tests use")

    visit_Nonlocal = visit_Global

    # calls and strings --------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
            self.flag(node, FORBIDDEN_CALLS[func.id], construct=f"{func.id}(...)")
        elif isinstance(func, ast.Name) and func.id in ("getattr", "hasattr"):
            self._check_getattr(node)
        elif isinstance(func, ast.Attribute) and _is_get_ipython(func.value):
            self._check_magic(node, func.attr)
        self.generic_visit(node)

    def _check_getattr(self, node: ast.Call) -> None:
        name = node.args[1] if len(node.args) > 1 else None
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            if name.value.startswith("__") and name.value not in SAFE_DUNDER_ATTRIBUTES:
                self.flag(node, "reaches the interpreter's internals")
            elif name.value in FORBIDDEN_ATTRIBUTES:
                self.flag(node, f"reaches the {name.value} module")
        elif self.answer:
            self.flag(node, "reads an attribute by a computed name", construct="getattr(...)")

    def _check_magic(self, node: ast.Call, method: str) -> None:
        first = node.args[0] if node.args else None
        magic = first.value if isinstance(first, ast.Constant) else None
        receiver = node.func.value  # the get_ipython() call
        self.allowed_get_ipython.add(id(receiver.func))  # flagged here, or fine
        if method in ("run_line_magic", "run_cell_magic") and magic in SAFE_MAGICS:
            return
        what = f"the magic %{magic}" if isinstance(magic, str) else "a shell command"
        if method in ("system", "getoutput"):
            what = "a shell command"
        self.flag(node, f"runs {what}, which reaches outside the notebook")

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and _REFERENCE_STRING.search(node.value.strip()):
            self.flag(node, "refers to the reference solutions or the autograder")


def _innermost(node: ast.AST) -> ast.AST:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node


def _is_get_ipython(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "get_ipython"
    )
