#!/usr/bin/env python3
"""scripts/reliability/multi.py: the checks of `make multi` (run by multi.sh,
which starts the instances): several strata processes on one database.

    multi.py DATABASE_URL SERVICE_TOKEN LUA_DIR_OF_RELOADED PORT...

Each check prints "PASS <name>: <figures>" or "FAIL <name>: <why>"; the last
line is "N passed, N failed"; the exit status is 1 when one failed.
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid

DB, SERVICE, RELOAD_DIR = sys.argv[1], sys.argv[2], sys.argv[3]
PORTS = [int(p) for p in sys.argv[4:]]
RESULTS = []


def report(name, ok, text):
    RESULTS.append(ok)
    print(("PASS" if ok else "FAIL") + " " + name + ": " + text, flush=True)


def sql(statement):
    """Runs one statement with psql (its own connection, committed when it
    returns); the unaligned output."""
    out = subprocess.run(["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", DB, "-c", statement],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError("psql: " + out.stderr.strip())
    return out.stdout.strip()


class Client:
    """One keep-alive connection to one instance."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def call(self, method, path, body=None, token=None, headers=None):
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + token
        h.update(headers or {})
        data = json.dumps(body) if body is not None else None
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, raw
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def check_broker():
    """A broker value committed by plain SQL is answered by every instance's
    native engine; the lag from before the commit to each answer."""
    org = sql("insert into public.organizations(name, slug) values ('multi', 'multi-' || gen_random_uuid()) returning id")
    broker = sql("insert into public.data_broker(name) values ('multi-' || gen_random_uuid()) returning id")
    sql(f"insert into public.broker_values(broker_id, organization_id, value) values ('{broker}', '{org}', '\"m-0\"')")
    req = {"p_organization_id": org, "p_broker_ids": [broker]}
    lags = {p: [] for p in PORTS}

    def await_mark(port, mark, t0, out):
        c = Client(port)
        want = f'"m-{mark}"'.encode()
        while True:
            status, body = c.call("POST", "/rest/v1/rpc/get_broker_values_for_context", req, SERVICE)
            if status == 200 and want in body:
                out[port] = time.monotonic() - t0
                return
            if time.monotonic() - t0 > 10:
                out[port] = float("inf")
                return
            time.sleep(0.002)

    rounds = 20
    for mark in range(0, rounds + 1):
        if mark:
            t0 = time.monotonic()  # before the commit: the lag is not understated
            sql(f"update public.broker_values set value = '\"m-{mark}\"' where broker_id = '{broker}'")
        else:
            t0 = time.monotonic()
        seen = {}
        threads = [threading.Thread(target=await_mark, args=(p, mark, t0, seen)) for p in PORTS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if mark:  # round 0 only waits for the fixture
            for p in PORTS:
                lags[p].append(seen[p])
    worst = max(max(v) for v in lags.values())
    text = ", ".join(f":{p} max {max(v) * 1000:.0f} ms" for p, v in lags.items())
    report("broker", worst <= 0.100,
           f"{rounds} SQL commits, each answered by all {len(PORTS)} instances; lag from before COMMIT (psql "
           f"start included): {text} (limit 100 ms)")


def check_rate_limit():
    """A cluster rate limit of 30 per hour, hit 90 times at once across the
    instances: exactly 30 allowed."""
    path = "/v1/hello/limited-" + uuid.uuid4().hex
    codes = []
    lock = threading.Lock()

    def hit(port, n):
        c = Client(port)
        for _ in range(n):
            status, _ = c.call("GET", path)
            with lock:
                codes.append(status)

    threads = [threading.Thread(target=hit, args=(p, 10)) for p in PORTS for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    allowed = codes.count(200)
    limited = codes.count(429)
    report("rate-limit", allowed == 30 and limited == len(codes) - 30,
           f"{len(codes)} requests across {len(PORTS)} instances, 9 clients at once: {allowed} allowed, "
           f"{limited} answered 429 (want exactly 30 allowed)")


PROBE = "/rest/v1/Chat?select=id&limit=1"


def check_revocation():
    """A session ended on one instance is refused by all within a second
    (401 on /rest/v1)."""
    a = Client(PORTS[0])
    email = f"multi-{uuid.uuid4().hex[:12]}@example.test"
    status, body = a.call("POST", "/auth/v1/signup", {"email": email, "password": "multi-secret-pw"})
    if status != 200:
        return report("revocation", False, f"sign-up answered {status}: {body[:200]!r}")
    token = json.loads(body)["access_token"]
    for p in PORTS:
        s, _ = Client(p).call("GET", PROBE, token=token)
        if s != 200:
            return report("revocation", False, f"the fresh token was refused by :{p} ({s})")
    last = Client(PORTS[-1])
    t0 = time.monotonic()
    s, _ = last.call("POST", "/auth/v1/logout", token=token)
    if s != 204:
        return report("revocation", False, f"logout on :{PORTS[-1]} answered {s}")
    refused = {}
    for p in PORTS:
        c = Client(p)
        while time.monotonic() - t0 < 5:
            s, _ = c.call("GET", PROBE, token=token)
            if s == 401:
                refused[p] = time.monotonic() - t0
                break
            time.sleep(0.005)
    worst = max(refused.values()) if len(refused) == len(PORTS) else float("inf")
    report("revocation", worst <= 1.0,
           "logout on :%d; refused by %s (limit 1 s)" % (
               PORTS[-1], ", ".join(f":{p} after {v * 1000:.0f} ms" for p, v in refused.items()) or "none"))


def load(ports, stop, counts, lock):
    """Round-robin GETs across the ports until stop is set."""
    clients = [Client(p) for p in ports]
    i = 0
    while not stop.is_set():
        c = clients[i % len(clients)]
        i += 1
        try:
            s, _ = c.call("GET", "/v1/hello/multi")
        except OSError:
            s = 0
        with lock:
            counts[s] = counts.get(s, 0) + 1


def check_reload():
    """Reloading one instance's Lua (once good, once broken, then good
    again) while clients go round-robin across all: no request fails, the
    reloaded instance serves the new route, the others never see it."""
    stop, lock, counts = threading.Event(), threading.Lock(), {}
    threads = [threading.Thread(target=load, args=(PORTS, stop, counts, lock)) for _ in range(4)]
    for t in threads:
        t.start()
    route = os.path.join(RELOAD_DIR, "routes", "multi_reload.lua")
    target = PORTS[1]
    try:
        time.sleep(1)
        with open(route, "w") as f:
            f.write('return {{ method = "GET", path = "/v1/multi-reload", '
                    'handler = function() return 200, { generation = 1 } end }}\n')
        new_seen = wait_for(target, "/v1/multi-reload", 200)
        with open(route, "w") as f:
            f.write("return {{ method = \"GET\", path = \"/v1/multi-reload\", handler = \n")  # broken
        time.sleep(2)
        kept = Client(target).call("GET", "/v1/multi-reload")[0]
        os.remove(route)
        gone = wait_for(target, "/v1/multi-reload", 404)
        others = [Client(p).call("GET", "/v1/multi-reload")[0] for p in PORTS if p != target]
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    total = sum(counts.values())
    bad = total - counts.get(200, 0)
    report("reload", bad == 0 and new_seen and kept == 200 and gone and all(o == 404 for o in others),
           f"{total} round-robin requests during three reloads of :{target} (good, broken, route removed): "
           f"{bad} not 200; new route served: {new_seen}; kept through the broken file: {kept == 200}; "
           f"others never saw it: {all(o == 404 for o in others)}")


def wait_for(port, path, want, seconds=5):
    c = Client(port)
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if c.call("GET", path)[0] == want:
            return True
        time.sleep(0.05)
    return False


def metric(port, name):
    """Sum of the samples of one metric family on one instance."""
    _, body = Client(port).call("GET", "/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def check_jobs_once(interval_ms, window_s):
    """The retention purge, scheduled every interval on each instance, runs
    once per interval across them (not once per instance)."""
    name = 'strata_log_purges_total{result="ok"}'
    before = sum(metric(p, name) for p in PORTS)
    time.sleep(window_s)
    runs = sum(metric(p, name) for p in PORTS) - before
    periods = window_s * 1000 / interval_ms
    report("jobs-once", runs <= periods + 1,
           f"log purge every {interval_ms} ms on {len(PORTS)} instances for {window_s} s: {runs:.0f} runs "
           f"in all (once per period: at most {periods + 1:.0f}; once per instance would be {periods * len(PORTS):.0f})")


def main():
    for p in PORTS:
        if not wait_for(p, "/ready", 200, 20):
            print(f"FAIL start: :{p} not ready")
            sys.exit(1)
    for check in (check_broker, check_rate_limit, check_revocation, check_reload):
        try:
            check()
        except Exception as e:  # a check that breaks is a failure, not a crash of the run
            report(check.__name__[6:], False, f"raised {e!r}")
    check_jobs_once(int(os.environ.get("MULTI_PURGE_MS", "1000")), int(os.environ.get("MULTI_JOB_SECONDS", "10")))
    passed = sum(RESULTS)
    print(f"{passed} passed, {len(RESULTS) - passed} failed")
    sys.exit(0 if passed == len(RESULTS) else 1)


if __name__ == "__main__":
    main()
