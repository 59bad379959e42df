#!/usr/bin/env python3
# Integration tests of the pg.* actions against real PostgreSQL 15 servers: a primary and a
# streaming replica that this script starts in a temp dir (as the postgres user when run as
# root) on free loopback ports and stops in `finally`. The actions under test are destructive
# (promote, fence), so the test owns its servers instead of sharing the sandbox's. Each action
# runs through $BUILD/tests/pg_action_tool. Prints "N passed, M failed"; exit 1 on any failure.
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox"))
from sandbox_lib.common import free_port  # noqa: E402  (inside $DRB_SANDBOX_PORTS when set)

PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
PASSWORD = "S3cret-pw-%d" % os.getpid()
WRONG = "Wr0ngSecret!"
WRONG_URI = "Wr0ngSecret%21"

results = {"passed": 0, "failed": 0}
started = []  # data dirs of running servers, stopped in finally


def fail_loudly(msg):
    sys.stderr.write("test_pg_actions: %s\n" % msg)
    print("0 passed, 1 failed")
    sys.exit(1)


def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
        print("ok   %s" % name)
    else:
        results["failed"] += 1
        print("FAIL %s %s" % (name, detail))
    return cond


def as_pg(argv, env=None, check_rc=True):
    """Runs a PostgreSQL server binary as the postgres user when we are root (initdb refuses
    root)."""
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run(argv, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    if check_rc and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stdout))
    return r


def pg_ctl(datadir, *args):
    return as_pg([os.path.join(PGBIN, "pg_ctl"), "-D", datadir] + list(args))


def start_servers(tmp):
    pw = os.path.join(tmp, "pwfile")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        shutil.chown(pw, "postgres")
    primary, replica = os.path.join(tmp, "primary"), os.path.join(tmp, "replica")
    pport, rport = free_port(), free_port()
    as_pg([os.path.join(PGBIN, "initdb"), "-D", primary, "-U", "postgres", "--pwfile", pw,
           "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"])
    with open(os.path.join(primary, "postgresql.conf"), "a") as f:
        f.write("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"
                "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\nfsync = off\n"
                "wal_keep_size = '64MB'\nlogging_collector = off\n" % (pport, tmp))
    pg_ctl(primary, "-l", os.path.join(tmp, "primary.log"), "-w", "-t", "60", "start")
    started.append(primary)
    as_pg([os.path.join(PGBIN, "pg_basebackup"), "-h", "127.0.0.1", "-p", str(pport), "-U",
           "postgres", "-D", primary.replace("primary", "replica"), "-R", "-X", "stream",
           "--no-sync"], env={"PGPASSWORD": PASSWORD})
    with open(os.path.join(replica, "postgresql.conf"), "a") as f:
        f.write("port = %d\n" % rport)
    pg_ctl(replica, "-l", os.path.join(tmp, "replica.log"), "-w", "-t", "60", "start")
    started.append(replica)
    return pport, rport, primary, replica


def stop_server(datadir):
    if datadir in started:
        pg_ctl(datadir, "-m", "immediate", "-w", "stop")
        started.remove(datadir)


class Env:
    pass


