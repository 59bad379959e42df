# The load balancer in front of the prod-us ECS services, as a client sees it: a loopback HTTP
# server. GET /SERVICE/ANYTHING is answered 200 by one of the service's RUNNING tasks (round
# robin; the body names the task), 503 when the service has none, 404 for an unknown service.
# Every answer is counted per service, so a test (or `sandbox status`) can tell whether a
# service kept serving through a failure and its repair: GET /_lb/stats.
# GET /_staging/INSTANCE/ANYTHING is the staging deployment of the application, using the RDS
# instance INSTANCE of us-east-1 (a restored one): it answers 200 with the row counts it reads
# there after a write it rolls back, or fails as the application would: 504 when none of the
# instance's security groups admits the staging application's group (a restore in the default
# security group), 503 while the instance is not available, 500 when the database refuses
# (counted under "_staging/INSTANCE").
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

    def _count(self, name, code, body):
        now = rfc3339(now_utc())
        with self._lock:
            st = self._stats.setdefault(name, {"served": 0, "failed": 0, "first_failure": None,
                                               "last_failure": None})
            if 200 <= code < 300:
                st["served"] += 1
            else:
                st["failed"] += 1
                st["first_failure"] = st["first_failure"] or now
                st["last_failure"] = now
        return code, body

    def _admits(self, db, app_group):
        """Whether one of the instance's VPC security groups lets app_group in over TCP (on
        any port: the sandbox's servers listen on free ports, not the rule's 5432)."""
        from moto.ec2.models import ec2_backends
        ec2 = ec2_backends[self.glue.account][self.region]
        for sg_id in db.vpc_security_group_ids or []:
            sg = ec2.get_security_group_from_id(sg_id)
            for rule in (sg.ingress_rules if sg is not None else []):
                if rule.ip_protocol in ("tcp", "-1") and \
                        (rule.source_group or {}).get("GroupId") == app_group:
                    return True
        return False

    def staging(self, ident):
        """The staging application's answer, from the database of instance ident."""
        glue = self.glue
        db = glue._rds_backend(self.region).databases.get(ident)
        if db is None:
            return 503, {"instance": ident, "error": "no database instance %s" % ident}
        if db.status != "available":
            return 503, {"instance": ident, "error": "%s is %s" % (ident, db.status)}
        app = glue.staging_app_security_group
        if not app or not self._admits(db, app):
            return 504, {"instance": ident, "error": "connecting to %s timed out: none of its "
                         "security groups (%s) admits the staging application's (%s)" %
                         (ident, ", ".join(db.vpc_security_group_ids or []), app)}
        node = glue.nodes.get(glue.restores.get(ident, ""))
        if node is None:
            return 503, {"instance": ident, "error": "%s has no database server" % ident}
        try:
            # what the application does: write (rolled back: a smoke test leaves no trace),
            # then read
            node.sql("begin; insert into accounts (email) values ('smoke@staging.invalid'); "
                     "rollback")
            accounts, orders = node.value(
                "select (select count(*) from accounts)::text || '|' || "
                "(select count(*) from orders)::text").split("|")
        except Exception as e:      # the application's error page
            return 500, {"instance": ident, "error": str(e)[-300:]}
        return 200, {"instance": ident, "status": "ok", "accounts": int(accounts),
                     "orders": int(orders), "writable": True}

    def answer(self, path):
        parts = [p for p in path.split("?")[0].split("/") if p]
        if parts[:2] == ["_lb", "stats"]:
            return 200, self.stats()
        if not parts:
            return 404, {"error": "GET /SERVICE/..."}
        if parts[0] == "_staging" and len(parts) > 1:
            return self._count("_staging/" + parts[1], *self.staging(parts[1]))
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
