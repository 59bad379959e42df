# The sandbox launcher: the one long-lived process `sandbox up` starts. It runs moto in-process
# (so the glue can wrap it), the writer-endpoint proxy and the PostgreSQL servers, seeds both,
# turns signature checking on, writes env.sh/env.json and serves the control socket.
import json
import os
import secrets
import shlex
import signal
import socketserver
import sys
import threading
import time
import traceback

from .common import (SandboxError, Paths, dsn, free_port, now_utc, rfc3339,
                     write_json_atomic)
from .pgnodes import (Node, ensure_pg_dirs, stop_all_recorded, take_base_backup,
                      wait_streaming)

A, B, EU_NODE, AP_NODE = "prod-db-a", "prod-db-b", "prod-db-eu", "prod-db-ap"


def _log(msg):
    sys.stdout.write("%s launcher: %s\n" % (rfc3339(now_utc()), msg))
    sys.stdout.flush()


def _moto_server_class():
    from moto.server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    class SandboxMotoServer(ThreadedMotoServer):
        """moto's /moto-api can reset every backend or switch authentication off again:
        refuse it, so no client can undo what the sandbox set up."""

        def _server_entry(self):
            app = DomainDispatcherApplication(create_backend_app)

            def guarded(environ, start_response):
                if environ.get("PATH_INFO", "").startswith("/moto-api"):
                    start_response("403 Forbidden", [("Content-Type", "text/plain")])
                    return [b"moto-api is disabled in the drbook sandbox\n"]
                return app(environ, start_response)

            self._server = make_server(self._ip_address, self._port, guarded, True)
            self._server_ready_event.set()
            self._server.serve_forever()

    return SandboxMotoServer


def _cross_region_replica(node, writer_endpoint_port):
    """A cross-region read replica's server: streams through the writer endpoint (so it
    follows a Multi-AZ failover), with the WAL archive as the fallback: after a failover the
    new writer may not hold the segments this replica still needs (a rebuilt standby starts
    its pg_wal later), as a real cross-region replica reads them from the archive."""
    from .common import chown_pg
    node.write_config(archive=False,
                      primary_conninfo=node.replication_conninfo(writer_endpoint_port),
                      recovery={"archive_fallback": True})
    (node.datadir / "standby.signal").touch()
    chown_pg(node.datadir / "standby.signal")
    node.start()


