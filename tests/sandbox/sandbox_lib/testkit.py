# Helpers for the sandbox's own integration tests (tests/integration/test_sandbox_*.py): a
# private sandbox per test that is always brought down, checks that count passes and failures,
# AWS clients built from the sandbox's env.json, and SQL through psql.
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import boto3
from botocore.config import Config

from .common import SandboxError, pid_alive, port_in_use, psql, psql_value, read_json

SANDBOX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sandbox")


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, cond, what):
        if cond:
            self.passed += 1
            print("ok   - %s" % what, flush=True)
        else:
            self.failed += 1
            print("FAIL - %s" % what, flush=True)
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, "%s (got %r, want %r)" % (what, got, want))

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 1 if self.failed or not self.passed else 0


class Sandbox:
    """A sandbox in a private state dir; `close()` brings it down whatever happened."""

    def __init__(self, extra_env=None):
        self.dir = tempfile.mkdtemp(prefix="drb-sbx-", dir="/tmp")
        os.chmod(self.dir, 0o755)           # the postgres user must enter it
        self.env = dict(os.environ, DRB_SANDBOX_DIR=self.dir,
                        AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
        self.env.update(extra_env or {})
        self.vars = {}

    def run(self, *args, timeout=120):
        p = subprocess.run([sys.executable, SANDBOX] + list(args), env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        return p

    def up(self):
        t0 = time.monotonic()
        p = self.run("up")
        took = time.monotonic() - t0
        if p.returncode != 0:
            raise SandboxError("sandbox up failed (%d): %s%s" % (p.returncode, p.stdout,
                                                                p.stderr))
        self.vars = read_json(os.path.join(self.dir, "env.json"))
        return took, json.loads(p.stdout)

    def inject(self, scenario, *extra):
        p = self.run("inject", scenario, *extra)
        if p.returncode != 0:
            raise SandboxError("inject %s failed: %s" % (scenario, p.stderr))
        return json.loads(p.stdout)

    def status(self):
        p = self.run("status")
        return p.returncode, json.loads(p.stdout)

    def recorded_pids_and_ports(self):
        """Everything `down` must stop: launcher, postmasters, ports."""
        pids, ports = [], []
        try:
            pids.append(int(open(os.path.join(self.dir, "launcher.pid")).read()))
        except (OSError, ValueError):
            pass
        for s in (read_json(os.path.join(self.dir, "servers.json"), {}) or {}).values():
            ports.append(s["port"])
            try:
                pids.append(int(open(os.path.join(s["datadir"], "postmaster.pid")).readline()))
            except (OSError, ValueError):
                pass
        ports += list((read_json(os.path.join(self.dir, "ports.json"), {}) or {}).values())
        return pids, sorted(set(ports))

    def client(self, service, region="us-east-1", secret=None, key=None):
        v = self.vars
        return boto3.client(service, region_name=region, endpoint_url=v["AWS_ENDPOINT_URL"],
                            aws_access_key_id=key or v["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=secret or v["AWS_SECRET_ACCESS_KEY"],
                            config=Config(retries={"max_attempts": 1}))

    def aws_cli(self, *args):
        env = dict(self.env)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            env[k] = self.vars[k]
        p = subprocess.run(["aws", "--endpoint-url", self.vars["AWS_ENDPOINT_URL"],
                            "--output", "json"] + list(args), env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if p.returncode != 0:
            raise SandboxError("aws %s: %s" % (" ".join(args), p.stderr))
        return json.loads(p.stdout) if p.stdout.strip() else {}

    def sql(self, dsn_var, text):
        return psql(self.vars[dsn_var] if dsn_var in self.vars else dsn_var, text)

    def value(self, dsn_var, text):
        return psql_value(self.vars[dsn_var] if dsn_var in self.vars else dsn_var, text)

    def down(self):
        return self.run("down")

    def close(self, keep_on_failure=False):
        p = self.down()
        if p.returncode != 0:
            print("sandbox down: %s %s" % (p.stdout, p.stderr), flush=True)
        if not keep_on_failure:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print("state kept in %s" % self.dir, flush=True)
        return p.returncode


def param_args(params):
    """drbook's -p arguments for params (a dict of name to value), in the dict's order:
    ["-p", "name=value", ...]. A value is written with %s: a list or map goes JSON-encoded."""
    out = []
    for k, v in params.items():
        out += ["-p", "%s=%s" % (k, v)]
    return out


def dig_records(server, name, qtype="A"):
    """The answer section `dig` prints for name from server ("IP:PORT"): a list of
    (type, value, ttl), in order (a CNAME chain first)."""
    host, port = server.split(":")
    p = subprocess.run(["dig", "@" + host, "-p", port, name, qtype, "+noall", "+answer",
                        "+time=2", "+tries=1"], capture_output=True, text=True, timeout=20)
    out = []
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) >= 5:
            out.append((f[3], f[4], int(f[1])))
    return out


def dig(server, name, rtype="CNAME"):
    """The sorted values of name's rtype records, as server answers them."""
    return sorted(v for t, v, _ in dig_records(server, name, rtype) if t == rtype)


def wait_for(pred, timeout, interval=0.3):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # retried until the deadline
            last = e
        time.sleep(interval)
    if last:
        print("  (last error while waiting: %s)" % last, flush=True)
    return None


def rds_instance(sb, ident, region="us-east-1"):
    """The DB instance ident in region as the sandbox's RDS describes it (its DBInstances
    entry). A missing one raises botocore's ClientError (DBInstanceNotFound)."""
    return sb.client("rds", region).describe_db_instances(
        DBInstanceIdentifier=ident)["DBInstances"][0]


def wal_receiver(sb, dsn_var):
    """(in recovery, WAL receiver status, port it streams from) of the real PostgreSQL server
    behind the sandbox DSN variable dsn_var ('-' for both when it receives no WAL)."""
    out = sb.value(dsn_var, "select pg_is_in_recovery()::text || '|' || coalesce((select "
                   "status || '|' || sender_port from pg_stat_wal_receiver), '-|-')")
    rec, status, port = out.split("|")
    return rec == "true", status, port


def wait_instance(sb, ident, cond, timeout=60, region="us-east-1"):
    """rds_instance(sb, ident, region) once cond holds for it, or None after timeout seconds
    (a read that fails is retried until then)."""
    def probe():
        db = rds_instance(sb, ident, region)
        return db if cond(db) else None
    return wait_for(probe, timeout)


def dead_and_free(pids, ports):
    alive = [p for p in pids if pid_alive(p)]
    busy = [p for p in ports if port_in_use(p)]
    return alive, busy


def run_test(body, extra_env=None):
    """Runs body(sandbox, checks); always brings the sandbox down; exit code for sys.exit."""
    checks = Checks()
    sb = Sandbox(extra_env)
    try:
        body(sb, checks)
    except Exception:
        checks.ok(False, "test body raised:\n" + traceback.format_exc())
    finally:
        pids, ports = sb.recorded_pids_and_ports()
        failed = checks.failed > 0
        rc = sb.close(keep_on_failure=failed)
        checks.ok(rc == 0, "sandbox down exits 0")
        alive, busy = dead_and_free(pids, ports)
        checks.ok(not alive and not busy, "after down no recorded process is alive (%s) and "
                  "no port is in use (%s)" % (alive, busy))
    return checks.finish()
