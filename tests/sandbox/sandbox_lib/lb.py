# The load balancer in front of the prod-us ECS services, as a client sees it: a loopback HTTP
# server. GET /SERVICE/ANYTHING is answered 200 by one of the service's RUNNING tasks (round
# robin; the body names the task), 503 when the service has none, 404 for an unknown service.
# Every answer is counted per service, so a test (or `sandbox status`) can tell whether a
# service kept serving through a failure and its repair: GET /_lb/stats.
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .common import now_utc, rfc3339


class LoadBalancer:
    def __init__(self, glue, region, cluster, port, log):
        self.glue, self.region, self.cluster = glue, region, cluster
        self.port = int(port)
        self.log = log
        self._lock = threading.Lock()
        self._stats = {}        # service -> {served, failed, first_failure, last_failure}
        self._rr = {}
        self._srv = None
        self._thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        lb = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                code, body = lb.answer(self.path)
                data = json.dumps(body, sort_keys=True).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self._srv = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._srv.daemon_threads = True
        self._thread = threading.Thread(target=self._srv.serve_forever, name="lb",
                                        daemon=True)
        self._thread.start()
        self.log("load balancer for %s listening on %s" % (self.cluster, self.url))

    def stop(self):
        if self._srv:
            self._srv.shutdown()
            self._srv.server_close()

    def stats(self):
        with self._lock:
            return json.loads(json.dumps(self._stats))

    def answer(self, path):
        parts = [p for p in path.split("?")[0].split("/") if p]
        if parts[:2] == ["_lb", "stats"]:
            return 200, self.stats()
        if not parts:
            return 404, {"error": "GET /SERVICE/..."}
        name = parts[0]
        with self.glue.lock:
            backend = self.glue._ecs_backend(self.region)
            svc = self.glue._find_service(backend, self.cluster, name)
            tasks = sorted(t.task_arn for t in self.glue._service_tasks(backend, svc)) \
                if svc is not None and self.region not in self.glue.down_regions else []
        if svc is None:
            return 404, {"error": "no service %s behind this load balancer" % name}
        now = rfc3339(now_utc())
        with self._lock:
            st = self._stats.setdefault(name, {"served": 0, "failed": 0, "first_failure": None,
                                               "last_failure": None})
            if not tasks:
                st["failed"] += 1
                st["first_failure"] = st["first_failure"] or now
                st["last_failure"] = now
                return 503, {"service": name, "error": "no healthy target"}
            st["served"] += 1
            i = self._rr.get(name, 0)
            self._rr[name] = i + 1
        return 200, {"service": name, "task": tasks[i % len(tasks)], "at": now,
                     "t": time.time()}
