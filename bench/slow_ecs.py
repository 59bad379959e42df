#!/usr/bin/env python3
"""A slow stand-in for the ECS control plane, for bench/aws_parallel.sh.

Owns: just enough of ECS JSON 1.1 (X-Amz-Target AmazonEC2ContainerServiceV20141113.*) for
drbook's aws.ecs.update_service, answered after a fixed delay by one thread per connection, so
that the benchmark measures how many calls drbook keeps in flight, not how fast a server is.

It does NOT check SigV4 signatures: it only requires that an Authorization header of the SigV4
form is present (signing is proven against moto and botocore in the test suite, not here).

Usage: slow_ecs.py [--delay-ms 200] [--timeout 600] [--port 0]
The first line on stdout is the port it listens on (127.0.0.1 only). It counts requests and the
highest number in flight at once; GET /__stats returns them as JSON (?reset=1 also zeroes them).
It stops by itself after --timeout seconds, on SIGTERM or SIGINT, and prints a summary line to
stderr on the way out.
"""

import argparse
import json
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
MAX_BODY = 1 << 20


class Stats:
    """Counters shared by the handler threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.requests = 0  # ECS requests answered (any operation, any outcome)
        self.ok = 0  # UpdateService answered with 200
        self.rejected = 0  # malformed or unsupported requests (4xx)
        self.in_flight = 0
        self.max_in_flight = 0
        self.first_start = None
        self.last_end = None

    def enter(self):
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.first_start is None:
                self.first_start = time.monotonic()

    def leave(self, ok):
        with self.lock:
            self.in_flight -= 1
            self.requests += 1
            if ok:
                self.ok += 1
            else:
                self.rejected += 1
            self.last_end = time.monotonic()

    def snapshot(self, reset=False):
        with self.lock:
            span = None
            if self.first_start is not None and self.last_end is not None:
                span = round((self.last_end - self.first_start) * 1000)
            out = {
                "requests": self.requests,
                "ok": self.ok,
                "rejected": self.rejected,
                "in_flight": self.in_flight,
                "max_concurrency": self.max_in_flight,
                "span_ms": span,  # first request in to last answer out
            }
            if reset:
                self.reset()
            return out


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 with Content-Length on every answer: curl may keep the connection open.
    protocol_version = "HTTP/1.1"
    server_version = "slow-ecs/1"

    def log_message(self, fmt, *args):  # quiet: the benchmark prints its own summary
        pass

    def send_json(self, status, obj, amz=True):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1" if amz else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(body)

    def send_ecs_error(self, status, typ, msg):
        # The ECS error shape: __type plus message; x-amzn-ErrorType as real ECS sends it.
        body = json.dumps({"__type": typ, "message": msg}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("x-amzn-ErrorType", typ)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urlsplit(self.path)
        if u.path != "/__stats":
            self.send_json(404, {"message": "only POST / (ECS) and GET /__stats"}, amz=False)
            return
        reset = parse_qs(u.query).get("reset", ["0"])[0] == "1"
        self.send_json(200, self.server.stats.snapshot(reset), amz=False)

    def do_POST(self):
        stats = self.server.stats
        stats.enter()
        ok = False
        try:
            ok = self.answer()
        finally:
            stats.leave(ok)

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            self.send_ecs_error(400, "ClientException", "bad Content-Length")
            return False
        raw = self.rfile.read(n)
        # The delay comes before any answer, errors included: every call costs the same.
        time.sleep(self.server.delay_s)
        target = self.headers.get("X-Amz-Target", "")
        ctype = self.headers.get("Content-Type", "")
        auth = self.headers.get("Authorization", "")
        if self.path != "/":
            self.send_ecs_error(400, "ClientException", "ECS JSON 1.1 is POST /")
            return False
        if not ctype.startswith("application/x-amz-json-1.1"):
            self.send_ecs_error(400, "SerializationException", "Content-Type must be application/x-amz-json-1.1")
            return False
        if not auth.startswith("AWS4-HMAC-SHA256 Credential="):
            self.send_ecs_error(403, "MissingAuthenticationTokenException", "no SigV4 Authorization header")
            return False
        if not target.startswith(TARGET_PREFIX):
            self.send_ecs_error(400, "UnknownOperationException", "unknown X-Amz-Target " + target)
            return False
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            self.send_ecs_error(400, "SerializationException", "body is not JSON")
            return False
        op = target[len(TARGET_PREFIX):]
        if op != "UpdateService":
            self.send_ecs_error(400, "UnknownOperationException", "slow_ecs only implements UpdateService, not " + op)
            return False
        cluster, service = req.get("cluster"), req.get("service")
        desired = req.get("desiredCount")
        if not isinstance(cluster, str) or not isinstance(service, str):
            self.send_ecs_error(400, "InvalidParameterException", "cluster and service are required")
            return False
        if desired is not None and (not isinstance(desired, int) or desired < 0):
            self.send_ecs_error(400, "InvalidParameterException", "desiredCount must be an integer >= 0")
            return False
        if desired is None:
            desired = 1
        region = self.server.region
        arn = "arn:aws:ecs:%s:123456789012:service/%s/%s" % (region, cluster, service)
        # The fields drbook reads (desiredCount, runningCount) and enough around them to look
        # like the real answer.
        svc = {
            "serviceArn": arn,
            "serviceName": service,
            "clusterArn": "arn:aws:ecs:%s:123456789012:cluster/%s" % (region, cluster),
            "status": "ACTIVE",
            "desiredCount": desired,
            "runningCount": 0,
            "pendingCount": 0,
            "launchType": "FARGATE",
            "deployments": [
                {
                    "id": "ecs-svc/" + uuid.uuid4().hex[:19],
                    "status": "PRIMARY",
                    "desiredCount": desired,
                    "runningCount": 0,
                    "pendingCount": 0,
                    "rolloutState": "IN_PROGRESS",
                }
            ],
        }
        self.send_json(200, {"service": svc})
        return True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 would drop SYNs when 50 clients connect at once and turn the
    # benchmark into a measurement of TCP retransmission timers.
    request_queue_size = 256


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay-ms", type=float, default=200.0, help="delay before each answer")
    ap.add_argument("--timeout", type=float, default=600.0, help="stop after this many seconds")
    ap.add_argument("--port", type=int, default=0, help="0 (default): a free port")
    ap.add_argument("--region", default="eu-west-1", help="region used in ARNs")
    a = ap.parse_args()
    if a.delay_ms < 0 or a.timeout <= 0:
        ap.error("--delay-ms must be >= 0 and --timeout > 0")

    srv = Server(("127.0.0.1", a.port), Handler)
    srv.stats = Stats()
    srv.delay_s = a.delay_ms / 1000.0
    srv.region = a.region
    done = threading.Event()

    def stop(*_):
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    print(srv.server_address[1], flush=True)
    if not done.wait(a.timeout):
        print("slow_ecs: timeout of %gs reached, stopping" % a.timeout, file=sys.stderr)
    srv.shutdown()
    srv.server_close()
    print("slow_ecs: " + json.dumps(srv.stats.snapshot()), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
