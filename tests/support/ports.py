"""Ports on 127.0.0.1 for the servers a test starts.

A port is drawn below the kernel's ephemeral range, not by binding to port 0. Between the
moment a port is chosen and the moment the server binds it, any outgoing connection on the
machine (a client of another server, the registry, Prometheus scraping) may take an
ephemeral port as its local end, and the server's bind then fails. Ports below that range
are only ever taken by a listener that asks for them by number.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Linux's default ephemeral range starts at 32768; the draw stays above the well-known and
# commonly configured ports.
_LOWEST = 20000
_DEFAULT_EPHEMERAL_START = 32768
_ATTEMPTS = 200
# Ports handed out by this process: a test that starts ten servers at once must not start
# two on one port.
_issued: set[int] = set()


def _below_ephemeral() -> range:
    try:
        start = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        start = _DEFAULT_EPHEMERAL_START
    if start - _LOWEST < 1000:
        raise RuntimeError(f"the ephemeral port range starts at {start}: no room below it")
    return range(_LOWEST, start)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port below the ephemeral range that nothing listens on right now and that this
    process has not handed out before."""
    candidates = _below_ephemeral()
    for _ in range(_ATTEMPTS):
        port = random.choice(candidates)  # noqa: S311 -- spreads draws, no secret
        if port not in _issued and _bindable(port):
            _issued.add(port)
            return port
    raise RuntimeError(f"no free port below the ephemeral range within {_ATTEMPTS} draws")
