#!/usr/bin/env python3
# runbooks/region-failback.yaml rolls a refused switch back and never deletes the wrong
# prod-db. After a failover, recovery and the fail-back's phase 1 (prod-db rebuilt as a
# replica of prod-db-eu), a switch whose catch-up fails (replay paused on the new replica
# after a write on prod-db-eu, catch_up_timeout=2s) exits 1, rolled back: prod-db-eu unfenced
# (the app role logs in), writable, prod-db still a replica, DNS on eu-west-1. Then prod-db is
# promoted by hand - the state a fail-back stopped between its promotion and its end leaves:
# a fresh run is refused (exit 3, prod-db kept) because prod-db is on a later timeline than
# prod-db-eu (it descends from it), and, with prod-db-eu fenced as the switch leaves it (its
# app role locked out), because prod-db-eu is fenced. Then prod-db is deleted by hand and
# prod-db-eu unfenced: a fail-back that finds no prod-db at all builds one and completes
# (writer in us-east-1, prod-db-eu a replica again, every write taken on prod-db-eu there).
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "sandbox"))

from sandbox_lib.common import psql  # noqa: E402
from sandbox_lib.testkit import rds_instance, run_test, wait_for  # noqa: E402
from test_scenario_region import (drbook, heartbeat_once, make_sentinel_table,  # noqa: E402
                                  now_rfc3339, region_params, run_end, show, step_result)
from test_scenario_region_failback import (FAILBACK, FAILOVER, app_can_log_in,  # noqa: E402
                                           failback_params, layout, pgrole)


def set_fence(sb, on):
    """prod-db-eu fenced as the switch's default fence (method roles) leaves it: the app role
    may not log in."""
    psql(sb.vars["DR_DB_DSN"], "alter role app %s" % ("nologin" if on else "login"),
         timeout=10)
    return sb.value("DR_DB_DSN", "select rolcanlogin from pg_roles where rolname = 'app'") == \
        ("f" if on else "t")


def body(sb, c):
    t0 = time.monotonic()
    sb.up()
    v = sb.vars
    runs = tempfile.mkdtemp(prefix="runs-", dir=sb.dir)
    make_sentinel_table(sb)
    heartbeat_once(sb)
    incident = now_rfc3339()
    sb.inject("region-outage")
    p = drbook(sb, "run", FAILOVER, "--drill", "--yes", "--runs-dir", runs, "--incident-start",
               incident, *region_params(sb, incident_start=incident))
    if not c.eq(p.returncode, 0, "region-failover succeeds"):
        show(p)
    sb.inject("region-recover")
    p = drbook(sb, "run", FAILBACK, "--drill", "--approve", "approve-rebuild", "--runs-dir",
               runs, *failback_params(sb))
    if not c.eq(p.returncode, 1, "phase 1: prod-db rebuilt, the switch not approved"):
        show(p)

    # ---- the switch refused by catch-up (the replica does not get the fenced writer's last
    # WAL: replay paused after one replayed commit) rolls back: prod-db-eu unfenced
    sb.sql("DR_DB_DSN", "create table failback_probe (id int primary key, what text); "
           "insert into failback_probe values (4, 'replayed before the pause')")
    c.ok(wait_for(lambda: sb.value("PRIMARY_DB_DSN", "select count(*) from failback_probe "
                                   "where id = 4") == "1", 20), "the new replica replays")
    psql(v["PRIMARY_DB_DSN"], "select pg_wal_replay_pause()", timeout=10)
    sb.sql("DR_DB_DSN", "insert into failback_probe values (5, 'written while replay paused')")
    log = os.path.join(runs, "catch-up-refused.jsonl")
    p = drbook(sb, "run", FAILBACK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
               *failback_params(sb, catch_up_timeout="2s"))
    if not c.eq(p.returncode, 1, "the switch fails at catch-up (exit 1)"):
        show(p)
    c.eq(run_end(log).get("status"), "rolled_back", "run.end status rolled_back")
    c.eq(((step_result(log, "old-primary") or {}).get("state"),
          (step_result(log, "rebuild-primary") or {}).get("action")),
         ("replica", "follows the new primary"),
         "the second run found prod-db already following prod-db-eu")
    c.eq(pgrole(v["DR_DB_DSN"])[:2] if pgrole(v["DR_DB_DSN"]) else None, ("f", "off"),
         "prod-db-eu is writable, out of recovery")
    c.ok(app_can_log_in(v["DR_DB_DSN"]), "prod-db-eu is unfenced again: the app role logs in")
    sb.sql("DR_DB_DSN", "insert into failback_probe values (6, 'after the rollback')")
    now = layout(sb)
    c.eq((now["rds/prod-db"], now["dns/api"]), (("available", "prod-db-eu", True),
                                                [v["DRB_SANDBOX_API_TARGET_EU"]]),
         "prod-db is still a replica, DNS still on eu-west-1")
    psql(v["PRIMARY_DB_DSN"], "select pg_wal_replay_resume()", timeout=10)


    rds = sb.client("rds")
    rds.promote_read_replica(DBInstanceIdentifier="prod-db")
    c.ok(wait_for(lambda: rds_instance(sb, "prod-db")["DBInstanceStatus"] == "available" and
                  (pgrole(v["PRIMARY_DB_DSN"]) or ("",))[0] == "f", 30),
         "prod-db promoted by hand (writable)")
    p = drbook(sb, "run", FAILBACK, "--drill", "--yes", "--runs-dir", runs,
               *failback_params(sb))
    c.eq(p.returncode, 3, "a fail-back is refused: prod-db descends from prod-db-eu (exit 3)")
    c.ok("timeline" in p.stderr and "not the stale old primary" in p.stderr,
         "the refusal names the timelines")
    c.ok(set_fence(sb, True), "prod-db-eu fenced by hand")
    p = drbook(sb, "run", FAILBACK, "--drill", "--yes", "--runs-dir", runs,
               *failback_params(sb))
    c.eq(p.returncode, 3, "a fail-back is refused: prod-db-eu is fenced (exit 3)")
    c.ok("is fenced (its application roles locked out)" in p.stderr and
         "do not delete prod-db" in p.stderr,
         "the refusal says a switch ran already")
    c.eq(rds_instance(sb, "prod-db")["DBInstanceStatus"], "available",
         "prod-db is still there")

    # no prod-db at all: the fail-back builds one
    c.ok(wait_for(lambda: sb.status()[1].get("standby"), 30), "prod-db's standby is built")
    rds.delete_db_instance(DBInstanceIdentifier="prod-db", SkipFinalSnapshot=True)
    c.ok(set_fence(sb, False), "prod-db-eu unfenced by hand")
    p = drbook(sb, "run", FAILBACK, "--drill", "--yes", "--runs-dir", runs,
               *failback_params(sb))
    if not c.eq(p.returncode, 0, "with prod-db absent the fail-back completes"):
        show(p)
    c.eq((pgrole(v["PRIMARY_DB_DSN"]) or ())[:2], ("f", "off"), "prod-db's endpoint: a writer")
    c.eq((pgrole(v["DR_DB_DSN"]) or ())[:1], ("t",), "prod-db-eu: a replica again")
    c.eq(sb.value("PRIMARY_DB_DSN", "select string_agg(id::text, ',' order by id) from "
                  "failback_probe"), "4,5,6",
         "every write taken on prod-db-eu, also during the refused switch, is on prod-db")
    print("fail-back guards took %.1fs" % (time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    sys.exit(run_test(body, extra_env={"DRB_SANDBOX_DNS_TTL": "5"}))
