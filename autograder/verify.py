"""Grades a student's code cannot fake: every answer re-checked outside the student's kernel.

nbgrader runs a submission's cells, hidden tests included, in one kernel, so code in any
cell can change what a test compares against: ``np.allclose = lambda *a, **k: True`` gives a
wrong answer full marks there, and comparing in a subprocess started from that kernel still
trusts ``subprocess``, which the student's code can patch too. Here nothing the student wrote
runs in the process that compares:

* **Trusted re-check** (:func:`verify_exercise`). After nbgrader has graded a submission, each
  exercise whose test passed is checked again. A fresh child process runs the student's answer
  cells, plus the function and class definitions and allowed imports of the other cells above
  the test, and nothing else. This process (the parent) never executes student code: it runs the
  check of :mod:`autograder.checks` itself, on inputs it generates, against the reference it
  imported before any student code ran, and passes a proxy in place of the student's function.
  The proxy sends each call's arguments to the child, which calls the student's function and
  sends back the result; a callable argument (``f``, ``grad_fn``) becomes a callback into the
  parent, a random generator travels as its exact state. Messages are a strict, inert format
  (JSON plus raw numeric buffers; never pickle), so a result is data and cannot run code here. A
  wrong result, an exception, a timeout, a crash, non-finite values, a wrong shape or an input
  modified in place zero that test's grade in the gradebook, with the reason as a comment on the
  answer cell (shown in the student's feedback).
* **Hardened child.** Besides the zygote's ``-I`` (below): resource limits (CPU seconds, address
  space, no files written, no new processes), an audit hook that refuses opening files outside
  the Python installation, running programs, signals, sockets and ``ctypes``; builtins without
  ``open``, ``exec``, ``eval``, ``compile``; imports limited to the answer whitelist; a
  wall-clock deadline after which the parent kills the child's process group. One child per
  exercise, so one answer's crash, endless loop or hidden state cannot touch another's check.
  Each child is forked from a *zygote*: an interpreter (``python -I``: no ``PYTHONPATH``, no
  user site, no script directory; an empty scratch directory as cwd; a minimal environment) that
  imported NumPy and the helper package once and never runs student code, so a check costs a
  fork (milliseconds), not an interpreter start (a fifth of a second).
* **Static screen** (:mod:`autograder.screen`), before anything runs: :class:`SanitizeSubmission`
  keeps a flagged cell from running at all (its text is replaced by the reasons); a flagged
  answer scores 0 with the flagged construct and line as comment.
* **nbgrader hardening**, configured in :func:`autograder.course.nbgrader_config`:
  :class:`SanitizeSubmission` also restores tampered nbgrader metadata (points, grade ids,
  locks), keeps the last of duplicated graded cells; nbgrader puts deleted test cells back;
  puts deleted answer cells back as handed out; nbgrader puts deleted test cells back;
  :class:`ResilientExecute` restarts a kernel that died (``exit()``, a crash) or ignores the
  timeout's interrupt, re-runs the cells above and carries on, and caps a cell's output;
  :class:`HideTestTracebacks` keeps the hidden tests' code out of the feedback.

:func:`enforce` is the one entry point :mod:`autograder.grading` calls after each autograde.
What remains trusted: this process, the reference it imported, and the Python installation
the child reads. nbgrader's kernel itself runs student code with the grader's rights: the
screen keeps the obvious ways out of the kernel from running, and :func:`enforce` reports
if the course's own files change during grading; run autograding as an unprivileged user
with the repository read-only.
"""

from __future__ import annotations

import ast
import atexit
import builtins
import contextlib
import copy
import functools
import hashlib
import inspect
import json
import math
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import nbformat
import numpy as np
from nbclient.exceptions import DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer, List

# The references are imported now, before any student's kernel runs in this process's life.
from autograder import checks, screen
from autograder.course import CELL_TIMEOUT, COURSE_ID, REPO

#: The course files a submission must never change (checked by :func:`enforce`).
GUARDED = ("solutions/**/*.py", "autograder/*.py", "descent/*.py")


def _guarded_digest() -> dict[str, str]:
    return {
        path.relative_to(REPO).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for pattern in GUARDED
        for path in sorted(REPO.glob(pattern))
    }


#: The guarded files as this process found them, before any submission ran.
_GUARDED_AT_START = _guarded_digest()
_tamper_reported = False

#: Address space of the child that runs an answer (bytes).
CHILD_MEMORY = 2 * 2**30
#: Seconds the child may take to start (import NumPy) on a busy machine.
STARTUP_SECONDS = 60
#: Modules the other cells' imports may bring into the child (the rest are skipped).
CONTEXT_IMPORTS = screen.ANSWER_IMPORTS
#: Helper modules the child skips: plotting needs matplotlib and is no answer's business.
CONTEXT_SKIP = ("descent.plotting", "descent.sliders")
#: Exceptions of a student's function that cross to the parent as themselves (a check may
#: expect one, e.g. ``ValueError``); any other becomes :class:`StudentError`.
PROPAGATED = screen.words(
    """
    ValueError TypeError IndexError KeyError LookupError ZeroDivisionError ArithmeticError
    OverflowError FloatingPointError AttributeError NameError UnboundLocalError
    NotImplementedError RuntimeError RecursionError AssertionError StopIteration MemoryError
    """
)
#: Audit events the child refuses once the student's code may run (prefixes).
AUDIT_BLOCKED = sorted(
    screen.words(
        """
        os.system os.exec os.posix_spawn os.spawn os.fork os.forkpty os.kill os.killpg os.remove
        os.rename os.rmdir os.mkdir os.chmod os.chown os.chdir os.chroot os.link os.symlink
        os.truncate os.utime os.listdir os.scandir os.putenv os.unsetenv os.setxattr os.removexattr
        os.listxattr os.getxattr os.startfile shutil. subprocess. socket. ctypes. mmap. resource.
        signal.pthread_kill sys.addaudithook urllib. http. webbrowser. glob. pty. fcntl. sqlite3.
        tempfile.
        """
    )
)
NEUTRALIZED = (
    "# [autograder] This cell was not run: it does something a notebook handed in for grading\n"
    "# may not do (change NumPy or the test helpers, reach files, the system or the reference).\n"
)

# --------------------------------------------------------------------------------------------
# The wire format, shared by the parent and the child (shipped to the child as source).
# A message is JSON (every number as text, so no NaN or big-int surprises) plus raw buffers
# for numeric arrays. Decoding builds only None, bools, ints, floats, complex, str, numeric
# arrays and scalars, object arrays of those, tuples, lists, dicts with str keys, and inert
# placeholders for anything else; the child alone may also receive callbacks and generators.

_MAX_DEPTH = 24
_MAX_NODES = 500_000
_MAX_ITEMS = 100_000
_MAX_BYTES = 256 * 2**20
_MAX_TEXT = 20_000
_DTYPE = r"[<>|=]?[biufc][1-9][0-9]?"


class CodecError(Exception):
    """A value or message outside the wire format (or over its limits)."""