def setup_pg(paths, password, ports, out):
    """Primary (AZ a), synchronous standby (AZ b), async replicas (eu-west-1 and
    ap-southeast-1, streaming through the writer endpoint so they follow a failover), WAL
    archive and base backup. The three copies of the primary are made at the same time."""
    try:
        ensure_pg_dirs(paths)
        a = Node(paths, A, ports[A], password)
        a.initdb()
        a.write_config(sync_standbys="", archive=True)
        a.start()
        a.sql("create database app", dbname="postgres")
        from .seed import APP_ROLE, APP_SCHEMA
        a.sql(APP_SCHEMA)
        a.sql("alter role %s password '%s'" % (APP_ROLE, password))   # hex: nothing to quote
        b = Node(paths, B, ports[B], password)
        eu = Node(paths, EU_NODE, ports[EU_NODE], password)
        ap = Node(paths, AP_NODE, ports[AP_NODE], password)

        def make_b():
            b.make_standby(a.port, archive=True)
            b.start()

        def make_replica(node):
            node.clone_from(a.port)
            _cross_region_replica(node, ports["writer_endpoint"])

        errors = []

        def guarded(fn, *args):
            try:
                fn(*args)
            except BaseException as e:
                errors.append((e, traceback.format_exc()))
        threads = [threading.Thread(target=guarded, args=a_, daemon=True)
                   for a_ in ((make_b,), (make_replica, eu), (make_replica, ap))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        if errors:
            out["trace"] = errors[0][1]
            raise errors[0][0]
        if any(t.is_alive() for t in threads):
            raise SandboxError("standby set-up did not finish in 150 s")
        a.sql("alter system set synchronous_standby_names = '%s'" % B.replace("-", "_"),
              dbname="postgres")
        a.reload()
        wait_streaming(a, [B, EU_NODE, AP_NODE], timeout=30, sync_name=B)
        take_base_backup(paths, a, password)
        out["base_backup_time"] = now_utc()
        out["nodes"] = {A: a, B: b, EU_NODE: eu, AP_NODE: ap}
    except BaseException as e:  # reported by the main thread
        out["error"] = e
        out.setdefault("trace", traceback.format_exc())


def _env_vars(paths, ports, password, cloud, snapshot):
    hc = cloud["health_checks"]
    return {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:%d" % ports["aws_endpoint"],
        "AWS_ACCESS_KEY_ID": cloud["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": cloud["secret_access_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PRIMARY_DB_DSN": dsn(ports["writer_endpoint"], password),
        "PRIMARY_DB_APP_DSN": dsn(ports["writer_endpoint"], password, user="app"),
        "DR_DB_DSN": dsn(ports[EU_NODE], password),
        "STANDBY_DB_DSN": dsn(ports[B], password),
        "DRB_SANDBOX_DIR": str(paths.root),
        "DRB_SANDBOX_ACCOUNT_ID": "123456789012",
        "DRB_SANDBOX_PG_USER": "postgres",
        "DRB_SANDBOX_PG_PASSWORD": password,
        "DRB_SANDBOX_PG_DBNAME": "app",
        "DRB_SANDBOX_ZONE_ID": cloud["zone_id"],
        "DRB_SANDBOX_ZONE_NAME": cloud["zone_name"],
        "DRB_SANDBOX_API_RECORD": cloud["api_record"],
        "DRB_SANDBOX_API_TARGET_US": cloud["api_targets"]["us-east-1"],
        "DRB_SANDBOX_API_TARGET_EU": cloud["api_targets"]["eu-west-1"],
        "DRB_SANDBOX_HEALTH_CHECK_US": hc["us-east-1"],
        "DRB_SANDBOX_HEALTH_CHECK_EU": hc["eu-west-1"],
        "DRB_SANDBOX_TOPIC_ARN": cloud["topic_arn"],
        "DRB_SANDBOX_TOPIC_ARN_EU": cloud["topic_arn_eu"],
        "DRB_SANDBOX_CLUSTER_US": cloud["clusters"]["us-east-1"],
        "DRB_SANDBOX_CLUSTER_EU": cloud["clusters"]["eu-west-1"],
        "DRB_SANDBOX_SERVICES": " ".join(cloud["services"]),
        "DRB_SANDBOX_DB_PRIMARY": "prod-db",
        "DRB_SANDBOX_DB_REPLICA": "prod-db-eu",
        "DRB_SANDBOX_DR_REGION": "eu-west-1",
        "DRB_SANDBOX_SNAPSHOT": snapshot,
        "DRB_SANDBOX_DB_SECURITY_GROUP": cloud["security_groups"]["db"],
        "DRB_SANDBOX_APP_SECURITY_GROUP": cloud["security_groups"]["app"],
    }


def _arc_dns_env(arc, arc_fronts, dns, cloud):
    """What a client of the ARC cluster and of the sandbox's DNS needs (docs/sandbox.md)."""
    return {
        "DRB_SANDBOX_ARC_CLUSTER_ARN": arc.cluster_arn,
        "DRB_SANDBOX_ARC_CONTROL_PANEL_ARN": arc.panel_arn,
        "DRB_SANDBOX_ARC_ROUTING_CONTROL_US": cloud["arc_controls"]["us-east-1"],
        "DRB_SANDBOX_ARC_ROUTING_CONTROL_EU": cloud["arc_controls"]["eu-west-1"],
        "DRB_SANDBOX_ARC_HEALTH_CHECK_US": cloud["arc_health_checks"]["us-east-1"],
        "DRB_SANDBOX_ARC_HEALTH_CHECK_EU": cloud["arc_health_checks"]["eu-west-1"],
        "DRB_SANDBOX_ARC_ENDPOINTS": " ".join(f.url for f in arc_fronts),
        "DRB_SANDBOX_ARC_ENDPOINT_REGIONS": " ".join(f.region for f in arc_fronts),
        "DRB_SANDBOX_FAILOVER_RECORD": cloud["failover_record"],
        "DRB_SANDBOX_DNS_TTL": str(cloud["dns_ttl"]),
        "DRB_SANDBOX_DNS_RESOLVER": "127.0.0.1:%d" % dns.resolver_port,
        "DRB_SANDBOX_DNS_AUTHORITATIVE": "127.0.0.1:%d" % dns.auth_port,
    }


def _ap_env(ports, password, cloud):
    """ap-southeast-1, the cold standby (docs/sandbox.md)."""
    ap = cloud["ap"]
    return {
        "AP_DB_DSN": dsn(ports[AP_NODE], password),
        "DRB_SANDBOX_DB_REPLICA_AP": ap["replica"],
        "DRB_SANDBOX_CLUSTER_AP": ap["cluster"],
        "DRB_SANDBOX_API_TARGET_AP": ap["api_target"],
        "DRB_SANDBOX_HEALTH_CHECK_AP": ap["health_check"],
        "DRB_SANDBOX_TOPIC_ARN_AP": ap["topic_arn"],
    }


def _iam_secret_of(account):
    """The secret of an active access key of one of moto's IAM users (who may call ARC)."""
    def secret_of(akid):
        from moto.iam.models import iam_backends
        for user in list(iam_backends[account]["aws"].users.values()):
            for k in list(user.access_keys):
                if k.access_key_id == akid and k.status == "Active":
                    return k.secret_access_key
        return None
    return secret_of


def _write_env(paths, env):
    text = "# drbook sandbox: source this file (written by the launcher)\n" + "".join(
        "export %s=%s\n" % (k, shlex.quote(v)) for k, v in sorted(env.items()))
    tmp = str(paths.env_sh) + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)    # holds the AWS secret and the database password
    os.replace(tmp, paths.env_sh)
    write_json_atomic(paths.env_json, env, mode=0o600)


def _enable_auth_and_check(endpoint, cloud):
    """Close moto's no-auth window at exactly the number of setup requests it counted, then
    prove that a signed request passes and a wrongly signed one does not."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    settings.INITIAL_NO_AUTH_ACTION_COUNT = ActionAuthenticatorMixin.request_count
    cfg = Config(retries={"max_attempts": 1})
    good = boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint, config=cfg,
                        aws_access_key_id=cloud["access_key_id"],
                        aws_secret_access_key=cloud["secret_access_key"])
    arn = good.get_caller_identity()["Arn"]
    bad = boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint, config=cfg,
                       aws_access_key_id=cloud["access_key_id"],
                       aws_secret_access_key=cloud["secret_access_key"][::-1] + "x")
    try:
        bad.get_caller_identity()
    except ClientError as e:
        code = e.response["Error"]["Code"]
        if code not in ("SignatureDoesNotMatch", "InvalidClientTokenId"):
            raise SandboxError("unexpected refusal of a bad signature: %s" % code)
    else:
        raise SandboxError("moto accepted a request signed with a wrong secret: "
                           "signature checking is off")
    return arn


class _ControlHandler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline(65536)
        try:
            req = json.loads(line)
            res = self.server.dispatch(req)
            reply = {"ok": True, "result": res}
        except Exception as e:  # every failure goes back to the CLI, which exits non-zero
            reply = {"ok": False, "error": str(e)}
            _log("control %s failed: %s" % (line[:200], traceback.format_exc()))
        self.wfile.write((json.dumps(reply, default=str) + "\n").encode())


class _ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    paths = Paths()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    t0 = time.monotonic()
    glue = proxy = server = control = dns = lb = None
    fronts, arc_fronts = [], []
    serving = False     # control.shutdown() would wait forever for a loop never started
    rc = 0
    try:
        import logging
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        password = secrets.token_hex(16)
        ports = {k: free_port() for k in ("moto", "aws_endpoint", "writer_endpoint", A, B,
                                          EU_NODE, AP_NODE)}
        write_json_atomic(paths.ports, ports)
        _log("ports %s" % json.dumps(ports, sort_keys=True))

        from .proxy import WriterProxy
        proxy = WriterProxy(ports["writer_endpoint"], ports[A], _log)
        proxy.start()
        pg = {}
        pg_thread = threading.Thread(target=setup_pg, args=(paths, password, ports, pg),
                                     name="pg-setup", daemon=True)
        pg_thread.start()

        # a finite count makes moto check signatures once it is used up; it is lowered to the
        # exact number of setup requests after seeding (see _enable_auth_and_check)
        os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "1000000"
        from .glue import Glue
        glue = Glue(paths, password, _log,
                    start_delay=float(os.environ.get("DRB_SANDBOX_ECS_START_DELAY", "1.5")),
                    replace_delay=float(os.environ.get("DRB_SANDBOX_ECS_REPLACE_DELAY", "10")),
                    change_delay=float(os.environ.get("DRB_SANDBOX_R53_CHANGE_DELAY", "1")))
        glue.proxy = proxy
        glue.install()
        from .stores import Stores
        glue.stores = Stores(glue, _log, replication_delay=float(os.environ.get(
            "DRB_SANDBOX_S3_REPLICATION_DELAY", "1")), cache_delay=float(os.environ.get(
                "DRB_SANDBOX_CACHE_DELAY", "3")))
        glue.stores.install()
        server = _moto_server_class()(ip_address="127.0.0.1", port=ports["moto"],
                                      verbose=False)
        server.start()
        endpoint = "http://127.0.0.1:%d" % ports["moto"]
        _log("moto listening on %s (%.1fs)" % (endpoint, time.monotonic() - t0))
        # clients reach moto through the fault proxy (AWS_ENDPOINT_URL); the launcher's own
        # set-up talks to moto directly, so requests.jsonl holds client traffic only
        from .faultproxy import Faults, Front, RequestLog, forward_to
        faults = Faults()
        reqlog = RequestLog(str(paths.requests))
        front = Front("aws", ports["aws_endpoint"], forward_to(ports["moto"]), faults, reqlog)
        front.start()
        fronts.append(front)
        glue.faults = faults
        public = front.url
        _log("fault proxy listening on %s" % public)

        from .arc import REGIONS as ARC_REGIONS, ArcCluster
        glue.arc = ArcCluster(glue.account, _iam_secret_of(glue.account), _log)
        dns_ttl = int(os.environ.get("DRB_SANDBOX_DNS_TTL", "60"))
        from .seed import seed_cloud, seed_snapshot
        cloud = seed_cloud(endpoint, glue, ports, password, dns_ttl=dns_ttl)
        from .seed import seed_stores, stores_env
        stores = seed_stores(endpoint, glue)
        glue.stores.settle()
        from .seed import seed_ap_southeast_1
        cloud["ap"] = seed_ap_southeast_1(endpoint, glue, ports, cloud)
        from .seed import seed_db_network
        db_network = seed_db_network(endpoint, glue, cloud)
        _log("cloud seeded (%.1fs)" % (time.monotonic() - t0))
        # the ARC cluster's five endpoints, one per region, behind the same fault mechanism
        for i, region in enumerate(ARC_REGIONS):
            f = Front("arc-%d" % i, free_port(), glue.arc.backend(region), faults, reqlog,
                      region=region)
            f.start()
            fronts.append(f)
            arc_fronts.append(f)

        def apply_faults():
            # a refused cluster endpoint refuses connections (its listener is closed); the
            # shared AWS endpoint can only reset them, its region is known from the request
            for f in arc_fronts:
                if faults.mode_for(f.name, f.region) == "refused":
                    f.close_listener()
                else:
                    f.start()
        glue.on_faults = apply_faults
        from .dns import Dns
        dns = Dns(paths, glue, cloud["zone_name"], _log)
        ports.update({f.name: f.port for f in arc_fronts})
        ports.update({"dns_authoritative": dns.auth_port, "dns_resolver": dns.resolver_port})
        write_json_atomic(paths.ports, ports)
        dns.start()
        pg_thread.join(120)
        if pg_thread.is_alive():
            raise SandboxError("PostgreSQL set-up did not finish in 120 s")
        if "error" in pg:
            _log(pg["trace"])
            raise SandboxError("PostgreSQL set-up failed: %s" % pg["error"])
        glue.nodes.update(pg["nodes"])
        glue.writer, glue.standby, glue.replica = A, B, EU_NODE
        glue.ap_replica = AP_NODE
        glue.live = True
        glue.base_backup_time = pg["base_backup_time"]
        _log("postgres ready (%.1fs)" % (time.monotonic() - t0))
        # issue 11: the writer endpoint's DNS name, the service alarms, the load balancer
        watch = glue.setup_watch(cloud["zone_id"], cloud["zone_name"])
        from .lb import LoadBalancer
        lb = LoadBalancer(glue, "us-east-1", cloud["clusters"]["us-east-1"], free_port(), _log)
        lb.start()
        ports["load_balancer"] = lb.port
        write_json_atomic(paths.ports, ports)
        snapshot = seed_snapshot(endpoint)
        arn = _enable_auth_and_check(endpoint, cloud)
        _log("signature checking on; sandbox identity %s" % arn)
        env = _env_vars(paths, ports, password, cloud, snapshot)
        env.update(_arc_dns_env(glue.arc, arc_fronts, dns, cloud))
        env.update(_ap_env(ports, password, cloud))
        env.update({"DRB_SANDBOX_WRITER_DNS_NAME": watch["writer_dns"],
                    "DRB_SANDBOX_SERVICE_ALARM": "{cluster}-{service}-running-tasks",
                    "DRB_SANDBOX_LB_URL": lb.url})
        env.update(stores_env(stores))
        from .seed import db_network_env
        env.update(db_network_env(db_network, lb.url))
        _write_env(paths, env)

        if paths.control.exists():
            paths.control.unlink()
        control = _ControlServer(str(paths.control), _ControlHandler)
        os.chmod(paths.control, 0o600)

        def dispatch(req):
            cmd = req.get("cmd")
            if cmd == "ping":
                return "pong"
            if cmd == "status":
                st = glue.status()
                st["dns"] = dns.status()
                st["load_balancer"] = {"url": lb.url, "stats": lb.stats()}
                st["stores"] = glue.stores.status()
                st["arc"] = dict(glue.arc.status(), endpoints=[
                    {"url": f.url, "region": f.region, "listening": f.listening(),
                     "fault": faults.mode_for(f.name, f.region)} for f in arc_fronts])
                return st
            if cmd == "inject":
                _log("inject %s %s" % (req.get("scenario"), req.get("args")))
                return glue.inject(req.get("scenario"), req.get("args"))
            if cmd == "region-state":
                _log("region-state %s" % req.get("args"))
                return glue.region_state(req.get("args"))
            if cmd == "shutdown":
                stop.set()
                return "stopping"
            raise SandboxError("unknown command %r" % cmd)
        control.dispatch = dispatch
        threading.Thread(target=control.serve_forever, name="control", daemon=True).start()
        serving = True

        took = time.monotonic() - t0
        write_json_atomic(paths.ready, {"pid": os.getpid(), "ready_at": rfc3339(now_utc()),
                                        "took_s": round(took, 2), "endpoint": public,
                                        "moto": endpoint})
        _log("ready in %.1fs" % took)
        while not stop.wait(1):
            pass
        _log("shutting down")
    except BaseException as e:
        rc = 1
        _log("failed: %s\n%s" % (e, traceback.format_exc()))
    finally:
        for step, fn in (("control", lambda: control and (serving and control.shutdown(),
                                                         control.server_close())),
                         ("stores", lambda: glue and getattr(glue, "stores", None) and
                          glue.stores.stop()),
                         ("glue", lambda: glue and glue.stop()),
                         ("fronts", lambda: [f.stop() for f in fronts]),
                         ("dns", lambda: dns and dns.stop()),
                         ("load balancer", lambda: lb and lb.stop()),
                         ("proxy", lambda: proxy and proxy.stop()),
                         ("postgres", lambda: stop_all_recorded(paths, _log)),
                         ("moto", lambda: server and server.stop())):
            try:
                fn()
            except Exception as e:  # keep stopping the rest
                _log("stopping %s: %s" % (step, e))
        for p in (paths.ready, paths.control):
            try:
                p.unlink()
            except OSError:
                pass
        _log("stopped (rc=%d)" % rc)
    return rc