def setup_env(tmp, pport, rport):
    E = Env()
    E.pport, E.rport = pport, rport
    dsn_file = os.path.join(tmp, "replica.dsn")
    with open(dsn_file, "w") as f:
        f.write("  postgresql://postgres@127.0.0.1:%d/postgres  \n" % rport)
    pw_file = os.path.join(tmp, "pw.txt")
    with open(pw_file, "w") as f:
        f.write(PASSWORD + "\n")
    os.environ["DRBT_PRIMARY_DSN"] = "host=127.0.0.1 port=%d dbname=postgres user=postgres" % pport
    os.environ["DRBT_PW"] = PASSWORD
    os.environ["DRBT_WRONG_PW"] = WRONG
    os.environ["DRBT_WRONG_URI"] = "postgresql://postgres:%s@127.0.0.1:%d/postgres" % (
        WRONG_URI, pport)
    os.environ.pop("DRBT_UNSET", None)
    E.conns = {
        "primary": {"kind": "postgres", "dsn_env": "DRBT_PRIMARY_DSN", "password_env": "DRBT_PW"},
        "replica": {"kind": "postgres", "dsn_file": dsn_file, "password_file": pw_file},
        "wrongpw": {"kind": "postgres", "dsn_env": "DRBT_PRIMARY_DSN",
                    "password_env": "DRBT_WRONG_PW"},
        "wronguri": {"kind": "postgres", "dsn_env": "DRBT_WRONG_URI"},
        "unset": {"kind": "postgres", "dsn_env": "DRBT_UNSET"},
        "rds": {"kind": "postgres", "rds_instance": "prod-db-eu", "region": "eu-west-1",
                "user": "postgres", "password_env": "DRBT_PW"},
        "slow": {"kind": "postgres", "dsn_env": "DRBT_PRIMARY_DSN", "password_env": "DRBT_PW",
                 "statement_timeout": "1s"},
        "empty": {"kind": "postgres", "dsn_env": "DRBT_PRIMARY_DSN", "password_env": "DRBT_PW",
                  "dbname": "emptydb"},
    }
    return E


def act(E, action, args, extra=(), timeout=60):
    argv = [TOOL, "-c", json.dumps(E.conns)] + list(extra) + [action, json.dumps(args)]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if r.returncode not in (0, 1):
        raise RuntimeError("tool exited %d: %s %s" % (r.returncode, r.stdout, r.stderr))
    out = json.loads(r.stdout)
    out["_raw"] = r.stdout + r.stderr
    return out


def lua(E, script):
    argv = [TOOL, "-c", json.dumps(E.conns), "--lua", script]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60)
    if r.returncode not in (0, 1):
        raise RuntimeError("tool exited %d: %s %s" % (r.returncode, r.stdout, r.stderr))
    return json.loads(r.stdout)


def ok(out):
    return out.get("ok") is True


def wait_until(fn, timeout=15, every=0.2):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(every)


