#!/usr/bin/env python3
"""A fake Slack incoming webhook and PagerDuty Events v2 endpoint for the notify tests.

Listens on 127.0.0.1 on a free port and prints the port as its first stdout line. Every
request (except to /_requests and /_reset) is recorded as {method, path, headers, body}.
  GET  /_requests          the recorded requests, as a JSON list, oldest first
  POST /_reset             forgets the requests and the counters
  POST /v2/enqueue...      PagerDuty: 202 {"status":"success","message":"Event processed",
                           "dedup_key": the event's dedup_key or "srv-key-N"}
  POST anything else       Slack: 200 "ok"
Faults, from the query string of the same URL:
  fail=CODE[&times=N][&key=K]   answer CODE to the first N requests of key K (N default:
                                all), then the normal answer; 429 carries Retry-After: 1
  echo=1                        a fault's body quotes the request's path and body (a server
                                that leaks what it was sent, to test the scrubbing)
Slack-style faults answer a word (invalid_payload, no_service, ...); PagerDuty-style faults
answer {"status": ..., "message": ..., "errors": [...]} as the real API does.
Options: --watch-stdin exits when stdin reaches end of file (the parent died or closed it).
It always exits by itself after 120 s, a safety net for a test that forgot it.
"""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LIFETIME_S = 120
lock = threading.Lock()
requests = []
counts = {}
generated = [0]

SLACK_WORDS = {400: "invalid_payload", 403: "invalid_token", 404: "no_service",
               410: "channel_is_archived", 429: "rate_limited", 500: "rollup_error",
               503: "service_unavailable"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the tests read stdout for the port only
        pass

    def reply(self, code, body, ctype="text/plain", extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_requests":
            with lock:
                doc = json.dumps(requests)
            self.reply(200, doc, "application/json")
        else:
            self.reply(404, "no such page")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n > 0 else ""
        if self.path == "/_reset":
            with lock:
                requests.clear()
                counts.clear()
                generated[0] = 0
            self.reply(200, "{\"reset\": true}", "application/json")
            return
        with lock:
            requests.append({"method": "POST", "path": self.path,
                             "headers": {k.lower(): v for k, v in self.headers.items()},
                             "body": body})
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        pd = url.path.startswith("/v2/enqueue")
        if "fail" in q:
            code, key = int(q["fail"]), q.get("key", "")
            times = int(q["times"]) if "times" in q else None
            with lock:
                seen = counts.get(key, 0)
                counts[key] = seen + 1
            if times is None or seen < times:
                self.fault(code, pd, q.get("echo") == "1", body)
                return
        if pd:
            try:
                event = json.loads(body)
            except ValueError:
                event = {}
            key = event.get("dedup_key") if isinstance(event, dict) else None
            if not key:
                with lock:
                    generated[0] += 1
                    key = "srv-key-%d" % generated[0]
            self.reply(202, json.dumps({"status": "success", "message": "Event processed",
                                        "dedup_key": key}), "application/json")
        else:
            self.reply(200, "ok")

    def fault(self, code, pd, echo, body):
        extra = {"Retry-After": "1"} if code == 429 else None
        if pd:
            doc = {"status": "invalid event" if code == 400 else "error",
                   "message": "Event object is invalid" if code == 400 else "failure %d" % code,
                   "errors": ["routing_key rejected"]}
            if echo:
                doc["errors"] = ["you sent %s to %s" % (body, self.path)]
            self.reply(code, json.dumps(doc), "application/json", extra)
        else:
            word = SLACK_WORDS.get(code, "error_%d" % code)
            if echo:
                word += " for " + self.path + " body " + body
            self.reply(code, word, "text/plain", extra)

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    threading.Timer(LIFETIME_S, lambda: os._exit(0)).start()
    if "--watch-stdin" in sys.argv[1:]:
        def watch():
            while sys.stdin.buffer.read(4096):
                pass
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
