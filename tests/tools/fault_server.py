#!/usr/bin/env python3
"""A local HTTP server that misbehaves on request, for the HTTP client's tests.

Listens on 127.0.0.1 on a free port and prints the port as its first stdout line. The
behaviour is chosen by the path:
  /ok                     200 "ok"
  /status/CODE            CODE with a short body (e.g. a plain 400 that must not be retried)
  /throttle/N/KEY         400 with an AWS Throttling body N times for KEY, then 200
                          (XML like RDS/Route 53; ?fmt=json for the JSON 1.1 form)
  /503/N/KEY              503 N times for KEY, then 200
  /retry-after/N/KEY      429 with Retry-After: 1 N times for KEY, then 200
  /count/KEY              200 with the number of requests KEY has seen (not counting this)
  /reset                  closes the connection abruptly (RST, SO_LINGER 0)
  /slow/SECONDS           waits, then 200
  /garbage                answers bytes that are not HTTP
  /big/BYTES              200 with a body of BYTES bytes
  /echo                   200 with JSON {method, path, headers, body}
Options: --watch-stdin exits when stdin reaches end of file (the parent died or closed it).
It always exits by itself after 120 s, a safety net for a test that forgot it.
"""
import json
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIFETIME_S = 120
counts = {}
counts_lock = threading.Lock()


def hit(key):
    """Counts a request for KEY and returns how many came before it."""
    with counts_lock:
        n = counts.get(key, 0)
        counts[key] = n + 1
        return n


THROTTLE_XML = (b'<?xml version="1.0"?>\n<ErrorResponse><Error><Type>Sender</Type>'
                b'<Code>Throttling</Code><Message>Rate exceeded</Message></Error>'
                b'<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>')
THROTTLE_JSON = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the tests read stdout for the port only
        pass

    def reply(self, code, body=b"", ctype="text/plain", extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def handle_any(self):
        body = self.read_body()
        path, _, query = self.path.partition("?")
        parts = [p for p in path.split("/") if p]
        mode = parts[0] if parts else ""
        if mode == "ok":
            self.reply(200, b"ok")
        elif mode == "status" and len(parts) == 2:
            code = int(parts[1])
            self.reply(code, ("status %d" % code).encode())
        elif mode in ("throttle", "503", "retry-after") and len(parts) == 3:
            n, key = int(parts[1]), parts[2]
            if hit(key) >= n:
                self.reply(200, b"ok after faults")
            elif mode == "throttle":
                if "fmt=json" in query:
                    self.reply(400, THROTTLE_JSON, "application/x-amz-json-1.1")
                else:
                    self.reply(400, THROTTLE_XML, "text/xml")
            elif mode == "503":
                self.reply(503, b"service unavailable")
            else:
                self.reply(429, b"slow down", extra={"Retry-After": "1"})
        elif mode == "count" and len(parts) == 2:
            with counts_lock:
                n = counts.get(parts[1], 0)
            self.reply(200, str(n).encode())
        elif mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif mode == "slow" and len(parts) == 2:
            time.sleep(float(parts[1]))
            self.reply(200, b"slow ok")
        elif mode == "garbage":
            self.wfile.write(b"THIS IS NOT HTTP AT ALL\r\n\x00\xff\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
        elif mode == "big" and len(parts) == 2:
            size = int(parts[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b"a" * 65536
            left = size
            while left > 0:
                self.wfile.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))
        elif mode == "echo":
            doc = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            self.reply(200, json.dumps(doc).encode(), "application/json",
                       {"X-Echo": "yes", "Set-Cookie": "session=secret"})
        else:
            self.reply(404, b"no such mode")

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, OSError):
            # The client gave up (cap reached, timeout): expected in these tests.
            self.close_connection = True

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass


for _m in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
    setattr(Handler, "do_" + _m, Handler.handle_any)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client hanging up is part of the tests, not an error


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
