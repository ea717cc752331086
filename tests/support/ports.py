"""Ports on 127.0.0.1 for the servers a test starts."""

from __future__ import annotations

import socket

# Ports handed out by this process: the kernel can give a released port to the next bind
# to 0 again, and a test that starts ten servers at once would start two on one port.
_issued: set[int] = set()
_ATTEMPTS = 100


def free_port() -> int:
    """A port nothing listens on right now (bind to 0, read it, release it) and that this
    process has not handed out before."""
    for _ in range(_ATTEMPTS):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _issued:
            _issued.add(port)
            return port
    raise RuntimeError(f"no port this process has not used within {_ATTEMPTS} attempts")
