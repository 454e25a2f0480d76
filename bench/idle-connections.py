#!/usr/bin/env python3
"""Open N keep-alive connections to the service, send one `session` request on each (so each is
a served, idle keep-alive connection, not a half-open one), then hold them all open until stdin
closes or HOLD seconds pass.

    bench/idle-connections.py HOST PORT N TOKEN HOLD_SECONDS

Prints "ready OPEN FAILED" once every connection has had its answer; the caller measures the
server's RSS then. Needs `ulimit -n` above N.
"""
import asyncio
import json
import sys

host, port, n, token, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
body = json.dumps({"query": "{ session { user { id } } }"}).encode()
request = (
    f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
).encode() + body


async def one(sem):
    async with sem:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        answer = await reader.readexactly(length)
        if b'"session":null' in answer or not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
        return writer


async def main():
    sem = asyncio.Semaphore(256)  # at most this many handshakes in flight at once
    results = await asyncio.gather(*(one(sem) for _ in range(n)), return_exceptions=True)
    open_ = [w for w in results if not isinstance(w, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    print(f"ready {len(open_)} {len(failed)}", flush=True)
    if failed:
        print(f"first failure: {failed[0]!r}", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    await asyncio.wait([stdin_closed], timeout=hold)
    for w in open_:
        w.close()
    import os
    os._exit(0)


asyncio.run(main())