class Opaque:
    """Stands for a value the wire format does not carry; only its type's name crosses."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object>"


def _opaque(name, _types={}):  # noqa: B006 - the cache of placeholder types
    clean = name if isinstance(name, str) and name.isidentifier() and len(name) <= 40 else "object"
    if clean not in _types:
        _types[clean] = type(clean, (Opaque,), {"__slots__": ()})
    return _types[clean]()


class _Encoded:
    __slots__ = ("tree",)

    def __init__(self, tree):
        self.tree = tree


def _encode(value, state, depth=0):
    import collections.abc

    import numpy as np

    if isinstance(value, _Encoded):
        return value.tree
    state["nodes"] += 1
    if depth > _MAX_DEPTH or state["nodes"] > _MAX_NODES:
        raise CodecError("it is nested too deeply or has too many parts")
    if value is None:
        return {"t": "none"}
    if isinstance(value, bool):
        return {"t": "bool", "v": bool(value)}
    if isinstance(value, int):
        try:
            return {"t": "int", "v": str(int(value))}
        except ValueError:
            raise CodecError("it holds an integer with too many digits") from None
    if isinstance(value, float):
        return {"t": "float", "v": float(value).hex()}
    if isinstance(value, complex):
        return {"t": "complex", "re": value.real.hex(), "im": value.imag.hex()}
    if isinstance(value, str):
        return {"t": "str", "v": str(value)[:_MAX_TEXT]}
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        dtype = array.dtype
        if dtype.kind in "biufc" and dtype.fields is None and dtype.subdtype is None:
            data = np.ascontiguousarray(array).tobytes()
            state["bytes"] += len(data)
            if state["bytes"] > _MAX_BYTES:
                raise CodecError("it is too large")
            state["buffers"].append(data)
            index = len(state["buffers"]) - 1
            scalar = isinstance(value, np.generic)
            return {
                "t": "nd",
                "dtype": dtype.str,
                "shape": list(array.shape),
                "b": index,
                "scalar": scalar,
            }
        if dtype.kind == "O" and isinstance(value, np.ndarray):
            items = [_encode(item, state, depth + 1) for item in array.ravel().tolist()]
            return {"t": "ond", "shape": list(array.shape), "items": items}
        return _unsupported(value, state)
    if isinstance(value, tuple | list):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {"t": kind, "items": [_encode(item, state, depth + 1) for item in value]}
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        items = [[str(key), _encode(item, state, depth + 1)] for key, item in value.items()]
        return {"t": "dict", "items": items}
    if isinstance(value, np.random.Generator):
        bits = value.bit_generator
        state_tree = _encode(bits.state, state, depth + 1)
        return {"t": "rng", "kind": type(bits).__name__, "state": state_tree}
    if state.get("functions") is not None and callable(value):
        state["functions"].append(value)
        name = str(getattr(value, "__name__", "function"))[:60]
        return {"t": "fn", "id": len(state["functions"]) - 1, "name": name}
    if isinstance(value, collections.abc.Iterator):
        items = []
        for item in value:  # runs the student's generator: errors are the call's errors
            if len(items) >= _MAX_ITEMS:
                raise CodecError(f"it yields more than {_MAX_ITEMS} items")
            items.append(_encode(item, state, depth + 1))
        return {"t": "iter", "items": items}
    return _unsupported(value, state)


def _unsupported(value, state):
    if state.get("strict"):  # the grader's own values must cross exactly, or not at all
        raise CodecError(f"a {type(value).__name__} cannot be sent to the child")
    return {"t": "opaque", "type": type(value).__name__}


def _decode(tree, buffers, context, depth=0):
    import numpy as np

    if depth > _MAX_DEPTH or not isinstance(tree, dict):
        raise CodecError("malformed message")
    kind = tree.get("t")
    value = tree.get("v")
    if kind == "none":
        return None
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,4000}", value):
        return int(value)
    try:
        if kind == "float" and isinstance(value, str) and len(value) < 40:
            return float.fromhex(value)
        if kind == "complex":
            real, imag = tree.get("re"), tree.get("im")
            if isinstance(real, str) and isinstance(imag, str) and len(real + imag) < 80:
                return complex(float.fromhex(real), float.fromhex(imag))
    except (ValueError, OverflowError):
        raise CodecError("malformed number") from None
    if kind == "str" and isinstance(value, str) and len(value) <= _MAX_TEXT:
        return value
    if kind in ("nd", "ond"):
        shape = tree.get("shape")
        if not (
            isinstance(shape, list)
            and len(shape) <= 32
            and all(type(n) is int and 0 <= n < 2**40 for n in shape)
        ):
            raise CodecError("malformed array shape")
        count = math.prod(shape)
        if kind == "nd":
            dtype, index = tree.get("dtype"), tree.get("b")
            if not (isinstance(dtype, str) and re.fullmatch(_DTYPE, dtype)):
                raise CodecError("unexpected array type")
            dtype = np.dtype(dtype)
            if dtype.kind not in "biufc" or type(index) is not int or not 0 <= index < len(buffers):
                raise CodecError("malformed array")
            data = buffers[index]
            if count * dtype.itemsize != len(data):
                raise CodecError("array data of the wrong size")
            array = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
            return array[()] if tree.get("scalar") is True and array.ndim == 0 else array
        items = tree.get("items")
        if not isinstance(items, list) or len(items) != count:
            raise CodecError("malformed object array")
        array = np.empty(count, dtype=object)
        for position, item in enumerate(items):
            array[position] = _decode(item, buffers, context, depth + 1)
        return array.reshape(shape)
    if kind in ("tuple", "list", "iter"):
        items = tree.get("items")
        if not isinstance(items, list):
            raise CodecError("malformed sequence")
        values = [_decode(item, buffers, context, depth + 1) for item in items]
        return tuple(values) if kind == "tuple" else iter(values) if kind == "iter" else values
    if kind == "dict":
        items = tree.get("items")
        if not isinstance(items, list) or not all(
            isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) for item in items
        ):
            raise CodecError("malformed mapping")
        return {key: _decode(item, buffers, context, depth + 1) for key, item in items}
    if kind == "opaque":
        return _opaque(tree.get("type"))
    if kind == "fn" and context.get("callback") is not None and type(tree.get("id")) is int:
        return context["callback"](tree["id"], str(tree.get("name", "function"))[:60])
    if kind == "rng" and context.get("generators"):
        bits_type = tree.get("kind")
        if bits_type not in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"):
            raise CodecError("unexpected random generator")
        bits = getattr(np.random, bits_type)()
        bits.state = _decode(tree.get("state"), buffers, context, depth + 1)
        return np.random.Generator(bits)
    raise CodecError(f"unexpected value of kind {kind!r}")


def _frame(message, state):
    import json
    import struct

    tree = _encode(message, state)
    header = json.dumps(tree, separators=(",", ":")).encode()
    parts = [struct.pack("!QI", len(header), len(state["buffers"])), header]
    for data in state["buffers"]:
        parts += [struct.pack("!Q", len(data)), data]
    return b"".join(parts)


def _new_state(functions=None, strict=False):
    return {"buffers": [], "functions": functions, "nodes": 0, "bytes": 0, "strict": strict}


def _read_frame(read_exact):
    import json
    import struct

    header_size, count = struct.unpack("!QI", read_exact(12))
    if header_size > _MAX_BYTES or count > _MAX_NODES:
        raise CodecError("message too large")
    header = read_exact(header_size)
    total, buffers = header_size, []
    for _ in range(count):
        (size,) = struct.unpack("!Q", read_exact(8))
        total += size
        if total > _MAX_BYTES:
            raise CodecError("message too large")
        buffers.append(read_exact(size))
    try:
        tree = json.loads(header)
    except (ValueError, RecursionError):
        raise CodecError("malformed message") from None
    return tree, buffers


# --------------------------------------------------------------------------------------------
# The zygote and its children: the program the parent starts with ``python -I -c``. Everything
# it needs is in the functions shipped with it (see _child_source); it imports nothing from
# this repository but the copy of the helper package it is given.


def _zygote_main():
    """The children's parent: imports NumPy and the helper package once, then forks a child
    per request. It never runs a student's code; a forked child runs :func:`_child_main`."""
    import importlib
    import json
    import os
    import shutil
    import socket
    import sys
    import time

    settings = json.loads(sys.argv[1])
    control = socket.socket(fileno=os.dup(0))  # the parent's requests; fds ride along
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    sys.path.insert(0, settings["lib"])
    import numpy
    import numpy.random  # noqa: F401 - loaded lazily otherwise: after the child's hardening

    for module in settings["preload"]:
        try:  # noqa: SIM105 - the zygote has no contextlib imported
            importlib.import_module(module)
        except Exception:
            pass

    def wait(pid, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)

    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 1 << 16, 2)
        except OSError:
            data, fds = b"", []
        if not data:  # the parent is gone
            shutil.rmtree(settings["scratch"], ignore_errors=True)
            return
        request = json.loads(data)
        reply = {}
        if request.get("op") == "fork" and len(fds) == 2:
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    control.close()
                    _child_main({**settings, **request["limits"]}, *fds)
                    code = 0
                finally:
                    os._exit(code)
            reply = {"pid": pid}
        elif request.get("op") == "wait":
            reply = {"code": wait(int(request["pid"]), float(request["timeout"]))}
        for fd in fds:
            os.close(fd)
        control.send(json.dumps(reply).encode())


