"""A bounded HTTP/1.1 load generator that times 200s and 503s apart (loopback only).

wrk reports one latency distribution for all answers; an overload test needs the 503s'
and the 200s' separately, and an offered rate that does not slow down when answers do.
Two modes, both over keep-alive connections with one request in flight each:

- closed: N connections, each sends its next request as soon as its answer came (a step
  of the capacity test);
- open: requests leave at a fixed rate whatever the answers do; each takes an idle
  connection, or opens one, up to a bound (past it the request counts as not sent).

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvloop

ANSWER_TIMEOUT_SECONDS = 30.0
RESULT_PREFIX = "LOADGEN_RESULT "


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `send` resolves to the answer's status code."""

    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's transport class is not asyncio's
        self.buffer = b""
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

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
        self.buffer = self.buffer[end + 4 + length :]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    async def send(self, request: bytes) -> int:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await asyncio.wait_for(self.waiter, ANSWER_TIMEOUT_SECONDS)


@dataclass
class _Recorder:
    statuses: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    not_sent: int = 0
    sent: int = 0

    def summary(self, duration_s: float, connections: int) -> dict[str, object]:
        statuses = np.array(self.statuses, dtype=int)
        seconds = np.array(self.seconds, dtype=float) * 1000
        by_status: dict[str, dict[str, float]] = {}
        for status in sorted(set(self.statuses)):
            ms = seconds[statuses == status]
            by_status[str(status)] = {
                "count": int(ms.size),
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
                "max_ms": float(ms.max()),
            }
        return {
            "duration_s": duration_s,
            "sent": self.sent,
            "answered": int(statuses.size),
            "errors": self.errors,
            "not_sent": self.not_sent,
            "connections": connections,
            "by_status": by_status,
        }


async def _open(host: str, port: int) -> _Connection:
    transport, connection = await asyncio.get_running_loop().create_connection(
        _Connection, host, port
    )
    connection.transport = transport  # uvloop may call connection_made a moment later
    return connection


async def _timed_send(connection: _Connection, request: bytes, recorder: _Recorder) -> bool:
    recorder.sent += 1
    started = time.perf_counter()
    try:
        status = await connection.send(request)
    except (OSError, TimeoutError):
        recorder.errors += 1
        return False
    recorder.seconds.append(time.perf_counter() - started)
    recorder.statuses.append(status)
    return True


async def run_closed(
    host: str, port: int, request: bytes, connections: int, duration_s: float
) -> dict[str, object]:
    recorder = _Recorder()
    deadline = time.perf_counter() + duration_s

    async def one_connection() -> None:
        connection = await _open(host, port)
        while time.perf_counter() < deadline:
            if not await _timed_send(connection, request, recorder) or connection.closed:
                connection = await _open(host, port)

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return recorder.summary(time.perf_counter() - started, connections)


async def run_open(
    host: str,
    port: int,
    request: bytes,
    rate: float,
    duration_s: float,
    max_connections: int,
) -> dict[str, object]:
    recorder = _Recorder()
    idle = [await _open(host, port) for _ in range(min(max_connections, max(8, int(rate / 50))))]
    opened = len(idle)
    tasks: set[asyncio.Task[None]] = set()

    async def fire(connection: _Connection | None) -> None:
        nonlocal opened
        if connection is None:
            try:
                connection = await _open(host, port)
            except OSError:
                recorder.errors += 1
                opened -= 1
                return
        if await _timed_send(connection, request, recorder) and not connection.closed:
            idle.append(connection)
        else:
            opened -= 1

    started = time.perf_counter()
    due_total = 0
    while (elapsed := time.perf_counter() - started) < duration_s:
        due = int(elapsed * rate) - due_total
        due_total += due
        for _ in range(due):
            if idle:
                connection: _Connection | None = idle.pop()
            elif opened < max_connections:
                opened += 1
                connection = None
            else:
                recorder.not_sent += 1
                continue
            task = asyncio.create_task(fire(connection))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(0.001)
    if tasks:
        await asyncio.wait(tasks, timeout=ANSWER_TIMEOUT_SECONDS + 5)
    return recorder.summary(time.perf_counter() - started, opened)


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
