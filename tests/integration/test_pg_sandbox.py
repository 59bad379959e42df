#!/usr/bin/env python3
# Every pg action through drbook itself (CLI, engine, connections from dsn_env and from an RDS
# instance, audit log) against one private sandbox: the runbooks in runbooks/pg-*.yaml run with
# `drbook run`, and each claim is checked on the real end state (psql on the real servers, boto3
# on the emulated RDS) and in the run's audit log, which must verify and hold no secret.
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sandbox"))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

from drbtest import Case, events  # noqa: E402  (exits when DRBOOK is not the built binary)
from sandbox_lib.common import dsn, psql_value  # noqa: E402
from sandbox_lib.testkit import rds_instance, run_test  # noqa: E402

RUNBOOKS = os.path.join(HERE, "runbooks")
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def port_of(dsn_text):
    return int(dsn_text.split("port=")[1].split()[0])


def psql_try(conninfo, sql):
    """(exit code, stdout, stderr) of one statement: for writes that must be refused."""
    p = subprocess.run(["psql", conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
    return p.returncode, p.stdout, p.stderr


class Env:
    """The sandbox, a working folder with an audit key, and `drbook` run with the sandbox's
    variables (its AWS endpoint and key, the DSNs, the database password)."""

    def __init__(self, sb, c):
        self.sb = sb
        self.c = c
        self.case = Case()
        self.key = self.case.path("audit.key")
        with open(self.key, "w") as f:
            f.write(secrets.token_hex(32))
        self.secrets = [sb.vars["DRB_SANDBOX_PG_PASSWORD"], sb.vars["AWS_SECRET_ACCESS_KEY"]]

    def drbook(self, *args, timeout=240):
        env = dict(self.sb.env)
        env.update(self.sb.vars)
        return self.case.drbook(*args, timeout=timeout, env=env)

    def run(self, runbook, log, *params):
        path = os.path.join(RUNBOOKS, runbook)
        argv = ["run", path, "--audit", log, "--audit-key-file", self.key]
        for p in params:
            argv += ["-p", p]
        r = self.drbook(*argv)
        print("  drbook run %s: exit %d in %.1fs" % (runbook, r.code, r.elapsed), flush=True)
        # with a sanitizer build (-DDRB_SANITIZE=ON) a report must fail the case even where
        # the expected exit code is 1, which is also the sanitizers' exit code
        report = [m for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:")
                  if m in r.err]
        self.c.ok(not report, "%s: no sanitizer report %s" % (runbook, report or ""))
        records = self.case.log(log) if os.path.exists(self.case.path(log)) else []
        return r, records

    def check_audit(self, log, records, ops, rds_lookup):
        """The log verifies with the key, holds a pg call record per expected operation (and
        the RDS endpoint lookups of rds_instance connections), and no secret."""
        c = self.c
        v = self.drbook("audit", "verify", log, "--key-file", self.key)
        c.ok(v.code == 0, "%s: drbook audit verify exits 0 (%s)" % (log, (v.out + v.err).strip()))
        calls = events(records, "call")
        got = {r["data"]["operation"] for r in calls if r["data"]["service"] == "pg"}
        c.ok(set(ops) <= got, "%s: pg call records for %s (got %s)" % (log, sorted(ops),
                                                                      sorted(got)))
        looked_up = [r for r in calls if r["data"]["service"] == "rds" and
                     r["data"]["operation"] == "DescribeDBInstances"]
        c.ok(bool(looked_up) == rds_lookup, "%s: RDS endpoint lookups recorded: %d" %
             (log, len(looked_up)))
        with open(self.case.path(log), "rb") as f:
            raw = f.read()
        leaked = [i for i, s in enumerate(self.secrets) if s.encode() in raw]
        c.ok(not leaked and b"password=" not in raw,
             "%s: no password, secret key or DSN in the log (leaked #%s)" % (log, leaked))

    def close(self):
        self.case.close()


def step_end(records, step):
    ends = events(records, "step.end", step)
    return ends[-1]["data"] if ends else {}


def result(records, step):
    return step_end(records, step).get("result") or {}


def case_validate_runbooks(e, sb, c):
    """Every runbook of this test passes `drbook validate` (prints nothing)."""
    files = sorted(os.path.join(RUNBOOKS, f) for f in os.listdir(RUNBOOKS)
                   if f.startswith("pg-") and f.endswith(".yaml"))
    c.ok(len(files) >= 5, "the pg runbooks are there (%d)" % len(files))
    v = e.drbook("validate", *files)
    quiet = v.code == 0 and not v.out and not v.err
    c.ok(quiet, "drbook validate prints nothing" + ("" if quiet else ": %r" % v))


def case_basics(e, sb, c):
    """pg.query (typed rows, arguments, in Lua), pg.exec, pg.status of all three servers,
    a sentinel written on the primary and found on the replica, pg.validate reporting both
    of its failing checks; the eu replica is reached by DSN and by its RDS name."""
    mark = "b-" + secrets.token_hex(4)
    r, log = e.run("pg-basics.yaml", "basics.jsonl", "mark=" + mark)
    c.eq(r.code, 0, "pg-basics succeeds (%s)" % r.err.strip()[-300:])
    c.eq(log[-1]["data"]["status"] if log else None, "succeeded", "run.end succeeded")

    st = {s: result(log, s) for s in ("primary-status", "standby-status", "dr-status",
                                      "dr-rds-status")}
    c.eq([st[s].get("in_recovery") for s in sorted(st)], [True, True, False, True],
         "pg.status: dr, dr via RDS and standby in recovery, the primary not")
    c.ok(all(st[s].get("server_version_num", 0) // 10000 == 15 for s in st),
         "pg.status reports PostgreSQL 15 everywhere")

    row = (result(log, "typed").get("rows") or [{}])[0]
    cents = int(sb.value("PRIMARY_DB_DSN", "select sum(amount_cents) from orders"))
    c.ok(type(row.get("n")) is int and row["n"] == 300, "count(*) is an integer: %r" % row)
    c.ok(type(row.get("total")) is int and row["total"] == cents,
         "a whole numeric is an integer equal to psql's sum (%s)" % cents)
    c.ok(type(row.get("avg")) is float and abs(row["avg"] - cents / 300) < 1e-6,
         "float8 is a number")
    c.ok(row.get("all_paid") is True, "bool is a boolean")
    c.ok(RFC3339_MS.match(str(row.get("newest"))), "timestamptz is RFC 3339 UTC with ms: %r"
         % row.get("newest"))
    c.eq(row.get("doc"), {"k": 1, "l": [1, 2]}, "jsonb is decoded")
    c.ok("nothing" in row and row["nothing"] is None, "NULL is null")
    c.eq((row.get("answer"), row.get("echo")), (42, mark), "arguments reach the server")

    c.eq(result(log, "insert").get("rows_affected"), 3, "pg.exec reports rows_affected")
    c.eq(result(log, "lua-query"), {"kind": "integer", "sum": 60},
         "pg.query in a lua step returns typed rows")
    rows = sb.sql("PRIMARY_DB_DSN", "select token, n from pgsb_it where token like '%s-%%' "
                  "order by n" % mark)
    c.eq(rows.split(), ["%s-1|10" % mark, "%s-2|20" % mark, "%s-3|30" % mark],
         "psql: the primary holds the inserted and updated rows")
    c.eq(sb.value("DR_DB_DSN", "select count(*) from pgsb_it where token like '%s-%%'" % mark),
         "3", "psql: the eu replica has them too")

    sent = result(log, "sentinel")
    c.ok(re.match(r"^[0-9a-f]{32}$", str(sent.get("id"))) and
         RFC3339_MS.match(str(sent.get("written_at"))), "sentinel_write: id and written_at")
    c.eq(sb.value("PRIMARY_DB_DSN", "select note from drbook.sentinel where id = '%s'" %
                  sent.get("id")), mark, "psql: the sentinel row is on the primary")
    c.eq(result(log, "sentinel-on-dr").get("present"), True,
         "sentinel_check on the replica after catch-up: present")
    c.eq(sb.value("DR_DB_DSN", "select count(*) from drbook.sentinel where id = '%s'" %
                  sent.get("id")), "1", "psql: the sentinel is on the replica")

    # the rds_instance connection went to the replica that boto3 sees in eu-west-1
    db = rds_instance(sb, "prod-db-eu", "eu-west-1")
    c.eq(db["Endpoint"]["Port"], port_of(sb.vars["DR_DB_DSN"]),
         "boto3: prod-db-eu's endpoint is the DR server")
    lookups = [r for r in events(log, "call", "dr-rds-status")
               if r["data"]["service"] == "rds"]
    c.ok(lookups and lookups[0]["data"]["region"] == "eu-west-1" and
         lookups[0]["data"]["request"]["params"].get("DBInstanceIdentifier") == "prod-db-eu",
         "the rds_instance connection looked prod-db-eu up in eu-west-1")

    val = result(log, "validate")
    fails = {f["name"]: f for f in val.get("failures", [])}
    c.eq(val.get("passed"), False, "pg.validate: not passed")
    c.eq(sorted(fails), ["missing-table", "wrong-total"], "pg.validate reports both failures")
    c.ok("42P01" in str(fails.get("missing-table", {}).get("error")),
         "the SQL error of a check carries its SQLSTATE")
    c.eq((fails.get("wrong-total") or {}).get("got"), 300, "a mismatch reports what it got")
    c.eq([x["ok"] for x in val.get("results", [])], [True, True, False, False, True],
         "every check ran, the passing ones too")
    e.check_audit("basics.jsonl", log, ["query", "exec", "status", "sentinel_write",
                                        "sentinel_check", "validate"], True)


def case_refusals(e, sb, c):
    """A write inside pg.query is refused (READ ONLY); a validation step that asserts passed
    fails and its step.end lists every failing check."""
    mark = "r-" + secrets.token_hex(4)
    r, log = e.run("pg-refusals.yaml", "refusals.jsonl", "mark=" + mark)
    c.eq(r.code, 1, "pg-refusals fails (exit 1)")
    w = step_end(log, "write-in-query")
    c.ok(w.get("status") == "failed" and "SQLSTATE 25006" in str(w.get("error")) and
         w.get("code") == "denied", "pg.query refuses an INSERT: %s" % w.get("error"))
    c.eq(sb.value("PRIMARY_DB_DSN", "select count(*) from pgsb_it where token = '%s'" % mark),
         "0", "psql: the refused insert left no row")
    v = step_end(log, "validate")
    names = sorted(f["name"] for f in (v.get("result") or {}).get("failures", []))
    c.ok(v.get("status") == "failed" and names == ["is-primary", "too-many-accounts"],
         "a failing validation lists both failing checks: %s" % names)
    c.eq(log[-1]["data"].get("status") if log else None, "failed", "run.end failed")
    e.check_audit("refusals.jsonl", log, ["query", "validate"], False)


def case_lag(e, sb, c):
    """Replay paused on the eu replica: lag_bytes > 0 and growing with each write on the
    primary, the last replay frozen; resumed: lag back to 0 and every row replayed. A
    failure after the pause rolls back to a resumed replica."""
    r, log = e.run("pg-lag.yaml", "lag.jsonl")
    c.eq(r.code, 0, "pg-lag succeeds (%s)" % r.err.strip()[-300:])
    l1, l2 = result(log, "lag-1"), result(log, "lag-2")
    done, prim = result(log, "caught-up"), result(log, "primary-view")
    c.ok((l1.get("lag_bytes") or 0) > 0 and l1.get("replay_paused") is True,
         "paused: lag_bytes %s > 0" % l1.get("lag_bytes"))
    c.ok((l2.get("lag_bytes") or 0) > (l1.get("lag_bytes") or 0),
         "after more writes lag_bytes grows: %s > %s" % (l2.get("lag_bytes"),
                                                        l1.get("lag_bytes")))
    c.ok(l1.get("replay_lsn") == l2.get("replay_lsn") and
         l1.get("last_replay_at") == l2.get("last_replay_at") and
         lsn(l2["receive_lsn"]) > lsn(l1["receive_lsn"]),
         "received WAL advances while replay stays where it was")
    c.ok(isinstance(l2.get("replay_lag_s"), (int, float)) and
         isinstance(l1.get("replay_lag_s"), (int, float)) and
         l2["replay_lag_s"] - l1["replay_lag_s"] >= 1.4,
         "replay_lag_s ages with the paused replay (%s -> %s)" % (l1.get("replay_lag_s"),
                                                                 l2.get("replay_lag_s")))
    eu = [x for x in prim.get("replicas", []) if x.get("application_name") == "prod_db_eu"]
    c.ok(prim.get("role") == "primary" and eu and eu[0]["lag_bytes"] > 0,
         "the primary's view shows the eu replica behind: %s" % eu)
    c.ok(done.get("lag_bytes") == 0 and done.get("replay_lag_s") == 0 and
         done.get("replay_paused") is False and
         lsn(done["replay_lsn"]) >= lsn(l2["receive_lsn"]),
         "resumed: lag returns to 0 and replay passes what was received")
    c.eq(sb.value("DR_DB_DSN", "select pg_is_wal_replay_paused()"), "f",
         "psql: the replica is replaying")
    c.eq(sb.value("DR_DB_DSN", "select count(*) from pgsb_lag"), "4000",
         "psql: the replica has every row written while paused")
    e.check_audit("lag.jsonl", log, ["exec", "replication_lag", "query"], True)

    r, log = e.run("pg-lag.yaml", "lag-rollback.jsonl", "fail=true")
    c.eq((r.code, log[-1]["data"].get("status") if log else None), (1, "rolled_back"),
         "a failure after the pause rolls the run back")
    undo = events(log, "rollback.end", "pause")
    resumed = [x for x in events(log, "call", "pause") if "pg_wal_replay_resume" in
               json.dumps(x["data"].get("request"))]
    c.ok(step_end(log, "pause").get("status") == "ok" and undo and
         undo[0]["data"].get("status") == "ok" and resumed,
         "the pause ran and its compensation (pg_wal_replay_resume) was recorded")
    c.eq(sb.value("DR_DB_DSN", "select pg_is_wal_replay_paused()"), "f",
         "psql: the rollback resumed replay")
    e.check_audit("lag-rollback.jsonl", log, ["exec"], False)


def case_pitr(e, sb, c):
    """Record a time, delete rows, restore prod-db to that time (a runbook step), connect to
    the restored instance by its RDS name: the rows are back, later writes are not."""
    mark = "p-" + secrets.token_hex(4)
    r, log = e.run("pg-pitr.yaml", "pitr.jsonl", "mark=" + mark, "target=pgsb-pitr")
    c.eq(r.code, 0, "pg-pitr succeeds (%s)" % r.err.strip()[-300:])
    deleted = result(log, "delete").get("rows_affected")
    c.eq(deleted, 100, "the runbook deleted every third order")
    c.eq(sb.value("PRIMARY_DB_DSN", "select count(*) from orders"), "200",
         "psql: the primary lost the rows")
    at = (result(log, "restore-point").get("rows") or [{}])[0].get("at")
    calls = [x for x in events(log, "call", "restore") if x["data"]["service"] == "rds"]
    sent = calls[0]["data"]["request"]["params"] if calls else {}
    c.ok(at and sent.get("RestoreTime", "").startswith(at[:19]) and
         sent.get("SourceDBInstanceIdentifier") == "prod-db",
         "RestoreDBInstanceToPointInTime got the recorded time (%s -> %s)" %
         (at, sent.get("RestoreTime")))
    db = rds_instance(sb, "pgsb-pitr")
    c.eq(db["DBInstanceStatus"], "available", "boto3: the restored instance is available")
    port = db["Endpoint"]["Port"]
    c.eq(result(log, "wait-restored").get("port"), port, "the runbook saw the same endpoint")
    c.ok(port not in [port_of(sb.vars[k]) for k in ("PRIMARY_DB_DSN", "DR_DB_DSN",
                                                    "STANDBY_DB_DSN")],
         "the restored instance is a server of its own")
    restored = dsn(port, sb.vars["DRB_SANDBOX_PG_PASSWORD"])
    c.eq(psql_value(restored, "select count(*) from orders"), "300",
         "psql: the restored instance has the deleted rows back")
    c.eq(psql_value(restored, "select string_agg(phase, ',') from pgsb_pitr where mark = '%s'"
                    % mark), "before", "psql: it has the write before the time, not the one "
                                       "after the deletion")
    got = (result(log, "rows-back").get("rows") or [{}])[0]
    c.eq(got.get("orders"), 300, "pg.query through the rds_instance connection counted 300")
    look = [x for x in events(log, "call", "rows-back") if x["data"]["service"] == "rds"]
    c.ok(look and look[0]["data"]["request"]["params"].get("DBInstanceIdentifier") ==
         "pgsb-pitr", "the restored_db connection looked up pgsb-pitr")
    c.eq(result(log, "validate-restored").get("passed"), True, "pg.validate on the restore")
    e.check_audit("pitr.jsonl", log, ["exec", "query", "status", "validate"], True)


def case_failover(e, sb, c):
    """pg.fence on the primary: it refuses writes (psql); pg.promote on the eu replica by its
    RDS name: it takes writes (psql); the sentinel survives; the RPO is measured."""
    mark = "f-" + secrets.token_hex(4)
    r, log = e.run("pg-failover.yaml", "failover.jsonl", "mark=" + mark)
    c.eq(r.code, 0, "pg-failover succeeds (%s)" % r.err.strip()[-300:])
    c.eq(result(log, "fence").get("fenced"), True, "pg.fence reports fenced")
    code, _, err = psql_try(sb.vars["PRIMARY_DB_DSN"], "create table pgsb_fenced (x int)")
    c.ok(code != 0 and "read-only transaction" in err,
         "psql: the fenced primary refuses a write (%s)" % err.strip())
    c.eq(sb.value("PRIMARY_DB_DSN", "show default_transaction_read_only"), "on",
         "psql: new sessions on the old primary start read-only")
    p = result(log, "promote")
    c.ok(p.get("promoted") is True and isinstance(p.get("took_ms"), int),
         "pg.promote: promoted, took %s ms" % p.get("took_ms"))
    c.eq(sb.value("DR_DB_DSN", "select pg_is_in_recovery()"), "f",
         "psql: the eu server left recovery")
    code, _, err = psql_try(sb.vars["DR_DB_DSN"], "create table pgsb_psql_write (x int); "
                            "insert into pgsb_psql_write values (1)")
    c.ok(code == 0, "psql: the promoted eu server takes writes (%s)" % err.strip())
    c.eq(sb.value("DR_DB_DSN", "select mark from pgsb_promoted"), mark,
         "psql: the runbook's write on the new primary is there")
    sid = result(log, "sentinel").get("id")
    c.eq(sb.value("DR_DB_DSN", "select count(*) from drbook.sentinel where id = '%s'" % sid),
         "1", "psql: the sentinel written before the failover survived")
    c.eq(result(log, "promote-again").get("already_primary"), True,
         "a second promote finds it already primary")
    end = log[-1]["data"] if log else {}
    rpo = end.get("rpo_s")
    c.ok(isinstance(rpo, (int, float)) and 0 <= rpo < 10 and
         rpo == result(log, "rpo").get("rpo_s"),
         "run.end's RPO is the measured sentinel-to-fence window (%s s)" % rpo)
    c.ok((end.get("targets") or {}).get("rpo") == "met", "the RPO target is met")
    e.check_audit("failover.jsonl", log, ["sentinel_write", "sentinel_check", "fence", "exec",
                                          "query", "status", "promote"], True)

    # a tampered copy of a log is caught: the verification above can fail
    bad = e.case.path("tampered.jsonl")
    with open(e.case.path("failover.jsonl")) as f:
        lines = f.readlines()
    i = next(n for n, line in enumerate(lines) if '"operation":"fence"' in
             line.replace(" ", ""))
    lines[i] = lines[i].replace("fence", "fancy", 1)
    with open(bad, "w") as f:
        f.writelines(lines)
    v = e.drbook("audit", "verify", bad, "--key-file", e.key)
    c.eq(v.code, 1, "audit verify rejects a tampered copy")


CASES = [case_validate_runbooks, case_basics, case_refusals, case_lag, case_pitr,
         case_failover]   # failover last: it fences the primary and promotes the replica


def body(sb, c):
    for tool in ("psql",):
        if not shutil.which(tool):
            raise RuntimeError("%s not found: install postgresql-client-15" % tool)
    t0 = time.monotonic()
    took, _ = sb.up()
    print("sandbox up in %.1fs" % took, flush=True)
    e = Env(sb, c)
    try:
        for case in CASES:
            t = time.monotonic()
            print("== %s" % case.__name__, flush=True)
            try:
                case(e, sb, c)
            except Exception:
                c.ok(False, "%s raised:\n%s" % (case.__name__, traceback.format_exc()))
            print("   (%.1fs)" % (time.monotonic() - t), flush=True)
    finally:
        e.close()
    rc, st = sb.status()
    c.eq(st.get("errors"), [], "the launcher recorded no background error")
    print("pg sandbox checks took %.1fs" % (time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    # ctest's timeout sends SIGTERM: turn it into SystemExit so the sandbox still comes down
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(run_test(body))