def _child_main(settings, inbound, outbound):
    import ast
    import builtins
    import importlib
    import io
    import os
    import resource
    import signal
    import sys
    import traceback

    # Its own session (the parent kills it by group); only the protocol's descriptors open.
    os.setsid()
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        open_fds = range(3, 256)
    for fd in open_fds:
        if fd > 2 and fd not in (inbound, outbound):
            try:  # noqa: SIM105
                os.close(fd)
            except OSError:
                pass

    # Whatever the student prints goes nowhere (fds 0-2 are the null device already).
    class Discard(io.TextIOBase):
        def write(self, text):
            return len(text)

    sys.stdin, sys.stdout, sys.stderr = io.StringIO(), Discard(), Discard()
    import numpy as np

    def read_exact(size):
        chunks, missing = [], size
        while missing:
            chunk = os.read(inbound, min(missing, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def send(message, state=None):
        data = _frame(message, state or _new_state())
        while data:
            data = data[os.write(outbound, data) :]

    def receive():
        tree, buffers = _read_frame(read_exact)
        context = {"callback": make_callback, "generators": True}
        return _decode(tree, buffers, context)

    labels = set()

    def failure(error):
        """What the parent learns of an exception: names and a short message, no objects."""
        frames = traceback.StackSummary.extract(
            traceback.walk_tb(error.__traceback__), lookup_lines=False
        )
        where = next(
            (f"line {f.lineno} of {f.filename}" for f in reversed(frames) if f.filename in labels),
            None,
        )
        try:
            text = str(error)[:600]
        except BaseException:
            text = ""
        bases = [c.__name__ for c in type(error).__mro__ if getattr(builtins, c.__name__, 0) is c]
        return {
            "op": "raise",
            "type": type(error).__name__[:60],
            "bases": bases,
            "message": text,
            "where": where,
        }

    def make_callback(number, name):
        def callback(*args, **kwargs):
            send({"op": "callback", "fn": number, "args": list(args), "kwargs": kwargs})
            reply = receive()
            if reply.get("op") == "return":
                return reply.get("value")
            error_type = getattr(builtins, str(reply.get("type")), None)
            if not (isinstance(error_type, type) and issubclass(error_type, Exception)):
                error_type = RuntimeError
            raise error_type(reply.get("message", ""))

        callback.__name__ = callback.__qualname__ = name
        return callback

    # 1. The cells: parsed and compiled before the hardening, their imports loaded.
    request = receive()
    allowed = tuple(settings["imports"])
    errors, compiled, modules = [], [], set()
    for label, source, keep in request["cells"]:
        labels.add(label)
        try:
            tree = ast.parse(source, filename=label)
        except SyntaxError as error:
            errors.append(
                {
                    "label": label,
                    "error": f"SyntaxError: {error.msg}",
                    "where": f"line {error.lineno} of {label}",
                }
            )
            continue
        nodes = [node for i, node in enumerate(tree.body) if keep is None or i in keep]
        for node in ast.walk(ast.Module(body=nodes, type_ignores=[])):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module)
                modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        codes = [compile(ast.Module(body=[n], type_ignores=[]), label, "exec") for n in nodes]
        compiled.append((label, codes))
    for module in sorted(modules):
        if module.split(".")[0] in allowed and not module.startswith(tuple(settings["skip"])):
            try:  # noqa: SIM105 - the child has no contextlib imported
                importlib.import_module(module)
            except Exception:
                pass

    # 2. Hardening: limits, then an audit hook, then builtins without a way out.
    limits = [
        (resource.RLIMIT_CPU, settings["cpu"]),
        (resource.RLIMIT_AS, settings["memory"]),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_NPROC, 0),
    ]
    for limit, value in limits:
        try:  # noqa: SIM105
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    roots = tuple(os.path.join(os.path.realpath(root), "") for root in settings["roots"])
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    blocked = tuple(settings["blocked"])

    def audit(event, args):
        if event == "open":
            path, mode, flags = (*args, None, None, None)[:3]
            if isinstance(path, int) or path is None:
                raise PermissionError("opening a file descriptor is not allowed while grading")
            wants_write = isinstance(mode, str) and any(c in mode for c in "wax+")
            if wants_write or (isinstance(flags, int) and flags & writing):
                raise PermissionError("writing files is not allowed while grading")
            if not os.path.realpath(os.fsdecode(path)).startswith(roots):
                raise PermissionError(f"reading {os.fsdecode(path)} is not allowed while grading")
        elif event in ("os.listdir", "os.scandir") and args and args[0] is not None:
            if not os.path.realpath(os.fsdecode(args[0])).startswith(roots):  # lazy imports list
                raise PermissionError(f"listing {os.fsdecode(args[0])} is not allowed")
        elif event.startswith(blocked):
            raise PermissionError(f"{event} is not allowed while grading")

    sys.addaudithook(audit)
    real_import = builtins.__import__

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level or name.split(".")[0] not in allowed:
            raise ImportError(f"an answer may not import {name!r}")
        return real_import(name, globals, locals, fromlist, level)

    safe = dict(vars(builtins))
    for name in ("open", "exec", "eval", "compile", "input", "breakpoint", "help"):
        safe.pop(name, None)
    safe["__import__"] = guarded_import
    namespace = {"__name__": "__main__", "__builtins__": safe}

    # 3. Run the cells: each top-level statement on its own, a cell stopped by a timer.
    class CellTimeout(BaseException):
        pass

    def alarm(signum, frame):
        raise CellTimeout(f"still running after {settings['cell_timeout']} s")

    signal.signal(signal.SIGALRM, alarm)
    for label, codes in compiled:
        for code in codes:
            signal.setitimer(signal.ITIMER_REAL, settings["cell_timeout"])
            try:
                exec(code, namespace)
            except BaseException as error:
                signal.setitimer(signal.ITIMER_REAL, 0)
                info = failure(error)
                errors.append(
                    {
                        "label": label,
                        "where": info["where"],
                        "error": f"{info['type']}: {info['message']}",
                    }
                )
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    send({"op": "loaded", "errors": errors})

    # 4. Serve the parent's requests.
    while True:
        try:
            request = receive()
        except EOFError:
            return
        except BaseException as error:  # e.g. arguments this child cannot rebuild
            send(failure(error))
            continue
        op = request.get("op")
        if op == "lookup":
            name = request["name"]
            value = namespace.get(name)
            send(
                {
                    "op": "info",
                    "defined": name in namespace,
                    "callable": callable(value),
                    "type": type(value).__name__,
                }
            )
        elif op == "global":
            state = _new_state()
            try:
                tree = _encode(namespace.get(request["name"]), state)
            except BaseException:
                state, tree = _new_state(), _encode(None, _new_state())
            send(
                {"op": "value", "defined": request["name"] in namespace, "value": _Encoded(tree)},
                state,
            )
        elif op == "call":
            function = namespace.get(request["name"])
            args, kwargs = list(request["args"]), dict(request["kwargs"])
            arrays = [a for a in [*args, *kwargs.values()] if isinstance(a, np.ndarray)]
            before = [(a, a.shape, a.tobytes()) for a in arrays]
            state = _new_state()
            try:
                result = _Encoded(_encode(function(*args, **kwargs), state))
            except CodecError as error:
                send({"op": "unreadable", "why": str(error)})
                continue
            except BaseException as error:
                send(failure(error))
                continue
            mutated = sum(a.shape != shape or a.tobytes() != data for a, shape, data in before)
            send({"op": "return", "value": result, "mutated": int(mutated)}, state)
        else:
            return


