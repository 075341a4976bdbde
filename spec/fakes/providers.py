#!/usr/bin/env python3
"""Fake AI providers for the /v1/ai specs: Gemini, OpenAI and Anthropic on one
local port, each speaking its real streaming wire format, never the internet.

usage: providers.py PORTFILE
Listens on 127.0.0.1 on a free port, writes the port to PORTFILE.

  POST /v1beta/models/<model>:streamGenerateContent?alt=sse   Gemini SSE, usageMetadata
  POST /v1/chat/completions                                  OpenAI chunks, usage chunk, [DONE]
  POST /v1/messages                                          Anthropic message_start .. message_stop

The answer is "Hello from <provider>!" in four deltas, with the usage
  google 1200 in / 345 out, openai 1234 / 567, anthropic 1500 / 250.
A directive in the request body changes it:
  #mode=429 | #mode=500   that HTTP error, in the provider's error JSON
  #mode=slow              deltas 150 ms apart
  #mode=hang              the head, then nothing until the client closes
  #mode=hold              one delta, then nothing until the client closes
  #mode=truncate          two deltas, then the connection closes (no end)
  #chunks=N               N deltas of "x" instead
  #tool=NAME:JSON         first a call of tool NAME with arguments JSON
                          (the next request, carrying the tool's result, gets text)
POST /_fail {"google": 500}   every call to that provider fails so ({} resets)
GET  /_requests               every request: provider, path, headers, body
GET  /_stats                  {"requests", "held_open", "held_closed"}: held_closed counts
                              the connections strata closed before the answer's end
"""
import json
import os
import re
import select
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
stats = {"requests": 0, "held_open": 0, "held_closed": 0}
requests = []
fail = {}
USAGE = {"google": (1200, 345), "openai": (1234, 567), "anthropic": (1500, 250)}


def bump(key, n=1):
    with lock:
        stats[key] += n


def sse(event, data):
    head = ("event: %s\n" % event) if event else ""
    return (head + "data: " + json.dumps(data) + "\n\n").encode()


def error_body(provider, status):
    msg = "rate limited" if status == 429 else "internal error"
    if provider == "anthropic":
        return {"type": "error", "error": {"type": "rate_limit_error" if status == 429 else "api_error", "message": msg}}
    if provider == "google":
        return {"error": {"code": status, "message": msg, "status": "RESOURCE_EXHAUSTED" if status == 429 else "INTERNAL"}}
    return {"error": {"message": msg, "type": "server_error", "code": None}}


def google_events(deltas, usage, tool):
    out = []
    if tool:
        out.append(sse(None, {"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": tool[0], "args": tool[1]}}]}, "finishReason": "STOP", "index": 0}],
                              "usageMetadata": {"promptTokenCount": usage[0], "candidatesTokenCount": usage[1], "totalTokenCount": sum(usage)}}))
        return out, []
    for i, d in enumerate(deltas):
        chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": d}]}, "index": 0}],
                 "usageMetadata": {"promptTokenCount": usage[0], "candidatesTokenCount": (usage[1] * (i + 1)) // len(deltas), "totalTokenCount": 0},
                 "modelVersion": "fake"}
        if i == len(deltas) - 1:
            chunk["candidates"][0]["finishReason"] = "STOP"
        out.append(sse(None, chunk))
    return out[:-1], out[-1:]


def openai_events(deltas, usage, tool):
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake"}
    out = [sse(None, dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]))]
    if tool:
        args = json.dumps(tool[1])
        out.append(sse(None, dict(base, choices=[{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": tool[0], "arguments": args[:5]}}]}, "finish_reason": None}])))
        out.append(sse(None, dict(base, choices=[{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": args[5:]}}]}, "finish_reason": None}])))
        finish = "tool_calls"
    else:
        for d in deltas:
            out.append(sse(None, dict(base, choices=[{"index": 0, "delta": {"content": d}, "finish_reason": None}])))
        finish = "stop"
    end = [sse(None, dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": finish}])),
           sse(None, dict(base, choices=[], usage={"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)})),
           b"data: [DONE]\n\n"]
    return out, end


def anthropic_events(deltas, usage, tool):
    out = [sse("message_start", {"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant", "content": [], "model": "fake", "stop_reason": None, "usage": {"input_tokens": usage[0], "output_tokens": 1}}}),
           b"event: ping\ndata: {\"type\": \"ping\"}\n\n"]
    if tool:
        args = json.dumps(tool[1])
        out += [sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": tool[0], "input": {}}}),
                sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": args[:5]}}),
                sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": args[5:]}}),
                sse("content_block_stop", {"type": "content_block_stop", "index": 0})]
        stop = "tool_use"
    else:
        out.append(sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
        for d in deltas:
            out.append(sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}))
        out.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        stop = "end_turn"
    end = [sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": usage[1]}}),
           sse("message_stop", {"type": "message_stop"})]
    return out, end


EVENTS = {"google": google_events, "openai": openai_events, "anthropic": anthropic_events}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body):
        body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def hold(self):
        """Holds the connection until the client closes it."""
        bump("held_open")
        try:
            while True:
                r, _, _ = select.select([self.connection], [], [], 0.05)
                if r:
                    try:
                        if not self.connection.recv(1024):
                            break
                    except OSError:
                        break
        finally:
            bump("held_open", -1)
            bump("held_closed")
        self.close_connection = True

    def do_GET(self):
        if self.path == "/_requests":
            with lock:
                self.send(200, requests)
        elif self.path == "/_stats":
            with lock:
                self.send(200, stats)
        else:
            self.send(404, {"error": "no such fake"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode() if n else ""
        path = self.path
        if path == "/_fail":
            with lock:
                fail.clear()
                fail.update(json.loads(raw or "{}"))
            return self.send(200, fail)
        if ":streamGenerateContent" in path:
            provider = "google"
        elif path.startswith("/v1/chat/completions"):
            provider = "openai"
        elif path.startswith("/v1/messages"):
            provider = "anthropic"
        else:
            return self.send(404, {"error": "no such fake"})
        bump("requests")
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        with lock:
            requests.append({"provider": provider, "path": path, "body": body,
                             "headers": {k.lower(): v for k, v in self.headers.items()}})
            forced = fail.get(provider)
        # The last directive counts: earlier ones are the run's history.
        m = re.findall(r"#mode=(\w+)", raw)
        mode = str(forced) if forced else (m[-1] if m else "")
        if mode in ("429", "500"):
            return self.send(int(mode), error_body(provider, int(mode)))
        deltas = ["Hello", " from", " " + provider, "!"]
        m = re.findall(r"#chunks=(\d+)", raw)
        if m:
            deltas = ["x"] * int(m[-1])
        tool = None
        m = re.findall(r"#tool=(\w+):(\{[^}]*\})", raw.replace('\\"', '"'))
        # A request that already carries a tool result gets the text answer.
        if m and "tool_result" not in raw and '"tool"' not in raw and "functionResponse" not in raw:
            tool = (m[-1][0], json.loads(m[-1][1]))
        head, end = EVENTS[provider](deltas, USAGE[provider], tool)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if mode == "hang":
            self.wfile.flush()
            return self.hold()
        try:
            for i, ev in enumerate(head):
                self.chunk(ev)
                if mode == "slow":
                    time.sleep(0.15)
                if mode == "truncate" and i >= 2:
                    self.close_connection = True
                    return
        except OSError:
            # The client (strata) closed while the deltas were being sent:
            # the close the specs wait for.
            bump("held_closed")
            self.close_connection = True
            return
        if mode == "hold":
            return self.hold()
        for ev in end:
            self.chunk(ev)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
