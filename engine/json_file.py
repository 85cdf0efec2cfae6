"""The one reader for JSON files the app loads (presets, MIDI maps, match profiles).

Presets are shared and downloaded, so a file is treated as hostile until read: only a
regular file is opened for reading (a FIFO named ``x.json`` or a link to ``/dev/zero``
is refused before a byte is read: the file is opened non-blocking and checked with
``fstat``), its size is capped before reading, and the parsed value is limited in
nesting depth, item count and number length (a 5,000-digit number is refused before
Python converts it). Every problem is one ``JsonFileError`` whose message names the
file and the problem. Pure functions: any thread may call them.
"""

from __future__ import annotations

import json
import math
import os
import stat
from typing import Any

from engine.errors import SampleScoutError

MAX_DEPTH = 32
MAX_ITEMS = 100_000          # values in the whole document
MAX_NUMBER_CHARS = 40        # digits, sign, point and exponent of one number

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


class JsonFileError(SampleScoutError, ValueError):
    """A JSON file that cannot be used; ``code`` says why in one word, ``problem`` in words.

    Codes: not_found, unreadable, not_regular, too_large, not_utf8, invalid_json,
    too_deep, too_many_items, bad_number.
    """

    def __init__(self, path, code: str, problem: str):
        super().__init__(f"{os.fspath(path)}: {problem}")
        self.path = os.fspath(path)
        self.code = code
        self.problem = problem


def read_json_file(path: str | os.PathLike, *, max_bytes: int, max_depth: int = MAX_DEPTH,
                   max_items: int = MAX_ITEMS) -> Any:
    """Parse the JSON file at ``path`` within the limits; raise JsonFileError. Any thread."""
    raw = _read_regular(path, max_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JsonFileError(path, "not_utf8", f"not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                           parse_constant=_reject_constant)
    except _NumberError as exc:
        raise JsonFileError(path, "bad_number", str(exc)) from None
    except json.JSONDecodeError as exc:
        raise JsonFileError(path, "invalid_json",
                            f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise JsonFileError(path, "too_deep", f"nested more than {max_depth} levels deep") from None
    _check_shape(path, value, max_depth, max_items)
    return value


def _read_regular(path, max_bytes: int) -> bytes:
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise JsonFileError(path, "not_found", "file not found") from None
    except IsADirectoryError:
        raise JsonFileError(path, "not_regular", "not a regular file (a folder)") from None
    except OSError as exc:
        raise JsonFileError(path, "unreadable", str(exc.strerror or exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "a special file")
            raise JsonFileError(path, "not_regular", f"not a regular file ({kind})")
        if info.st_size > max_bytes:
            raise JsonFileError(path, "too_large",
                                f"{info.st_size} bytes, larger than the {max_bytes} allowed")
        chunks, have = [], 0
        while have <= max_bytes:  # the file may grow while it is read
            chunk = os.read(fd, max_bytes + 1 - have)
            if not chunk:
                break
            chunks.append(chunk)
            have += len(chunk)
    except OSError as exc:
        raise JsonFileError(path, "unreadable", str(exc.strerror or exc)) from None
    finally:
        os.close(fd)
    if have > max_bytes:
        raise JsonFileError(path, "too_large", f"larger than the {max_bytes} bytes allowed")
    return b"".join(chunks)


class _NumberError(SampleScoutError, ValueError):
    """A number past the limits, raised inside the parser's hooks; read_json_file turns it
    into a JsonFileError naming the file."""


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NumberError(f"a number with {len(text)} digits (at most {MAX_NUMBER_CHARS})")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NumberError(f"a number written with {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    value = float(text)
    if not math.isfinite(value):
        raise _NumberError(f"the number {text} is too large")
    return value


def _reject_constant(name: str):
    raise _NumberError(f"{name} is not allowed (JSON numbers are finite)")


def _check_shape(path, value: Any, max_depth: int, max_items: int) -> None:
    """Depth and item count, walked without recursion."""
    items = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        items += 1
        if items > max_items:
            raise JsonFileError(path, "too_many_items", f"more than {max_items} values")
        if isinstance(node, (dict, list)):
            if depth > max_depth:
                raise JsonFileError(path, "too_deep", f"nested more than {max_depth} levels deep")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
