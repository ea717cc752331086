"""A bounded HTTP/1.1 load generator that times 200s and 503s apart (loopback only).

wrk reports one latency distribution for all answers; an overload test needs the 503s'
and the 200s' separately, and an offered rate that does not slow down when answers do.
Two modes, both over keep-alive connections with one request in flight each:

- closed: N connections, each sends its next request as soon as its answer came (a step
  of the capacity test);
- open: requests fall due at a fixed rate whatever the answers do; each takes an idle
  connection, or opens one, up to a bound (past it the request counts as not sent). Its
  time runs from when it fell due, so waiting for a connection counts.

It shares the machine's cores with the server it loads, so it is written to cost little
per request: connections are protocol callbacks driven by one timer, with no task, future
or timeout object per request (a sweep closes answers overdue by ANSWER_TIMEOUT_SECONDS).

Run as `python -m bench.loadgen ...`: it prints one JSON line with the figures, so the
bench runs it in a process of its own, apart from the probes it times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from array import array
from collections.abc import Callable

import numpy as np
import uvloop

ANSWER_TIMEOUT_SECONDS = 30.0
RESULT_PREFIX = "LOADGEN_RESULT "
_TICK_SECONDS = 0.001


class _Connection(asyncio.Protocol):
    """One keep-alive connection; tells its load of each answer, closing and loss."""

    def __init__(self, load: _Load) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.due: float | None = None  # when the request in flight fell due

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.load.opened_ready(self)

    def send(self, due: float) -> None:
        assert self.transport is not None
        self.due = due
        self.transport.write(self.load.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        length = 0
        start = head.find(b"content-length:")
        if start >= 0:
            stop = head.find(b"\r\n", start)
            length = int(head[start + 15 : stop if stop >= 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        closing = b"connection: close" in head
        self.buffer = self.buffer[end + 4 + length :]
        due, self.due = self.due, None
        if due is not None:
            self.load.answered(self, status, time.perf_counter() - due, closing)

    def connection_lost(self, exc: Exception | None) -> None:
        self.load.lost(self)


class _Load:
    """The figures and the connection pool of one run."""

    def __init__(self, host: str, port: int, request: bytes, max_connections: int) -> None:
        self.host, self.port, self.request = host, port, request
        self.max_connections = max_connections
        self.statuses = array("H")
        self.seconds = array("d")
        self.errors = 0
        self.not_sent = 0
        self.sent = 0
        self.opened = 0  # open or opening
        self.peak = 0
        self.idle: list[_Connection] = []
        self.busy: set[_Connection] = set()
        self.waiting_for_connection: list[float] = []  # due times of requests being opened for
        self.on_free: Callable[[_Connection], None] = self.idle.append

    def open_one(self) -> None:
        self.opened += 1
        self.peak = max(self.peak, self.opened)
        loop = asyncio.get_running_loop()
        task = loop.create_task(
            loop.create_connection(lambda: _Connection(self), self.host, self.port)
        )
        task.add_done_callback(self._open_failed)

    def _open_failed(self, task: asyncio.Task[object]) -> None:
        if task.cancelled() or task.exception() is not None:
            self.opened -= 1
            if self.waiting_for_connection:
                self.waiting_for_connection.pop(0)
                self.errors += 1

    def opened_ready(self, connection: _Connection) -> None:
        if self.waiting_for_connection:
            self.fire(connection, self.waiting_for_connection.pop(0))
        else:
            self.on_free(connection)

    def fire(self, connection: _Connection, due: float) -> None:
        self.sent += 1
        self.busy.add(connection)
        connection.send(due)

    def answered(self, connection: _Connection, status: int, seconds: float, closing: bool) -> None:
        self.statuses.append(status)
        self.seconds.append(seconds)
        self.busy.discard(connection)
        if closing:
            assert connection.transport is not None
            connection.transport.close()
        else:
            self.on_free(connection)

    def lost(self, connection: _Connection) -> None:
        self.opened -= 1
        if connection.due is not None:
            self.errors += 1
        self.busy.discard(connection)
        if connection in self.idle:
            self.idle.remove(connection)

    def sweep(self) -> None:
        """Close connections whose answer is overdue: each counts as an error."""
        now = time.perf_counter()
        for connection in [c for c in self.busy if c.due and now - c.due > ANSWER_TIMEOUT_SECONDS]:
            assert connection.transport is not None
            connection.transport.abort()

    def summary(self, duration_s: float) -> dict[str, object]:
        statuses = np.frombuffer(self.statuses, dtype=np.uint16)
        ms = np.frombuffer(self.seconds, dtype=np.float64) * 1000
        by_status: dict[str, dict[str, float]] = {}
        for status in sorted(set(statuses.tolist())):
            chosen = ms[statuses == status]
            by_status[str(status)] = {
                "count": int(chosen.size),
                "p50_ms": float(np.percentile(chosen, 50)),
                "p99_ms": float(np.percentile(chosen, 99)),
                "max_ms": float(chosen.max()),
            }
        return {
            "duration_s": duration_s,
            "sent": self.sent,
            "answered": int(statuses.size),
            "errors": self.errors,
            "not_sent": self.not_sent,
            "connections": self.peak,
            "by_status": by_status,
        }


async def _drain(load: _Load, until: float) -> None:
    """Wait for the answers still in flight, sweeping overdue ones, until `until`."""
    while (load.busy or load.waiting_for_connection) and time.perf_counter() < until:
        load.sweep()
        await asyncio.sleep(0.05)
    for connection in list(load.busy):
        assert connection.transport is not None
        connection.transport.abort()
    await asyncio.sleep(0.05)


async def run_closed(
    host: str, port: int, request: bytes, connections: int, duration_s: float
) -> dict[str, object]:
    load = _Load(host, port, request, connections)
    deadline = time.perf_counter() + duration_s

    def next_request(connection: _Connection) -> None:
        if time.perf_counter() < deadline:
            load.fire(connection, time.perf_counter())
        else:
            load.idle.append(connection)

    load.on_free = next_request
    started = time.perf_counter()
    for _ in range(connections):
        load.open_one()
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
        load.sweep()
        # A closed or lost connection is replaced, so the concurrency stays N.
        for _ in range(connections - load.opened):
            load.open_one()
    elapsed = time.perf_counter() - started
    await _drain(load, time.perf_counter() + ANSWER_TIMEOUT_SECONDS + 5)
    return load.summary(elapsed)


async def run_open(
    host: str,
    port: int,
    request: bytes,
    rate: float,
    duration_s: float,
    max_connections: int,
) -> dict[str, object]:
    load = _Load(host, port, request, max_connections)
    for _ in range(min(max_connections, max(8, int(rate / 50)))):
        load.open_one()
    await asyncio.sleep(0.5)  # the first connections are open before the clock starts
    started = time.perf_counter()
    fired = 0
    next_sweep = started + 1.0
    while (now := time.perf_counter()) - started < duration_s:
        due_total = int((now - started) * rate)
        interval = 1.0 / rate
        for index in range(fired, due_total):
            due = started + index * interval
            if load.idle:
                load.fire(load.idle.pop(), due)
            elif load.opened < max_connections:
                load.waiting_for_connection.append(due)
                load.open_one()
            else:
                load.not_sent += 1
        fired = due_total
        if now >= next_sweep:
            load.sweep()
            next_sweep = now + 1.0
        await asyncio.sleep(_TICK_SECONDS)
    elapsed = time.perf_counter() - started
    await _drain(load, time.perf_counter() + ANSWER_TIMEOUT_SECONDS + 5)
    return load.summary(elapsed)


def request_bytes(host: str, port: int, body: bytes) -> bytes:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--duration", type=float, required=True)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--connections", type=int, help="closed loop with this many")
    mode.add_argument("--rate", type=float, help="open loop at this many requests/s")
    parser.add_argument("--max-connections", type=int, default=2048)
    args = parser.parse_args(argv)
    host = "127.0.0.1"  # loopback only
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(args.body_file, "rb") as file:
        request = request_bytes(host, args.port, file.read())
    # uvloop (Uvicorn's loop, pinned with it) keeps the client's own CPU per request low.
    if args.connections:
        result = uvloop.run(run_closed(host, args.port, request, args.connections, args.duration))
    else:
        limit = min(args.max_connections, hard - 64)
        result = uvloop.run(run_open(host, args.port, request, args.rate, args.duration, limit))
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
