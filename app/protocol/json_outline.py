"""The members of a JSON object and how many elements their values hold, read from the
bytes without building anything.

Refusing a body for the table it describes must not cost what building it costs: a
million one-cell rows is 4 MB of JSON and about 100 MB of Python objects. This reads the
bytes once, in windows (numpy finds the brackets, commas and colons outside strings and
tracks escapes, strings and nesting from one window to the next), and keeps only counts.
The counts are lower bounds, exact for any value of two or more elements, so a bound
checked against them never refuses what the parsed outline admits; whatever this cannot
read for sure (not an object, a key it cannot decode, too many members) it leaves to the
parser, which decides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

# An object with more members is left to the parser (a table's columns are bounded apart).
MEMBER_LIMIT = 4096
_WINDOW_BYTES = 64 * 1024  # about 4 MB of numpy arrays at most, and as fast as larger
_QUOTE, _BACKSLASH, _COMMA, _COLON = 0x22, 0x5C, 0x2C, 0x3A
# `[` and `{` (`]` and `}`) differ by one bit: OR-ing 0x20 folds each pair onto one byte.
_CASE_BIT, _OPENING, _CLOSING = 0x20, 0x7B, 0x7D
_NOT_SPACE = re.compile(rb"[^ \t\r\n]")

Kind = Literal["array", "object", "scalar"]


@dataclass(frozen=True)
class Member:
    """One member's value: its kind, where it opens, and lower bounds of what it holds."""

    kind: Kind
    start: int  # the value's opening bracket (arrays and objects)
    # len(value) when it holds two or more elements (counted by commas), else 0.
    elements: int
    # The elements of its elements, all together, each short by one (their commas).
    element_widths: int


def object_members(
    body: bytes, start: int | None = None, limit: int = MEMBER_LIMIT
) -> dict[str, Member] | None:
    """The members of the object opening at `start` (the document's when None), the last
    of a repeated key winning as orjson and json keep it; None when there is no such object,
    it does not close, it holds more than `limit` members or a key cannot be read."""
    if start is None:
        first = _NOT_SPACE.search(body)
        start = first.start() if first else len(body)
    if body[start : start + 1] != b"{":
        return None
    elements = np.zeros(limit + 1, np.int64)
    widths = np.zeros(limit + 1, np.int64)
    colons: list[int] = []
    openers: dict[int, tuple[int, Kind]] = {}
    member_base, closed = 0, False
    for positions, found, depths in _tokens(body, start):
        commas = found == _COMMA
        # Depth 1 is the object's own level: its commas separate members.
        member = np.cumsum(commas & (depths == 1)) + member_base
        member_base = int(member[-1])
        if member_base >= limit:
            return None
        elements += np.bincount(member[commas & (depths == 2)], minlength=limit + 1)
        widths += np.bincount(member[commas & (depths == 3)], minlength=limit + 1)
        colons += positions[(found == _COLON) & (depths == 1)].tolist()
        if len(colons) > limit:
            return None  # more keys than members: not JSON
        values = np.flatnonzero(((found | _CASE_BIT) == _OPENING) & (depths == 2))
        if len(values) > limit:
            return None  # more values than members: not JSON
        for index in values.tolist():
            kind: Kind = "array" if found[index] == ord("[") else "object"
            openers.setdefault(int(member[index]), (int(positions[index]), kind))
        closed = bool(depths[-1] == 0)
    if not closed or len(colons) != (member_base + 1 if colons else 0):
        return None
    members: dict[str, Member] = {}
    for index, colon in enumerate(colons):
        key = _key_before(body, colon)
        if key is None:
            return None
        opened, kind = openers.get(index, (colon, "scalar"))
        count = int(elements[index])
        members[key] = Member(kind, opened, count + 1 if count else 0, int(widths[index]))
    return members


def _tokens(body: bytes, start: int) -> Iterator[tuple[Any, Any, Any]]:
    """(positions, bytes, depths after) of the brackets, commas and colons outside strings
    of the value opening at `start`, window by window, up to the bracket that closes it."""
    data = np.frombuffer(body, np.uint8)
    in_string, depth, escaping, begin = 0, 0, 0, start
    while begin < len(body):
        end = min(begin + _WINDOW_BYTES, len(body))
        window = data[begin:end]
        quotes = window == _QUOTE
        if escaping or body.find(b"\\", begin, end) >= 0:
            escaped, escaping = _escaped(window, escaping)
            quotes &= ~escaped
        folded = window | _CASE_BIT
        marks = quotes | (folded == _OPENING) | (folded == _CLOSING)
        marks |= (window == _COMMA) | (window == _COLON)
        positions = np.flatnonzero(marks)
        found = window[positions]
        is_quote = found == _QUOTE
        toggles = np.cumsum(is_quote)
        inside = (toggles - is_quote + in_string) % 2 == 1
        if len(toggles):
            in_string = int(toggles[-1] + in_string) % 2
        keep = ~is_quote & ~inside
        positions, found = positions[keep] + begin, found[keep]
        folded_found = found | _CASE_BIT
        steps = (folded_found == _OPENING).astype(np.int64) - (folded_found == _CLOSING)
        depths = np.cumsum(steps) + depth
        shut = np.flatnonzero(depths <= 0)
        if len(shut):
            last = int(shut[0]) + 1
            yield positions[:last], found[:last], depths[:last]
            return
        if len(depths):
            depth = int(depths[-1])
            yield positions, found, depths
        begin = end


def _escaped(window: Any, carried: int) -> tuple[Any, int]:
    """The bytes that follow an odd run of backslashes (escaped, inside a string), and 1
    when the window ends inside such a run. `carried` is that 1 from the window before."""
    escaped = np.zeros(len(window), bool)
    backslashes = np.flatnonzero(window == _BACKSLASH)
    if not len(backslashes):
        escaped[0] = bool(carried)
        return escaped, 0
    breaks = np.flatnonzero(np.diff(backslashes) != 1)
    run_starts = np.concatenate(([backslashes[0]], backslashes[breaks + 1]))
    run_ends = np.concatenate((backslashes[breaks], [backslashes[-1]]))
    lengths = run_ends - run_starts + 1
    if run_starts[0] == 0:
        lengths[0] += carried  # the run goes on from the window before
    else:
        escaped[0] = bool(carried)
    odd = lengths % 2 == 1
    after_odd = run_ends[odd] + 1
    escaped[after_odd[after_odd < len(window)]] = True
    return escaped, int(odd[-1] and run_ends[-1] == len(window) - 1)


def _key_before(body: bytes, colon: int) -> str | None:
    """The key whose colon is at `colon`, or None when it cannot be read for sure."""
    close = body.rfind(b'"', 0, colon)
    opening = body.rfind(b'"', 0, close) if close > 0 else -1
    if opening < 0 or body[close + 1 : colon].strip() or body[opening - 1 : opening] == b"\\":
        return None  # not a key, or its last quote found is an escaped one inside it
    raw = body[opening + 1 : close]
    try:
        return json.loads(body[opening : close + 1]) if b"\\" in raw else raw.decode()
    except ValueError:
        return None