def run_tests(E, primary_dir):
    # --- pg.query ---
    r = act(E, "pg.query", {"connection": "primary", "sql": "select $1::int as x", "args": [5]})
    check("query: parameter comes back typed", ok(r) and r["result"]["rows"] == [{"x": 5}], r)
    check("query: the call record has the SQL and the argument count, not values",
          ok(r) and r["calls"][0]["request"] == {"connection": "primary",
                                                 "sql": "select $1::int as x", "args": 1}
          and r["calls"][0]["service"] == "pg" and r["calls"][0]["operation"] == "query", r)
    r = act(E, "pg.query", {"connection": "primary", "sql":
            "select 1::int2 as a, 9007199254740993::int8 as b, 1.5::float8 as c,"
            " 12.50::numeric as d, 123456789012345678901234::numeric as e, true as f,"
            " '{\"k\":[1,null]}'::jsonb as g, null::text as h, 'hi'::text as i,"
            " timestamptz '2026-01-02 03:04:05.678+02' as j, 'NaN'::float8 as k,"
            " 42::numeric as l, timestamp '2026-05-06 07:08:09' as m, 'infinity'::timestamptz as n"})
    want = {"a": 1, "b": 9007199254740993, "c": 1.5, "d": 12.5, "e": "123456789012345678901234",
            "f": True, "g": {"k": [1, None]}, "h": None, "i": "hi",
            "j": "2026-01-02T01:04:05.678Z", "k": "NaN", "l": 42, "m": "2026-05-06T07:08:09.000Z",
            "n": "infinity"}
    got = r["result"]["rows"][0] if ok(r) else None
    check("query: values typed by column type", got == want, "%r" % (got if got else r))
    act(E, "pg.exec", {"connection": "primary", "sql": "create table if not exists t_ro (v int)"})
    r = act(E, "pg.query", {"connection": "primary", "sql": "insert into t_ro values (1)"})
    check("query: an INSERT through pg.query is refused (READ ONLY)",
          not ok(r) and r["code"] == "denied" and "25006" in r["error"], r)
    r = act(E, "pg.query", {"connection": "primary", "sql": "select count(*)::int as n from t_ro"})
    check("query: ... and nothing was written", ok(r) and r["result"]["rows"] == [{"n": 0}], r)
    r = act(E, "pg.query", {"connection": "primary",
                            "sql": "select 1; insert into t_ro values (2)"})
    check("query: two statements in one are refused", not ok(r), r)
    r = act(E, "pg.query", {"connection": "primary", "sql": "commit"})
    check("query: a COMMIT cannot end the READ ONLY transaction",
          not ok(r) and "READ ONLY transaction" in r["error"], r)
    r = act(E, "pg.query", {"connection": "slow", "sql": "select pg_sleep(5)"})
    check("query: statement_timeout from the connection spec applies",
          not ok(r) and r["code"] == "timeout" and "57014" in r["error"], r)
    t0 = time.monotonic()
    r = act(E, "pg.query", {"connection": "primary", "sql": "select pg_sleep(5)"},
            extra=["--deadline", "1.5"])
    check("query: the step deadline caps statement_timeout",
          not ok(r) and r["code"] == "timeout" and time.monotonic() - t0 < 4, r)
    r = act(E, "pg.query", {"connection": "primary", "sql": "select generate_series(1, 10001) as n"})
    check("query: more than 10000 rows is refused (limit), not loaded",
          not ok(r) and r["code"] == "limit" and "LIMIT" in r["error"], r)
    r = act(E, "pg.query", {"connection": "primary", "sql": "select 1", "args": list(range(101))})
    check("query: more than 100 arguments is refused (limit)",
          not ok(r) and r["code"] == "limit", r)
    r = act(E, "pg.query", {"connection": "primary", "sql": "select * from no_such_table"})
    check("query: SQL errors carry the SQLSTATE", not ok(r) and "42P01" in r["error"]
          and r["code"] == "invalid", r)

    # --- from Lua, as a lua step calls them (positional arguments) ---
    r = lua(E, 'local r = pg.query("primary", "select $1::int as x, $2::text as y", 5, "five")'
               ' return r[1]')
    check("lua: pg.query(conn, sql, ...) with positional arguments returns the rows",
          ok(r) and r["result"] == {"x": 5, "y": "five"}
          and r["calls"][0]["request"]["args"] == 2, r)
    r = lua(E, 'return pg.exec("primary", "insert into t_ro values ($1), ($2)", 1, 2)'
               '.rows_affected')
    check("lua: pg.exec positional", ok(r) and r["result"] == 2, r)
    act(E, "pg.exec", {"connection": "primary", "sql": "delete from t_ro"})

    # --- pg.exec ---
    r = act(E, "pg.exec", {"connection": "primary",
                           "sql": "insert into t_ro select generate_series(1, $1::int)",
                           "args": [3]})
    check("exec: rows_affected", ok(r) and r["result"]["rows_affected"] == 3, r)
    r = act(E, "pg.exec", {"connection": "primary", "sql": "delete from t_ro"},
            extra=["--read-only"])
    check("exec: refused in read-only mode (preflight/plan), without a call",
          not ok(r) and r["code"] == "denied" and r["calls"] == [], r)

    # --- connections ---
    for conn, secrets in (("wrongpw", [WRONG, PASSWORD]), ("wronguri", [WRONG, WRONG_URI])):
        r = act(E, "pg.status", {"connection": conn})
        leaked = [s for s in secrets if s in r["_raw"]]
        check("connections: wrong password (%s) fails clearly" % conn,
              not ok(r) and r["code"] == "denied" and "password authentication failed"
              in r["error"], r)
        check("connections: ... and no password anywhere in the output (%s)" % conn,
              not leaked, "leaked %r" % leaked)
    r = act(E, "pg.status", {"connection": "unset"})
    check("connections: an unset dsn_env names the variable",
          not ok(r) and "DRBT_UNSET" in r["error"] and r["code"] == "invalid", r)
    r = act(E, "pg.status", {"connection": "nope"})
    check("connections: unknown connection", not ok(r) and r["code"] == "not_found"
          and "'nope'" in r["error"], r)
    r = act(E, "pg.status", {"connection": "rds"})
    check("connections: rds_instance without a resolver is a clear error",
          not ok(r) and "rds_instance" in r["error"], r)
    r = act(E, "pg.status", {"connection": "rds"},
            extra=["--resolve", "prod-db-eu=127.0.0.1:%d" % E.rport])
    check("connections: rds_instance through the endpoint resolver",
          ok(r) and r["result"]["in_recovery"] is True, r)
    r = act(E, "pg.query", {"connection": "primary", "sql":
            "select application_name, current_setting('statement_timeout') as st,"
            " current_setting('TimeZone') as tz from pg_stat_activity"
            " where pid = pg_backend_pid()"})
    check("connections: application_name, statement_timeout and TimeZone are set",
          ok(r) and r["result"]["rows"] == [{"application_name": "drbook", "st": "30s",
                                             "tz": "UTC"}], r)

    # --- pg.status ---
    r = act(E, "pg.status", {"connection": "primary"})
    res = r.get("result", {})
    check("status: primary", ok(r) and res["in_recovery"] is False and res["timeline"] == 1
          and "/" in res["lsn"] and res["server_version"].startswith("15"), r)
    r = act(E, "pg.status", {"connection": "replica"})
    res = r.get("result", {})
    check("status: replica (dsn_file, password_file)", ok(r) and res["in_recovery"] is True
          and res["timeline"] == 1 and "/" in res["lsn"], r)

    # --- pg.sentinel_write / pg.sentinel_check ---
    r = act(E, "pg.sentinel_check", {"connection": "primary", "id": "nothing-yet"})
    check("sentinel: check before any table exists is present=false",
          ok(r) and r["result"]["present"] is False, r)
    w = act(E, "pg.sentinel_write", {"connection": "primary", "note": "before failover"})
    wres = w.get("result", {})
    check("sentinel: write returns id, written_at, lsn", ok(w) and len(wres["id"]) == 32
          and wres["written_at"].endswith("Z") and "/" in wres["lsn"], w)
    w2 = act(E, "pg.sentinel_write", {"connection": "primary"})
    check("sentinel: ids are unique", ok(w2) and w2["result"]["id"] != wres.get("id"), w2)
    c = wait_until(lambda: (lambda x: x if ok(x) and x["result"]["present"] else None)(
        act(E, "pg.sentinel_check", {"connection": "replica", "id": wres.get("id")})))
    check("sentinel: the row reaches the replica with the same written_at",
          c and c["result"]["written_at"] == wres["written_at"], c)
    r = act(E, "pg.sentinel_check", {"connection": "replica", "id": "0" * 32})
    check("sentinel: an unknown id is present=false", ok(r) and r["result"]["present"] is False, r)

    # --- pg.replication_lag ---
    caught = wait_until(lambda: (lambda x: x if ok(x) and x["result"]["lag_bytes"] == 0 else None)(
        act(E, "pg.replication_lag", {"connection": "replica"})))
    check("lag: a caught-up replica reports 0 bytes and 0 s",
          caught and caught["result"]["replay_lag_s"] == 0
          and caught["result"]["role"] == "replica", caught)
    r = act(E, "pg.replication_lag", {"connection": "primary"})
    reps = r.get("result", {}).get("replicas") or []
    check("lag: on the primary, pg_stat_replication rows as replicas",
          ok(r) and r["result"]["role"] == "primary" and len(reps) == 1
          and reps[0]["state"] == "streaming" and isinstance(r["result"]["lag_bytes"], int), r)
    r = act(E, "pg.exec", {"connection": "replica", "sql": "select pg_wal_replay_pause()"})
    check("lag: replay paused on the replica", ok(r), r)
    act(E, "pg.exec", {"connection": "primary",
                       "sql": "insert into t_ro select generate_series(1, 1000)"})
    l1 = wait_until(lambda: (lambda x: x if ok(x) and (x["result"]["lag_bytes"] or 0) > 0 else None)(
        act(E, "pg.replication_lag", {"connection": "replica"})))
    check("lag: bytes behind while paused", l1 and l1["result"]["replay_paused"] is True
          and l1["result"]["replay_lag_s"] > 0, l1)
    time.sleep(1.2)
    act(E, "pg.exec", {"connection": "primary",
                       "sql": "insert into t_ro select generate_series(1, 5000)"})
    l2 = wait_until(lambda: (lambda x: x if ok(x) and l1 and x["result"]["lag_bytes"]
                             > l1["result"]["lag_bytes"] else None)(
        act(E, "pg.replication_lag", {"connection": "replica"})))
    check("lag: grows after more writes on the primary (bytes and seconds)",
          l1 and l2 and l2["result"]["replay_lag_s"] >= l1["result"]["replay_lag_s"] + 1, (l1, l2))
    act(E, "pg.exec", {"connection": "replica", "sql": "select pg_wal_replay_resume()"})
    l3 = wait_until(lambda: (lambda x: x if ok(x) and x["result"]["lag_bytes"] == 0 else None)(
        act(E, "pg.replication_lag", {"connection": "replica"})))
    check("lag: back to 0 after resume", l3 and l3["result"]["replay_lag_s"] == 0, l3)

    # --- pg.validate ---
    checks = [
        {"name": "one", "sql": "select 1", "expect": 1},
        {"name": "range", "sql": "select count(*) from t_ro", "expect": {"min": 1}},
        {"name": "bool", "sql": "select true", "expect": "true"},
        {"name": "arg", "sql": "select $1::text", "args": ["x"], "expect": "x"},
        {"name": "wrong-number", "sql": "select 2", "expect": 3},
        {"name": "wrong-string", "sql": "select 'a'::text", "expect": "b"},
        {"name": "broken-sql", "sql": "select from nowhere at all", "expect": 1},
        {"name": "no-rows", "sql": "select 1 where false", "expect": 1},
        {"name": "writes", "sql": "insert into t_ro values (1)", "expect": None},
        {"name": "after-errors", "sql": "select 5", "expect": {"min": 1, "max": 9}},
    ]
    r = act(E, "pg.validate", {"connection": "replica", "checks": checks})
    names = [f["name"] for f in r.get("result", {}).get("failures", [])]
    check("validate: every failing check is reported, and only those",
          ok(r) and r["result"]["passed"] is False
          and names == ["wrong-number", "wrong-string", "broken-sql", "no-rows", "writes"], r)
    fmap = {f["name"]: f for f in r.get("result", {}).get("failures", [])}
    check("validate: failures say expected, got and error",
          fmap.get("wrong-number", {}).get("got") == 2
          and fmap.get("wrong-number", {}).get("expected") == 3
          and "42601" in (fmap.get("broken-sql", {}).get("error") or "")
          and fmap.get("no-rows", {}).get("error") == "the query returned no rows", fmap)
    r = act(E, "pg.validate", {"connection": "primary", "checks": checks[:4]})
    check("validate: all passing", ok(r) and r["result"]["passed"] is True
          and r["result"]["failures"] == [], r)
    r = act(E, "pg.validate", {"connection": "primary", "checks": [
        {"name": "bad", "sql": "select 1", "expect": [1, 2]}]})
    check("validate: an invalid expectation is refused before running",
          not ok(r) and r["calls"] == [] and "bad" in r["error"], r)

    # --- pg.promote ---
    r = act(E, "pg.promote", {"connection": "replica"}, extra=["--read-only"])
    check("promote: refused in read-only mode", not ok(r) and r["code"] == "denied", r)
    r = act(E, "pg.promote", {"connection": "replica", "wait": True, "timeout": "60s"})
    check("promote: the replica is promoted and took_ms reported",
          ok(r) and r["result"]["promoted"] is True and isinstance(r["result"]["took_ms"], int)
          and r["result"]["took_ms"] >= 0, r)
    r = act(E, "pg.exec", {"connection": "replica",
                           "sql": "insert into t_ro values (42)"})
    check("promote: the promoted replica takes writes", ok(r)
          and r["result"]["rows_affected"] == 1, r)
    r = act(E, "pg.status", {"connection": "replica"})
    check("promote: new timeline", ok(r) and r["result"]["in_recovery"] is False
          and r["result"]["timeline"] == 2, r)
    r = act(E, "pg.promote", {"connection": "replica"})
    check("promote: again on a primary reports already_primary, promoted=false",
          ok(r) and r["result"]["promoted"] is False and r["result"]["already_primary"] is True, r)

    # --- pg.fence method roles (what works on RDS: no superuser setting) and pg.unfence ---
    env = dict(os.environ, PGPASSWORD=PASSWORD)
    psql = os.path.join(PGBIN, "psql")
    weird = 'we"ird app'
    for role in ("app", weird):
        r = act(E, "pg.exec", {"connection": "primary", "sql":
                "create role \"%s\" login password '%s'" % (role.replace('"', '""'), PASSWORD)})
        check("fence roles: role %r created" % role, ok(r), r)

    def login(role):
        return subprocess.run([psql, "-h", "127.0.0.1", "-p", str(E.pport), "-U", role,
                               "-d", "postgres", "-Atc", "select 1"], env=env,
                              capture_output=True, text=True, timeout=30)

    check("fence roles: app can log in before", login("app").returncode == 0)
    app_victim = subprocess.Popen([psql, "-h", "127.0.0.1", "-p", str(E.pport), "-U", "app",
                                   "-d", "postgres", "-c", "select pg_sleep(60)"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (lambda x: ok(x) and x["result"]["rows"][0]["n"] > 0)(
            act(E, "pg.query", {"connection": "primary", "sql":
                "select count(*)::int as n from pg_stat_activity where usename = 'app'"})))
        r = act(E, "pg.fence", {"connection": "primary", "method": "roles"})
        check("fence roles: without roles it is an error naming them",
              not ok(r) and "roles" in r["error"], r)
        r = act(E, "pg.fence", {"connection": "primary", "roles": ["app"]})
        check("fence roles: roles with method settings is an error",
              not ok(r) and "method roles" in r["error"], r)
        r = act(E, "pg.fence", {"connection": "primary", "method": "roles",
                                "roles": ["app", weird]})
        check("fence roles: fenced, the app's session ended, method reported",
              ok(r) and r["result"]["fenced"] is True and r["result"]["method"] == "roles"
              and r["result"]["terminated"] >= 1, r)
        try:
            app_victim.wait(timeout=10)
            gone = True
        except subprocess.TimeoutExpired:
            gone = False
        check("fence roles: the app's session was ended", gone and app_victim.returncode != 0)
    finally:
        if app_victim.poll() is None:
            app_victim.kill()
            app_victim.wait()
    for role in ("app", weird):
        x = login(role)
        check("fence roles: %r can no longer log in" % role,
              x.returncode != 0 and "not permitted to log in" in x.stderr, x.stderr)
    check("fence roles: other roles still log in", login("postgres").returncode == 0)
    r = act(E, "pg.exec", {"connection": "primary", "sql": "insert into t_ro values (8)"})
    check("fence roles: the server itself still takes writes (only the roles are fenced)",
          ok(r), r)
    r = act(E, "pg.unfence", {"connection": "primary", "method": "roles",
                              "roles": ["app", weird]}, extra=["--read-only"])
    check("unfence: refused in read-only mode", not ok(r) and r["code"] == "denied", r)
    r = act(E, "pg.unfence", {"connection": "primary", "method": "roles",
                              "roles": ["app", weird]})
    check("unfence roles: lifted", ok(r) and r["result"]["unfenced"] is True, r)
    check("unfence roles: app logs in again",
          login("app").returncode == 0 and login(weird).returncode == 0)

    # --- pg.fence ---
    victim = subprocess.Popen([psql, "-h", "127.0.0.1", "-p", str(E.pport), "-U", "postgres",
                               "-d", "postgres", "-c", "select pg_sleep(60)"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (lambda x: ok(x) and x["result"]["rows"][0]["n"] > 0)(
            act(E, "pg.query", {"connection": "primary", "sql":
                "select count(*)::int as n from pg_stat_activity where query like"
                " 'select pg_sleep(60)%'"})))
        r = act(E, "pg.fence", {"connection": "primary"}, extra=["--read-only"])
        check("fence: refused in read-only mode", not ok(r) and r["code"] == "denied", r)
        r = act(E, "pg.fence", {"connection": "primary"})
        check("fence: fenced and other client backends terminated",
              ok(r) and r["result"]["fenced"] is True and r["result"]["reachable"] is True
              and r["result"]["terminated"] >= 1, r)
        try:
            victim.wait(timeout=10)
            gone = True
        except subprocess.TimeoutExpired:
            gone = False
        check("fence: the other session was ended", gone and victim.returncode != 0)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    w = wait_until(lambda: (lambda x: x if not ok(x) else None)(
        act(E, "pg.exec", {"connection": "primary", "sql": "insert into t_ro values (7)"})),
        timeout=10)
    check("fence: the old primary refuses writes", w and w["code"] == "denied"
          and "25006" in w["error"], w)
    r = act(E, "pg.unfence", {"connection": "primary"})
    check("unfence settings: lifted", ok(r) and r["result"]["unfenced"] is True, r)
    w = wait_until(lambda: (lambda x: x if ok(x) else None)(
        act(E, "pg.exec", {"connection": "primary", "sql": "insert into t_ro values (9)"})),
        timeout=10)
    check("unfence settings: the old primary takes writes again", w is not None, w)
    r = act(E, "pg.fence", {"connection": "primary"})
    check("fence: fenced again", ok(r) and r["result"]["fenced"] is True, r)
    stop_server(primary_dir)
    r = act(E, "pg.fence", {"connection": "primary"})
    check("fence: a stopped primary is fenced=false, reachable=false, not an error",
          ok(r) and r["result"]["fenced"] is False and r["result"]["reachable"] is False, r)


def main():
    global TOOL
    build = os.environ.get("BUILD")
    TOOL = os.path.join(build, "tests", "pg_action_tool") if build else None
    if not TOOL or not os.access(TOOL, os.X_OK):
        fail_loudly("pg_action_tool not found (BUILD=%r): build the pg_action_tool target" % build)
    for b in ("initdb", "pg_ctl", "pg_basebackup", "psql"):
        if not os.access(os.path.join(PGBIN, b), os.X_OK):
            fail_loudly("%s not found in %s: install postgresql-15" % (b, PGBIN))
    tmp = tempfile.mkdtemp(prefix="drbook-pgtest-")
    # a SIGTERM (ctest timeout) must still stop the servers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        pport, rport, primary, _replica = start_servers(tmp)
        E = setup_env(tmp, pport, rport)
        # the 'empty' connection's database: no sentinel table there
        act(E, "pg.exec", {"connection": "primary", "sql": "create database emptydb"})
        r = act(E, "pg.sentinel_check", {"connection": "empty", "id": "x"})
        check("sentinel: a database without the table is present=false",
              ok(r) and r["result"]["present"] is False, r)
        run_tests(E, primary)
    except Exception as e:  # a crash in the harness is a failure, not a skip
        check("harness", False, repr(e))
    finally:
        for d in list(started):
            try:
                stop_server(d)
            except Exception as e:
                sys.stderr.write("stopping %s: %s\n" % (d, e))
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
