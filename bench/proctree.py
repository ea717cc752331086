"""CPU time and memory of a server's process tree, read from /proc (Linux, no dependencies)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# Fields of /proc/<pid>/stat after the ")" closing the command name (see proc(5)).
_PPID, _UTIME, _STIME, _CUTIME, _CSTIME = 1, 11, 12, 13, 14


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    command: str
    pss_bytes: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()


def list_tree(root: int) -> list[int]:
    """`root` and all its live descendants (children found by scanning every ppid)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[_PPID]), []).append(int(entry.name))
    tree = [root]
    for pid in tree:  # grows while iterating: a breadth-first walk
        tree.extend(children.get(pid, ()))
    return tree


def cpu_seconds(root: int) -> float:
    """User + system CPU time of the tree, including descendants that already exited.

    A process's own times plus its reaped children's (cutime, cstime): a worker that dies
    and is reaped by the master still counts, so differences between calls stay right.
    """
    ticks = 0
    for pid in list_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += sum(int(fields[i]) for i in (_UTIME, _STIME, _CUTIME, _CSTIME))
    return ticks / CLOCK_TICKS_PER_SECOND


def wait_idle(root: int, *, limit_s: float = 15.0, window_s: float = 0.5) -> bool:
    """Wait until the tree uses under 5% of one core over a window; False if it never does.

    Covers a worker still loading its model after the first one answered, and requests
    still draining after the load generator stopped.
    """
    deadline = time.monotonic() + limit_s
    before = cpu_seconds(root)
    while time.monotonic() < deadline:
        time.sleep(window_s)
        after = cpu_seconds(root)
        if after - before < 0.05 * window_s:
            return True
        before = after
    return False


def memory(root: int) -> list[ProcessMemory]:
    """Proportional set size of each process of the tree: shared pages split among sharers."""
    found = []
    for pid in list_tree(root):
        try:
            rollup = (PROC / str(pid) / "smaps_rollup").read_text()
            command = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
        except (FileNotFoundError, ProcessLookupError):
            continue
        pss_kib = next(
            int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")
        )
        found.append(ProcessMemory(pid, command.decode(errors="replace").strip(), pss_kib * 1024))
    return found
