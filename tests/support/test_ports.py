"""The test harness's ports: distinct, bindable, and never from the ephemeral range that
outgoing connections draw their local ports from."""

from __future__ import annotations

import random
import socket

import pytest

from tests.support.ports import _below_ephemeral, free_port


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    allowed = _below_ephemeral()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(port in allowed for port in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[0]))


def test_a_port_a_listener_holds_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    allowed = _below_ephemeral()
    with socket.socket() as listener:
        for candidate in range(allowed.stop - 1, allowed.start, -1):
            try:
                listener.bind(("127.0.0.1", candidate))
                break
            except OSError:
                continue
        listener.listen()
        held = listener.getsockname()[1]
        draws = iter([held, held, held - 1, held - 2, held - 3])
        monkeypatch.setattr(random, "choice", lambda _: next(draws))
        assert free_port() != held
