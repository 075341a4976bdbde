#!/usr/bin/env python3
"""make bench-ai's two halves (asyncio, one process each):

  ai_bench.py fake PORTFILE CHUNKS GAP_MS
      a Gemini-compatible streaming fake: every POST answers CHUNKS deltas
      GAP_MS apart in streamGenerateContent?alt=sse's format, then the usage.
  ai_bench.py load HOST PORT TOKEN RUNS_FILE PROBE_SECONDS
      starts one streamed execution per run id of RUNS_FILE at once
      (POST /v1/ai/runs/<id>/messages, Accept: text/event-stream), and while
      they start and stream probes GET /v1/hello/x one request at a time
      from a process of its own (in this one, the probe's answers would
      wait behind the thousand streams' reads in the loop);
      prints one JSON line: {"streams", "ok", "deltas", "errors", "started_s"
      (when every stream had its first delta), "probe": [ms...] (all),
      "probe_streaming": [ms...] (those begun after started_s)}.
  ai_bench.py probe HOST PORT SECONDS
      the probe alone (the baseline): {"probe": [ms...]}.
"""
import asyncio
import json
import sys
import time


def sse(obj):
    return b"data: " + json.dumps(obj).encode() + b"\r\n\r\n"


async def fake_client(reader, writer, chunks, gap):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if length:
            await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(chunks):
            c = {"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "index": 0}],
                 "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": i + 1}}
            if i == chunks - 1:
                c["candidates"][0]["finishReason"] = "STOP"
            data = sse(c)
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()
            await asyncio.sleep(gap)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()
    except (ConnectionError, asyncio.IncompleteReadError):
        writer.close()


async def fake(portfile, chunks, gap_ms):
    srv = await asyncio.start_server(lambda r, w: fake_client(r, w, chunks, gap_ms / 1000), "127.0.0.1", 0, backlog=4096)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.sockets[0].getsockname()[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    async with srv:
        await srv.serve_forever()


async def probe(host, port, seconds, stop=None):
    lat = []  # (start time, ms)
    reader, writer = await asyncio.open_connection(host, port)
    end = time.monotonic() + seconds
    req = b"GET /v1/hello/x HTTP/1.1\r\nHost: x\r\n\r\n"
    while time.monotonic() < end and not (stop and stop.is_set()):
        t = time.monotonic()
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
        await reader.readexactly(n)
        lat.append((t, (time.monotonic() - t) * 1000))
        await asyncio.sleep(0.01)
    writer.close()
    return lat


async def stream(host, port, token, run, res):
    body = json.dumps({"content": "bench"}).encode()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST /v1/ai/runs/%s/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     b"Accept: text/event-stream\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (run.encode(), token.encode(), len(body), body))
        await writer.drain()
        parts = []
        while True:  # until the server closes
            piece = await reader.read(65536)
            if not piece:
                break
            if "first" not in res["_first"].get(run, {}) and b"event: delta" in piece:
                res["_first"][run] = {"first": time.monotonic()}
            parts.append(piece)
        data = b"".join(parts)
        writer.close()
        res["deltas"] += data.count(b"event: delta")
        if b"event: done" in data:
            res["ok"] += 1
        else:
            res["errors"] += 1
            res.setdefault("sample", data[-300:].decode("latin-1"))
    except OSError as e:
        res["errors"] += 1
        res.setdefault("sample", str(e))


async def load(host, port, token, runs_file, seconds):
    runs = [l.strip() for l in open(runs_file) if l.strip()]
    res = {"streams": len(runs), "ok": 0, "deltas": 0, "errors": 0, "_first": {}}
    t0 = time.monotonic()
    prober = await asyncio.create_subprocess_exec(sys.executable, __file__, "probe", host, str(port), str(seconds),
                                                  stdout=asyncio.subprocess.PIPE)
    tasks = [asyncio.create_task(stream(host, port, token, r, res)) for r in runs]
    out, _ = await prober.communicate()
    lat = json.loads(out)["timed"]  # CLOCK_MONOTONIC: one clock for both processes
    await asyncio.gather(*tasks)
    # Every stream has its first delta: past the start burst.
    started = max((v["first"] for v in res.pop("_first").values()), default=t0)
    res["started_s"] = started - t0
    res["probe"] = [ms for _, ms in lat]
    res["probe_streaming"] = [ms for t, ms in lat if t > started]
    print(json.dumps(res))


def main():
    mode = sys.argv[1]
    if mode == "fake":
        asyncio.run(fake(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    elif mode == "load":
        asyncio.run(load(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], float(sys.argv[6])))
    else:
        lat = asyncio.run(probe(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
        print(json.dumps({"probe": [ms for _, ms in lat], "timed": lat}))


if __name__ == "__main__":
    main()
