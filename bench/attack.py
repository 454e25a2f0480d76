#!/usr/bin/env python3
"""Issue 13's "done when", measured: while ten clients send the worst documents (or trickle
their headers), is /healthz answered, and the session check, and how fast? Standard library
only; talks HTTP/1.1 over loopback to the server bench/attack.sh started.

    python3 bench/attack.py SCENARIO SECONDS      # SCENARIO: idle | documents | slow-headers

Environment: PORT (the server's), TOKEN (a session token for the session check), SLOW_CONNS
(connections each slow-header client keeps open, default 500).
Prints one line of figures per scenario.
"""

import asyncio
import json
import os
import sys
import time

HOST = "127.0.0.1"
PORT = int(os.environ["PORT"])
TOKEN = os.environ.get("TOKEN", "")
SLOW_CONNS = int(os.environ.get("SLOW_CONNS", "500"))
PROBE_TIMEOUT = 10.0


def doubling_chain(levels):
    doc = "query Chain { ...F0 }\n"
    for i in range(levels):
        doc += f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}\n"
    return doc + f"fragment F{levels} on Query {{ session {{ user {{ id }} }} }}\n"


WORST = [
    doubling_chain(30),
    doubling_chain(64),
    "{ me(x: " + "[" * 2000 + "1" + "]" * 2000 + ") { id } }",
    "{ me(x: " + "{a: " * 1000 + "1" + "}" * 1000 + ") { id } }",
    "query { ...A } fragment A on Query { ...A }",
]

SESSION = json.dumps(
    {"query": "{ session { user { id email } session { id expiresAt } } }"}
).encode()


async def http(method, path, body=b"", headers=()):
    """One request on a fresh connection; returns (status, body)."""
    reader, writer = await asyncio.open_connection(HOST, PORT)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nConnection: close\r\n"
        for name, value in headers:
            head += f"{name}: {value}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    parts = status_line.split(b" ")
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError("no HTTP answer (connection closed)")
    return int(parts[1]), rest.partition(b"\r\n\r\n")[2]


async def timed(coro):
    started = time.monotonic()
    try:
        ok = await asyncio.wait_for(coro, PROBE_TIMEOUT)
    except (asyncio.TimeoutError, OSError, IndexError, ValueError):
        ok = False
    return (time.monotonic() - started) if ok else None


async def health_ok():
    status, _ = await http("GET", "/healthz")
    return status == 200


async def session_ok():
    status, body = await http(
        "POST", "/graphql", SESSION, [("Authorization", f"Bearer {TOKEN}")]
    )
    return status == 200 and b'"user":{"id"' in body


async def probe(stop, health, session, failures):
    while time.monotonic() < stop:
        for check, times in ((health_ok, health), (session_ok, session)):
            t = await timed(check())
            if t is None:
                failures[check.__name__] = failures.get(check.__name__, 0) + 1
            else:
                times.append(t)
        await asyncio.sleep(0.02)


async def document_sender(stop, i, counts):
    n = 0
    while time.monotonic() < stop:
        doc = WORST[(i + n) % len(WORST)]
        try:
            status, body = await http("POST", "/graphql", json.dumps({"query": doc}).encode())
            key = f"{status} {'refused' if b'GRAPHQL_' in body else 'other'}"
        except OSError as e:
            key = type(e).__name__
        counts[key] = counts.get(key, 0) + 1
        n += 1


async def slow_connection(stop, stats):
    """Opens a connection and sends a header byte a second until the server closes it."""
    try:
        reader, writer = await asyncio.open_connection(HOST, PORT)
    except OSError:
        stats["connect_failed"] += 1
        await asyncio.sleep(1)
        return
    stats["open"] += 1
    stats["peak"] = max(stats["peak"], stats["open"])
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        await writer.drain()
        while time.monotonic() < stop:
            writer.write(b"a")
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(1024), 1.0)
                if not data:  # closed by the server
                    stats["closed_by_server"] += 1
                    return
            except asyncio.TimeoutError:
                pass
    except OSError:
        stats["closed_by_server"] += 1
    finally:
        stats["open"] -= 1
        writer.close()


async def slow_sender(stop, stats):
    """Keeps up to SLOW_CONNS trickling connections open, reopening those the server closes."""
    tasks = set()
    while time.monotonic() < stop:
        while len(tasks) < SLOW_CONNS and time.monotonic() < stop:
            task = asyncio.create_task(slow_connection(stop, stats))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if len(tasks) % 50 == 0:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
    await asyncio.gather(*tasks, return_exceptions=True)


def figures(times):
    if not times:
        return "none answered"
    times = sorted(times)
    ms = lambda t: t * 1000.0
    p = lambda q: times[min(len(times) - 1, int(len(times) * q))]
    return (
        f"{len(times)} answered, p50 {ms(p(0.5)):.2f} ms, p99 {ms(p(0.99)):.2f} ms, "
        f"max {ms(times[-1]):.2f} ms"
    )


async def main(scenario, seconds):
    stop = time.monotonic() + seconds
    health, session, failures = [], [], {}
    extra = []
    if scenario == "documents":
        counts = {}
        senders = [document_sender(stop, i, counts) for i in range(10)]
        await asyncio.gather(probe(stop, health, session, failures), *senders)
        extra.append(f"attack responses {dict(sorted(counts.items()))}")
    elif scenario == "slow-headers":
        stats = {"open": 0, "peak": 0, "closed_by_server": 0, "connect_failed": 0}
        senders = [slow_sender(stop, stats) for _ in range(10)]
        await asyncio.gather(probe(stop, health, session, failures), *senders)
        extra.append(
            f"slow connections: peak open {stats['peak']}, closed by the server "
            f"{stats['closed_by_server']}, connects refused/failed {stats['connect_failed']}"
        )
    else:
        await probe(stop, health, session, failures)
    print(
        f"{scenario}: /healthz {figures(health)}; session {figures(session)}; "
        f"unanswered {failures or 0}; " + "; ".join(extra)
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], float(sys.argv[2]))))