_SHIPPED = (
    CodecError,
    Opaque,
    _opaque,
    _Encoded,
    _encode,
    _unsupported,
    _decode,
    _frame,
    _new_state,
    _read_frame,
    _zygote_main,
    _child_main,
)
_SHIPPED_CONSTANTS = ("_MAX_DEPTH", "_MAX_NODES", "_MAX_ITEMS", "_MAX_BYTES", "_MAX_TEXT", "_DTYPE")


@functools.cache
def _child_source() -> str:
    """The zygote's whole program: the wire format, :func:`_zygote_main` and
    :func:`_child_main`, from this file."""
    parts = ["from __future__ import annotations", "import math", "import re"]
    parts += [f"{name} = {globals()[name]!r}" for name in _SHIPPED_CONSTANTS]
    parts += [inspect.getsource(item) for item in _SHIPPED]
    parts.append("_zygote_main()")
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------
# The parent's side of a child.


class _Abort(BaseException):
    """The child cannot go on (a BaseException, so no check's ``except`` can swallow it)."""


class _Timeout(_Abort):
    pass


class _Gone(_Abort):
    pass


class _Garbled(_Abort):
    pass


class StudentError(Exception):
    """An exception raised by a student's function, of a type that does not cross as itself."""


class Unsendable(BaseException):
    """A check passed the student's function a value the wire format cannot carry.

    That is a bug in :mod:`autograder.checks`, not the student's: it propagates (the
    submission fails loudly) instead of costing the student the points.
    """


def _read_roots() -> list[str]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots.add(str(Path(np.__file__).resolve().parent.parent))
    return sorted(roots)


_CHILD_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
}


def _preloaded() -> list[str]:
    """The helper modules the zygote imports once for all its children."""
    names = ["descent"] + [f"descent.{p.stem}" for p in sorted((REPO / "descent").glob("*.py"))]
    return [name for name in names if name != "descent.__init__" and name not in CONTEXT_SKIP]


class _Zygote:
    """The process that forks the children: started once, by the first check of a process.

    Starting an interpreter and importing NumPy for every exercise costs a fifth of a second;
    a fork of a process that has done it once costs a few milliseconds. The zygote runs no
    student code (a child hardens itself after the fork), so every child starts from the
    same clean state; it exits when this process closes its end of the control socket.
    """

    def __init__(self) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="descent-verify-"))
        work, lib = self.scratch / "work", self.scratch / "lib"
        work.mkdir()
        # The helper package students may import, without the repository around it.
        shutil.copytree(
            REPO / "descent", lib / "descent", ignore=shutil.ignore_patterns("__pycache__")
        )
        settings = {
            "scratch": str(self.scratch),
            "lib": str(lib),
            "preload": _preloaded(),
            "roots": [*_read_roots(), str(lib)],
            "imports": sorted(CONTEXT_IMPORTS),
            "skip": list(CONTEXT_SKIP),
            "blocked": AUDIT_BLOCKED,
        }
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-c", _child_source(), json.dumps(settings)],
                stdin=theirs,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=work,
                env={**_CHILD_ENV, "HOME": str(work)},
                start_new_session=True,
            )

    def request(self, message: dict, timeout: float, fds: Sequence[int] = ()) -> dict:
        """Send ``message`` (with ``fds``) and return the reply; :class:`_Gone` if none comes."""
        try:
            self.control.settimeout(timeout)
            socket.send_fds(self.control, [json.dumps(message).encode()], list(fds))
            reply = self.control.recv(1 << 16)
        except OSError:  # a timeout included
            reply = b""
        if not reply:
            self.close()
            raise _Gone("the process that starts the checks did not answer")
        return json.loads(reply)

    def close(self) -> None:
        self.control.close()  # the zygote exits (and removes its scratch) at end of file
        with contextlib.suppress(Exception):
            self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        shutil.rmtree(self.scratch, ignore_errors=True)

    _current: _Zygote | None = None

    @classmethod
    def get(cls) -> _Zygote:
        """This process's zygote, started (again) if there is none running."""
        if cls._current is None or cls._current.process.poll() is not None:
            if cls._current is not None:
                cls._current.close()
                atexit.unregister(cls._current.close)
            cls._current = cls()
            atexit.register(cls._current.close)
        return cls._current


