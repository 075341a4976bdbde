#!/usr/bin/env python3
"""scripts/reliability/chaos.py: the clients of `make chaos` (chaos.sh runs
the scenarios and does the harm; this file generates load and checks).

    chaos.py writes PORT TOKEN SECONDS OUT [THREADS]  write load, outcome per request
    chaos.py verify DATABASE_URL OUT NAME      every 2xx write whole, none half
    chaos.py slowloris PORT CONNS SECONDS      slow clients, a byte every 2 s
    chaos.py idle PORT CONNS SECONDS           idle keep-alive connections
    chaos.py gets PORT SECONDS OUT              GET load, status counts

Each write request inserts two rows of public.chaos_items with one request
id (a bulk POST /rest/v1/chaos_items): after any fault a request's rows are
there both or neither, and both when it was answered 2xx.
"""
import asyncio
import http.client
import json
import subprocess
import sys
import threading
import time
import uuid


class Client:
    def __init__(self, port):
        self.port, self.conn = port, None

    def call(self, method, path, body=None, headers=None):
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.conn.request(method, path, body=body, headers=headers or {})
            r = self.conn.getresponse()
            raw = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return r.status, r.getheader("Retry-After"), raw
        except (http.client.HTTPException, OSError):
            if self.conn:
                self.conn.close()
            self.conn = None
            return 0, None, b""


def for_seconds(port, seconds, threads, step):
    """Runs step(client) in a loop on each of `threads` threads, each with
    its own keep-alive client of port, for `seconds`."""
    stop = time.monotonic() + float(seconds)

    def run():
        c = Client(port)
        while time.monotonic() < stop:
            step(c)

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def writes(port, token, seconds, out, threads=8):
    """Posts two-row inserts from several threads for `seconds`; writes one
    line per request to out: request id, status, Retry-After, time."""
    lock = threading.Lock()
    lines = []
    headers = {"Authorization": "Bearer " + token, "apikey": token, "Content-Type": "application/json",
               "Prefer": "return=minimal"}

    def step(c):
        rid = str(uuid.uuid4())
        body = json.dumps([{"req": rid, "n": 1}, {"req": rid, "n": 2}])
        status, retry, _ = c.call("POST", "/rest/v1/chaos_items", body, headers)
        with lock:
            lines.append(f"{rid} {status} {retry or '-'} {time.monotonic():.3f}")
        if status != 201:
            time.sleep(0.01)

    for_seconds(port, seconds, threads, step)
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


def verify(db, out, name):
    """PASS when every 201 has both rows, no request has one row, and the
    only failures are 503/504 with Retry-After or a refused connection (0)."""
    rows = {}
    res = subprocess.run(["psql", "-X", "-q", "-tA", "-F", " ", "-d", db, "-c",
                          "select req, count(*) from public.chaos_items group by req"],
                         capture_output=True, text=True, check=True)
    for line in res.stdout.strip().splitlines():
        req, n = line.split()
        rows[req] = int(n)
    statuses, lost, half, bad, no_retry = {}, 0, 0, [], 0
    for line in open(out):
        rid, status, retry, _ = line.split()
        status = int(status)
        statuses[status] = statuses.get(status, 0) + 1
        n = rows.get(rid, 0)
        if status == 201 and n != 2:
            lost += 1
        if n not in (0, 2):
            half += 1
        if status not in (201, 0, 503, 504):
            bad.append(status)
        if status in (503, 504) and retry == "-":
            no_retry += 1
    ok = lost == 0 and half == 0 and not bad and no_retry == 0 and statuses.get(201, 0) > 0
    summary = ", ".join(f"{k or 'refused'}: {v}" for k, v in sorted(statuses.items()))
    print(f"{'PASS' if ok else 'FAIL'} {name}: requests {summary}; 2xx writes missing: {lost}; "
          f"requests with half their rows: {half}; other failures: {sorted(set(bad)) or 'none'}; "
          f"503/504 without Retry-After: {no_retry}")
    return ok


def gets(port, seconds, out, threads=4):
    counts, lock = {}, threading.Lock()

    def step(c):
        s, _, _ = c.call("GET", "/v1/hello/chaos")
        with lock:
            counts[s] = counts.get(s, 0) + 1

    for_seconds(port, seconds, threads, step)
    with open(out, "w") as f:
        json.dump(counts, f)


async def slowloris(port, conns, seconds):
    """conns connections that each send a request line and then one header
    byte every 2 s; prints how many were still open at the end and how many
    strata answered or closed."""
    opened, closed = 0, 0

    async def one():
        nonlocal opened, closed
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        opened += 1
        w.write(b"GET /v1/hello/slow HTTP/1.1\r\nHost: x\r\n")
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                await w.drain()
                await asyncio.sleep(2)
                w.write(b"X")
                if r.at_eof():
                    break
        except OSError:
            pass
        if r.at_eof() or w.is_closing():
            closed += 1
        w.close()

    await asyncio.gather(*(one() for _ in range(conns)))
    print(json.dumps({"opened": opened, "closed_by_server": closed}))


async def idle(port, conns, seconds):
    """conns keep-alive connections, each after one request, held idle."""
    held, answered = [], 0
    for _ in range(conns):
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            break
        w.write(b"GET /v1/hello/idle HTTP/1.1\r\nHost: x\r\n\r\n")
        held.append((r, w))
    for r, w in held:
        try:
            line = await asyncio.wait_for(r.readline(), 10)
            answered += line.startswith(b"HTTP/1.1 200")
        except (asyncio.TimeoutError, OSError):
            pass
    print(json.dumps({"held": len(held), "answered_200": answered}), flush=True)
    await asyncio.sleep(float(seconds))
    for _, w in held:
        w.close()


def main():
    cmd = sys.argv[1]
    if cmd == "writes":
        writes(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]) if len(sys.argv) > 6 else 8)
    elif cmd == "verify":
        sys.exit(0 if verify(sys.argv[2], sys.argv[3], sys.argv[4]) else 1)
    elif cmd == "gets":
        gets(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif cmd == "slowloris":
        asyncio.run(slowloris(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
    elif cmd == "idle":
        asyncio.run(idle(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
    else:
        sys.exit("chaos.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