class _Child:
    """One child interpreter and the framed pipe to it; :meth:`close` kills it for sure."""

    def __init__(self, *, cell_timeout: float, cpu_seconds: int, memory: int) -> None:
        self.zygote = _Zygote.get()
        self.pid = 0
        to_child, self.write_fd = os.pipe()
        self.read_fd, from_child = os.pipe()
        limits = {"cpu": int(cpu_seconds), "memory": int(memory), "cell_timeout": cell_timeout}
        try:
            reply = self.zygote.request(
                {"op": "fork", "limits": limits}, STARTUP_SECONDS, [to_child, from_child]
            )
        except _Gone:
            self._close_fds()
            raise
        finally:
            os.close(to_child)
            os.close(from_child)
        self.pid = int(reply["pid"])
        os.set_blocking(self.write_fd, False)  # a stuck child cannot block us

    def send(self, message: dict, deadline: float, functions: list | None = None) -> None:
        try:
            data = memoryview(_frame(message, _new_state(functions, strict=True)))
        except CodecError as error:
            raise Unsendable(f"{error}: change the check in autograder/checks.py") from None
        fd = self.write_fd
        while data:
            if not select.select([], [fd], [], self._left(deadline))[1]:
                raise _Timeout
            try:
                data = data[os.write(fd, data[: 1 << 16]) :]
            except BlockingIOError:
                continue
            except OSError:  # the child is gone (BrokenPipeError)
                raise _Gone(self._ending()) from None

    def receive(self, deadline: float) -> Any:
        fd = self.read_fd

        def read_exact(size: int) -> bytes:
            chunks, missing = [], size
            while missing:
                if not select.select([fd], [], [], self._left(deadline))[0]:
                    raise _Timeout
                chunk = os.read(fd, min(missing, 1 << 20))
                if not chunk:
                    raise _Gone(self._ending())
                chunks.append(chunk)
                missing -= len(chunk)
            return b"".join(chunks)

        try:
            tree, buffers = _read_frame(read_exact)
            return _decode(tree, buffers, {})
        except CodecError as error:
            raise _Garbled(str(error)) from None

    def request(self, message: dict, deadline: float) -> dict:
        self.send(message, deadline)
        reply = self.receive(deadline)
        if not isinstance(reply, dict):
            raise _Garbled("unexpected reply")
        return reply

    @staticmethod
    def _left(deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Timeout
        return left

    def _wait(self, timeout: float) -> int | None:
        """The child's exit code (negative: the signal that ended it), None if still running."""
        try:
            return self.zygote.request({"op": "wait", "pid": self.pid, "timeout": timeout}, 30)[
                "code"
            ]
        except _Gone:
            return None

    def _ending(self) -> str:
        code = self._wait(2)
        if code is None:
            return "it stopped answering"
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else ""
            hints = {"SIGXCPU": "it used up its CPU time", "SIGKILL": "it was killed (memory?)"}
            return f"killed by {name or -code}" + (f": {hints[name]}" if name in hints else "")
        return f"it exited with code {code} (exit(), os._exit() or a crash)"

    def close(self) -> None:
        if self.pid:
            for kill in (os.killpg, os.kill):  # the group: in case it is still starting
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(self.pid, signal.SIGKILL)
            self._wait(10)  # reaped, not left a zombie
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self.write_fd, self.read_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def _describe_call(name: str, args: Sequence, kwargs: dict) -> str:
    parts = [checks.describe(a) for a in args]
    parts += [f"{key}={checks.describe(value)}" for key, value in kwargs.items()]
    return f"{name}({', '.join(parts)})"


class _RemoteGlobals:
    """The student's module-level names, read from the child as data (``.get`` only)."""

    def __init__(self, child: _Child, deadline: float) -> None:
        self.child, self.deadline = child, deadline

    def get(self, name: str, default: Any = None) -> Any:
        reply = self.child.request({"op": "global", "name": str(name)}, self.deadline)
        return reply.get("value") if reply.get("defined") else default

    def __getitem__(self, name: str) -> Any:
        marker = object()
        value = self.get(name, marker)
        if value is marker:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        marker = object()
        return isinstance(name, str) and self.get(name, marker) is not marker


class _Proxy:
    """Stands in for the student's function in a check: each call runs in the child."""

    def __init__(self, child: _Child, name: str, deadline: float) -> None:
        self.child, self.deadline = child, deadline
        self.__name__ = self.__qualname__ = name

    @property
    def __globals__(self) -> _RemoteGlobals:
        return _RemoteGlobals(self.child, self.deadline)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        functions: list[Callable] = []
        call = _describe_call(self.__name__, args, kwargs)
        request = {"op": "call", "name": self.__name__, "args": list(args), "kwargs": kwargs}
        self.child.send(request, self.deadline, functions)
        while True:
            reply = self.child.receive(self.deadline)
            op = reply.get("op") if isinstance(reply, dict) else None
            if op == "callback":
                self._answer(reply, functions)
            elif op == "return":
                if reply.get("mutated"):
                    raise AssertionError(
                        f"{call} modified its input array in place; return a new array"
                    )
                return reply.get("value")
            elif op == "raise":
                raise _student_exception(reply, call)
            elif op == "unreadable":
                raise AssertionError(
                    f"{call} returned something that cannot be checked: {reply.get('why')}"
                )
            else:
                raise _Garbled(f"unexpected message {op!r}")

    def _answer(self, request: dict, functions: list[Callable]) -> None:
        number = request.get("fn")
        if type(number) is not int or not 0 <= number < len(functions):
            raise _Garbled("callback to an unknown function")
        args, kwargs = request.get("args"), request.get("kwargs")
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise _Garbled("malformed callback")
        try:
            reply = {"op": "return", "value": functions[number](*args, **kwargs)}
        except Exception as error:  # the student passed the callback bad arguments
            name = type(error).__name__
            reply = {
                "op": "raise",
                "type": name if name in PROPAGATED else "RuntimeError",
                "message": str(error)[:600],
            }
        self.child.send(reply, self.deadline)


def _student_exception(reply: dict, call: str) -> Exception:
    name = str(reply.get("type", "Exception"))
    bases = reply.get("bases") if isinstance(reply.get("bases"), list) else []
    cls = next((getattr(builtins, b) for b in bases if b in PROPAGATED), StudentError)
    where = reply.get("where")
    text = f"{call} raised {name}: {reply.get('message', '')}" + (f" ({where})" if where else "")
    error = cls(text)
    error.from_student = True
    return error


# --------------------------------------------------------------------------------------------
# Verifying one exercise.


@dataclass(frozen=True)
class Verdict:
    """The outcome of a trusted check: passed, or why not (for the student and instructor)."""

    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class ChildCell:
    """A cell as the child runs it: a label for messages, Python source, and which top-level
    statements to run (``None``: all)."""

    label: str
    source: str
    keep: tuple[int, ...] | None = None
    answer: bool = False


def verify_exercise(
    cells: Sequence[ChildCell],
    exercise: str,
    *,
    timeout: float = CELL_TIMEOUT,
    memory: int = CHILD_MEMORY,
) -> Verdict:
    """Run ``cells`` in a fresh child and ``checks.CHECKS[exercise]`` here against them.

    ``timeout`` bounds each answer cell's top-level code and, separately, the whole check
    (as nbgrader bounds a cell). Never raises for anything the student's code does.
    """
    check = checks.CHECKS[exercise]
    answers = sum(cell.answer for cell in cells)
    child = None
    try:
        child = _Child(
            cell_timeout=timeout, cpu_seconds=int(timeout * (2 + answers)) + 30, memory=memory
        )
        deadline = time.monotonic() + STARTUP_SECONDS + timeout * (1 + answers)
        request = {"op": "load", "cells": [[c.label, c.source, c.keep] for c in cells]}
        loaded = child.request(request, deadline)
        errors = [e for e in loaded.get("errors", []) if isinstance(e, dict)]
        info = child.request({"op": "lookup", "name": exercise}, deadline)
        if not info.get("defined"):
            own = [e for e in errors if str(e.get("label", "")).endswith(f"`{exercise}`")]
            why = f"; its cell raised {_error_text(own[0])}" if own else ""
            return Verdict(False, f"`{exercise}` is not defined when its test runs{why}")
        if not info.get("callable"):
            return Verdict(False, f"`{exercise}` should be a function, got {info.get('type')}")
        proxy = _Proxy(child, exercise, time.monotonic() + timeout)
        try:
            check(proxy)
        except AssertionError as error:
            return Verdict(False, str(error))
        except Exception as error:
            if getattr(error, "from_student", False):
                return Verdict(False, str(error))
            return Verdict(False, f"checking its result raised {type(error).__name__}: {error}")
        return Verdict(True)
    except _Timeout:
        return Verdict(False, f"did not finish within {timeout:g} s (an endless loop?)")
    except _Gone as error:
        return Verdict(False, f"the process running the answer ended: {error}")
    except _Garbled as error:
        return Verdict(False, f"the answer sent something that cannot be checked ({error})")
    finally:
        if child is not None:
            child.close()


def _error_text(error: dict) -> str:
    where = error.get("where")
    return str(error.get("error", "an error")) + (f" ({where})" if where else "")


# --------------------------------------------------------------------------------------------
# From a notebook to what the child runs.


@dataclass(frozen=True)
class NotebookCell:
    """A code cell of a (sanitized) submission, as the trusted check sees it."""

    index: int
    source: str
    grade_id: str | None
    answer: bool
    test: bool
    flags: tuple[screen.Flag, ...] = ()


def read_cells(notebook: nbformat.NotebookNode) -> list[NotebookCell]:
    """The code cells of ``notebook``, with the screen's flags (those recorded by
    :class:`SanitizeSubmission` on cells it kept from running, and the screen's own)."""
    cells = [
        (index, cell)
        for index, cell in enumerate(notebook.cells)
        if cell.get("cell_type") == "code" and isinstance(cell.get("source"), str)
    ]
    screened = []
    for _, cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        is_test = bool(meta.get("grade")) and not meta.get("solution")
        screened.append((cell.source, bool(meta.get("solution")), is_test))
    flags = screen.screen_notebook([(src, answer) for src, answer, test in screened if not test])
    flags_of = iter(flags)
    result = []
    for (index, cell), (source, answer, test) in zip(cells, screened, strict=True):
        meta = cell.get("metadata", {})
        found = [] if test else list(next(flags_of))
        recorded = meta.get("descent", {}).get("flags", []) if isinstance(meta, dict) else []
        found += [screen.Flag(*item) for item in recorded if _is_flag(item)]
        grade_id = meta.get("nbgrader", {}).get("grade_id")
        result.append(
            NotebookCell(
                index=index,
                source=screen.python_source(source),
                grade_id=grade_id if isinstance(grade_id, str) else None,
                answer=answer,
                test=test,
                flags=tuple(found),
            )
        )
    return result


def _is_flag(item: Any) -> bool:
    return (
        isinstance(item, list)
        and len(item) == 3
        and isinstance(item[0], int)
        and all(isinstance(part, str) for part in item[1:])
    )


def child_cells(cells: Sequence[NotebookCell], exercise: str) -> list[ChildCell]:
    """What the child runs to check ``exercise``: the cells above its test cell.

    Answer cells run whole; of any other cell only its function and class definitions,
    imports of allowed modules and assignments of constants (``EPS = 1e-6``), so that helpers
    a student defined elsewhere are there, while plots and experiments are not re-run. Test
    cells and flagged cells are left out.
    """
    test = f"correct_{exercise}"
    stop = next((c.index for c in cells if c.test and c.grade_id == test), math.inf)
    chosen = []
    for cell in cells:
        if cell.index >= stop or cell.test or cell.flags:
            continue
        if cell.answer:
            label = f"your answer cell `{cell.grade_id}`"
            chosen.append(ChildCell(label, cell.source, None, answer=True))
            continue
        tree = screen.parse(cell.source)
        if tree is None:
            continue
        keep = tuple(i for i, node in enumerate(tree.body) if _is_context(node))
        if keep:
            chosen.append(ChildCell(f"cell {cell.index + 1}", cell.source, keep))
    return chosen


def _is_context(node: ast.stmt) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return True
    if isinstance(node, ast.Import):
        return all(_allowed_module(alias.name) for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return not node.level and _allowed_module(node.module or "")
    if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return all(isinstance(t, ast.Name) for t in targets) and _constant(node.value)
    return False


def _allowed_module(name: str) -> bool:
    return name.split(".")[0] in CONTEXT_IMPORTS and not name.startswith(CONTEXT_SKIP)


def _constant(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp):
        return _constant(node.operand)
    if isinstance(node, ast.BinOp):
        return _constant(node.left) and _constant(node.right)
    if isinstance(node, ast.Tuple | ast.List):
        return all(_constant(item) for item in node.elts)
    return False


# --------------------------------------------------------------------------------------------
# The hook: enforce the trusted re-check on a graded submission.


@dataclass(frozen=True)
class Finding:
    """Something the fairness checks did to (or noticed in) one submission.

    ``kind``: ``zeroed`` (a test's points taken back), ``flagged`` (an answer not run:
    the screen refused it), ``not run`` (another cell the screen refused), ``repaired``
    (tampered or duplicated nbgrader cells put right), ``tampered`` (the course's own files
    changed during grading: noticed after this submission).
    """

    student: str
    assignment: str
    kind: str
    where: str
    message: str
    points: float = 0.0

    def __str__(self) -> str:
        lost = f" (-{self.points:g} points)" if self.points else ""
        message = " ".join(self.message.split())  # one line in the summary
        return f"{self.kind.upper()} {self.student}/{self.assignment} {self.where}{lost}: {message}"


def enforce(
    course_dir: Path | str, assignment: str, student: str, *, timeout: float | None = None
) -> list[Finding]:
    """Re-check one autograded submission outside the kernel and correct its gradebook.

    Call it right after a successful nbgrader autograde of (``student``, ``assignment``) in
    ``course_dir`` (the course directory nbgrader graded in), with the cell timeout used.
    Every test that passed in the kernel is checked again by :func:`verify_exercise`; a
    failure sets its grade to 0 with the reason as the answer cell's comment, and so does an
    answer the screen flagged. Returns what was done, for the summary.
    """
    course_dir = Path(course_dir)
    timeout = float(timeout or CELL_TIMEOUT)
    findings: list[Finding] = _tampering(student, assignment)
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", COURSE_ID) as gradebook:
        for notebook in gradebook.find_assignment(assignment).notebooks:
            findings += _enforce_notebook(
                gradebook, course_dir, assignment, student, notebook, timeout
            )
        gradebook.db.commit()
    return findings


def _tampering(student: str, assignment: str) -> list[Finding]:
    """A finding (once per process) if the course's own files changed since grading began.

    The checks here use the reference imported at the start, so grades stay right; but a
    kernel that wrote to the repository would change what later runs and kernels import.
    """
    global _tamper_reported
    if _tamper_reported:
        return []
    now = _guarded_digest()
    changed = sorted(
        p for p in now.keys() | _GUARDED_AT_START.keys() if now.get(p) != _GUARDED_AT_START.get(p)
    )
    if not changed:
        return []
    _tamper_reported = True
    message = (
        f"course files changed while grading ({', '.join(changed[:5])}): a submission may "
        "have written to them; check them before grading again"
    )
    return [Finding(student, assignment, "tampered", "repository", message)]


def _enforce_notebook(
    gradebook: Gradebook,
    course_dir: Path,
    assignment: str,
    student: str,
    notebook: Any,
    timeout: float,
) -> list[Finding]:
    path = course_dir / "autograded" / student / assignment / f"{notebook.name}.ipynb"
    if not path.exists():
        return []  # nbgrader scored the missing notebook 0
    submitted = nbformat.read(path, as_version=4)
    findings = [
        Finding(student, assignment, "repaired", notebook.name, note)
        for note in submitted.metadata.get("descent", {}).get("notes", [])
        if isinstance(note, str)
    ]
    cells = read_cells(submitted)
    for cell in cells:
        if cell.flags and not cell.answer and not cell.test:
            findings.append(
                Finding(
                    student,
                    assignment,
                    "not run",
                    f"cell {cell.index + 1}",
                    "; ".join(str(flag) for flag in cell.flags[:3]),
                )
            )
    solutions = {cell.name for cell in notebook.solution_cells}
    for grade_cell in notebook.grade_cells:
        exercise = grade_cell.name.removeprefix("correct_")
        if exercise == grade_cell.name or exercise not in checks.CHECKS:
            continue
        grade = gradebook.find_grade(grade_cell.name, notebook.name, assignment, student)
        flags = [f for c in cells if c.answer and c.grade_id == exercise for f in c.flags]
        if flags:
            kind = "flagged"
            reason = "the answer was not run: " + "; ".join(str(flag) for flag in flags[:3])
            comment = (
                f"0 points: {reason}. An answer may not change NumPy or the test helpers, "
                "read files, reach the system or use the reference solutions."
            )
        elif not grade.auto_score:
            continue  # failed (or not graded) in the notebook already: nothing to protect
        else:
            verdict = verify_exercise(child_cells(cells, exercise), exercise, timeout=timeout)
            if verdict.passed:
                continue
            kind, reason = "zeroed", verdict.reason
            comment = (
                "0 points: this answer passed in the notebook, but its hidden test, run again "
                f"on the answer cells alone (outside the notebook), failed: {reason}"
            )
        points = float(grade.auto_score or 0)
        grade.auto_score = 0.0
        if exercise in solutions:
            try:
                record = gradebook.find_comment(exercise, notebook.name, assignment, student)
                record.auto_comment = comment
            except MissingEntry:
                pass
        findings.append(Finding(student, assignment, kind, grade_cell.name, reason, points))
    return findings


# --------------------------------------------------------------------------------------------
# nbgrader preprocessors (configured in autograder.course.nbgrader_config).


class SanitizeSubmission(NbGraderPreprocessor):
    """First step of autograding: make a submission's nbgrader cells trustworthy again.

    * nbgrader metadata naming no cell of the assignment is removed (nbgrader would abort on
      it); of cells sharing a grade id the last keeps it (nbgrader's own choice), the others
      become plain cells; every graded cell's metadata (points, lock, kind) is rewritten
      from the gradebook. nbgrader then restores locked cells' text and, with
      ``OverwriteCells.add_missing_cells``, puts deleted test cells back.
    * every cell a student could edit is screened (:mod:`autograder.screen`); a flagged cell
      is kept from running: its text becomes the reasons, which the feedback shows; the
      flags stay in the cell's metadata for :func:`enforce`.

    What was repaired is listed in the notebook's metadata (``descent.notes``).
    """

    def preprocess(self, nb: nbformat.NotebookNode, resources: dict) -> tuple:
        info = resources["nbgrader"]
        with Gradebook(info["db_url"], COURSE_ID) as gradebook:
            source = gradebook.find_notebook(info["notebook"], info["assignment"])
            cells = [(c.name, c.cell_type, c.source) for c in source.source_cells]
            locked = {cell.name: bool(cell.locked) for cell in source.source_cells}
            points = {cell.name: float(cell.max_score) for cell in source.grade_cells}
            answers = {cell.name for cell in source.solution_cells}
            tasks = {cell.name for cell in source.task_cells}
        kinds = {name: kind for name, kind, _ in cells}

        def canonical(grade_id: str) -> dict:
            meta = {
                "grade": grade_id in points,
                "grade_id": grade_id,
                "locked": locked[grade_id],
                "schema_version": 3,
                "solution": grade_id in answers,
                "task": grade_id in tasks,
                "cell_type": kinds[grade_id],
            }
            if grade_id in points:
                meta["points"] = points[grade_id]
            return meta

        notes = self._repair_metadata(nb, canonical)
        notes += self._restore_answers(nb, cells, answers, canonical)
        self._screen(nb)
        nb.metadata["descent"] = {"notes": notes}
        return nb, resources

    @staticmethod
    def _restore_answers(nb, cells, answers, canonical) -> list[str]:
        """Put deleted answer cells back as handed out (nbgrader cannot place their tests)."""
        notes = []
        order = [name for name, _, _ in cells]
        for position, (name, kind, text) in enumerate(cells):
            ids = [_grade_id(cell) for cell in nb.cells]
            if name not in answers or name in ids:
                continue
            previous = [ids.index(p) + 1 for p in reversed(order[:position]) if p in ids]
            new = nbformat.v4.new_markdown_cell(text)
            if kind == "code":
                new = nbformat.v4.new_code_cell(text)
            new.metadata["nbgrader"] = canonical(name)
            nb.cells.insert(previous[0] if previous else 0, new)
            notes.append(f"answer cell `{name}` was missing: the one handed out was put back")
        return notes

    @staticmethod
    def _repair_metadata(nb, canonical) -> list[str]:
        """Drop unknown or duplicated nbgrader metadata; rewrite the rest from the gradebook."""
        notes = []
        ids = [_grade_id(cell) for cell in nb.cells]
        known = {
            grade_id for grade_id in ids if grade_id is not None and _known(canonical, grade_id)
        }
        last = {grade_id: index for index, grade_id in enumerate(ids) if grade_id in known}
        for grade_id, count in Counter(i for i in ids if i in known).items():
            if count > 1:
                notes.append(
                    f"{count} cells have grade id `{grade_id}` (a copied graded cell?): "
                    "only the last one is graded"
                )
        for index, cell in enumerate(nb.cells):
            if "nbgrader" not in cell.get("metadata", {}):
                continue
            meta, grade_id = cell.metadata["nbgrader"], ids[index]
            if grade_id not in known or last[grade_id] != index:
                if grade_id not in known and _looks_graded(meta):
                    notes.append(
                        f"cell {index + 1}: its nbgrader metadata names no cell of the "
                        f"assignment ({grade_id!r}) and was removed"
                    )
                del cell.metadata["nbgrader"]
                continue
            fixed = canonical(grade_id)
            if isinstance(meta, dict) and isinstance(meta.get("checksum"), str):
                fixed["checksum"] = meta["checksum"]
            changed = [
                key
                for key in ("grade", "solution", "locked", "task", "points")
                if not isinstance(meta, dict) or meta.get(key, False) != fixed.get(key, False)
            ]
            if changed:
                notes.append(
                    f"`{grade_id}`: edited nbgrader metadata restored ({', '.join(changed)})"
                )
            cell.metadata["nbgrader"] = fixed
        return notes

    @staticmethod
    def _screen(nb: nbformat.NotebookNode) -> None:
        code = [
            cell
            for cell in nb.cells
            if cell.get("cell_type") == "code" and isinstance(cell.get("source"), str)
        ]
        imported = screen.imported_names(cell.source for cell in code)
        for cell in code:
            cell.metadata.pop("descent", None)  # only this step may record flags
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("locked"):
                continue  # nbgrader restores a locked cell's text from the gradebook
            flags = screen.screen_cell(
                cell.source, answer=bool(meta.get("solution")), imported=imported
            )
            if flags:
                cell.metadata["descent"] = {
                    "flags": [[f.line, f.construct, f.reason] for f in flags]
                }
                cell.source = NEUTRALIZED + "".join(f"#   {flag}\n" for flag in flags[:10])


def _grade_id(cell: nbformat.NotebookNode) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    return grade_id if isinstance(grade_id, str) else None


def _known(canonical: Callable[[str], dict], grade_id: str) -> bool:
    try:
        canonical(grade_id)
    except KeyError:
        return False
    return True


def _looks_graded(meta: Any) -> bool:
    return not isinstance(meta, dict) or any(meta.get(k) for k in ("grade", "solution", "locked"))


class ResilientExecute(Execute):
    """nbgrader's Execute, made to survive what a student's code does to its kernel.

    * The kernel died in a cell (``os._exit``, ``exit()``, a crash, out of memory): the cell
      gets a ``KernelDied`` error, the kernel is restarted, the cells above it run again
      (outputs discarded) and execution goes on. nbgrader alone would fail the notebook.
    * A cell timed out and the kernel still does not answer (the cell catches the
      interrupt): the same restart, so the cells below are not all timed out in turn.
    * A cell's printed output and displays beyond ``max_output_bytes`` are dropped (errors
      and results never are), so a print loop cannot exhaust the grader's memory.

    After ``max_restarts`` restarts the notebook fails as before.
    """

    max_restarts = Integer(5, help="Kernel restarts before the notebook fails").tag(config=True)
    responsive_timeout = Integer(
        10, help="Seconds the kernel has to answer after a timed-out cell"
    ).tag(config=True)
    max_output_bytes = Integer(
        500_000, help="Bytes of printed output and displays kept per cell"
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._restarts, self._skip, self._sizes, self._cut = 0, set(), Counter(), set()
        self._exiting = False
        return super().preprocess(nb, resources, km)

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        payload = kwargs["execute_reply"].get("content", {}).get("payload", [])
        if any(isinstance(p, dict) and p.get("source") == "ask_exit" for p in payload):
            self._exiting = True  # exit() or quit(): the kernel is about to stop

    def preprocess_cell(self, cell, resources, index):
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            if self._exiting:
                self._exiting = False
                raise DeadKernelError("exit() was called")
        except DeadKernelError:
            self._skip.add(index)
            _add_output(
                cell,
                "error",
                "KernelDied",
                "The kernel died while running this cell (exit(), os._exit(), a crash "
                "or too much memory). It was restarted, the cells above were run "
                "again, and grading went on.",
            )
            self._restart(index)
            return cell, self.resources
        if cell.get("cell_type") == "code" and _timed_out(cell):
            self._skip.add(index)
            if not run_sync(self._responsive)():
                _add_output(
                    cell,
                    "stream",
                    "stdout",
                    "[the kernel ignored the interrupt after the timeout; it was "
                    "restarted and the cells above were run again]\n",
                )
                self._restart(index)
        return cell, resources

    def _restart(self, index: int) -> None:
        self._restarts += 1
        if self._restarts > self.max_restarts:
            raise RuntimeError(f"the kernel died or hung {self._restarts} times; giving up")
        run_sync(self._fresh_kernel)()
        for before in range(index):
            original = self.nb.cells[before]
            if before in self._skip or original.get("cell_type") != "code":
                continue
            scratch = copy.deepcopy(original)
            try:
                self.execute_cell(scratch, before, store_history=False)
                if self._exiting:
                    self._exiting = False
                    raise DeadKernelError("exit() was called")
            except DeadKernelError:
                self._skip.add(before)
                return self._restart(index)
            if _timed_out(scratch):
                self._skip.add(before)
                if not run_sync(self._responsive)():
                    return self._restart(index)
        return None

    async def _fresh_kernel(self) -> None:
        await ensure_async(self.km.restart_kernel(now=True))
        if self.kc is not None:
            await ensure_async(self.kc.stop_channels())
        await self.async_start_new_kernel_client()

    async def _responsive(self) -> bool:
        msg_id = self.kc.execute("", silent=True, store_history=False)
        deadline = time.monotonic() + self.responsive_timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=left))
            except Empty:
                return False
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return True
        return False

    def output(self, outs, msg, display_id, cell_index):
        kind, content = msg.get("msg_type"), msg.get("content", {})
        if kind == "stream":
            size = len(content.get("text", ""))
        elif kind in ("display_data", "update_display_data"):
            size = sum(len(str(value)) for value in content.get("data", {}).values())
        else:  # results and errors are always kept: they decide the grade
            return super().output(outs, msg, display_id, cell_index)
        left = self.max_output_bytes - self._sizes[cell_index]
        self._sizes[cell_index] += size
        if size <= left:
            return super().output(outs, msg, display_id, cell_index)
        kept = None
        first_stderr = content.get("name") == "stderr" and not any(
            o.get("name") == "stderr" for o in outs
        )
        if kind == "stream" and (left > 0 or first_stderr):  # stderr output fails a test
            content["text"] = content.get("text", "")[: max(left, 2000 if first_stderr else 0)]
            kept = super().output(outs, msg, display_id, cell_index)
        if cell_index not in self._cut:
            self._cut.add(cell_index)
            note = f"\n[output cut by the autograder after {self.max_output_bytes} bytes]\n"
            outs.append(nbformat.v4.new_output("stream", name="stdout", text=note))
        return kept


def _timed_out(cell: nbformat.NotebookNode) -> bool:
    return any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", []))


def _add_output(cell: nbformat.NotebookNode, kind: str, name: str, text: str) -> None:
    if kind == "error":
        output = nbformat.v4.new_output("error", ename=name, evalue=text, traceback=[text])
    else:
        output = nbformat.v4.new_output("stream", name=name, text=text)
    cell.setdefault("outputs", []).append(output)


class HideTestTracebacks(NbGraderPreprocessor):
    """Feedback step: a failed test cell shows its error's message, not its traceback.

    A traceback lists the lines around each frame: the test cell's hidden region and the
    code of :mod:`autograder.checks` would show. The message says what failed and how.
    """

    # nbconvert's HTML exporter configures this for every NbConvertBase; nbgrader's base
    # class declares it without ``config=True``, which traitlets reports as unrecognized.
    display_data_priority = List(NbGraderPreprocessor.display_data_priority.default_value).tag(
        config=True
    )

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename')}: {output.get('evalue')}"]
        return cell, resources


__all__ = [
    "ChildCell",
    "Finding",
    "HideTestTracebacks",
    "NotebookCell",
    "ResilientExecute",
    "SanitizeSubmission",
    "StudentError",
    "Verdict",
    "child_cells",
    "enforce",
    "read_cells",
    "verify_exercise",
]
