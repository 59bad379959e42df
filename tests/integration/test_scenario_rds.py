#!/usr/bin/env python3
# Scenario 2 end to end in the sandbox (runbooks/rds-multi-az-failover.yaml): a planned drill
# (the writer is up: a sentinel written before the forced-failover reboot is found after it,
# RPO 0) and, in the same sandbox once the old writer is rebuilt as the standby, a crash
# (`inject primary`): the writer endpoint reaches the promoted standby and takes writes, every
# acknowledged heartbeat survived, and the run reports its RPO bound. Real end states checked.
# Third, RDS fails over by itself (`inject rds-failover`) while the application's heartbeat
# writes through the endpoint: the runbook reads the failover in RDS's events and verifies
# instead of forcing a second failover (the writer stays where RDS put it, no reboot call, the
# decision in the audit log), the endpoint's DNS answer names the new writer's host, the
# heartbeat reconnected and its rows continued on the new writer.
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_scenario_region import (RUNBOOKS, Heartbeat, audit_verify, audit_events,  # noqa: E402
                                  drbook, make_sentinel_table, now_rfc3339, parse_ts, run_end,
                                  show, step_result)
from sandbox_lib.testkit import param_args, rds_instance, run_test, wait_for  # noqa: E402

RUNBOOK = os.path.join(RUNBOOKS, "rds-multi-az-failover.yaml")


def params(sb, **extra):
    p = {"topic_arn": sb.vars["DRB_SANDBOX_TOPIC_ARN"],
         "account": sb.vars["DRB_SANDBOX_ACCOUNT_ID"]}
    p.update(extra)
    return param_args(p)


def status(sb):
    return sb.status()[1]


def check_common(sb, c, log, p, az_before, what):
    if not c.eq(p.returncode, 0, "%s: the run succeeds (exit 0)" % what):
        show(p)
    db = rds_instance(sb, "prod-db")
    c.ok(db["DBInstanceStatus"] == "available" and db["AvailabilityZone"] != az_before,
         "%s: RDS prod-db available, writer moved %s -> %s" % (what, az_before,
                                                               db["AvailabilityZone"]))
    c.eq(sb.value("PRIMARY_DB_DSN", "select pg_is_in_recovery()"), "f",
         "%s: the writer endpoint reaches a primary" % what)
    sb.sql("PRIMARY_DB_DSN", "create table if not exists drill_writes (id serial primary key);"
           " insert into drill_writes default values")
    c.ok(int(sb.value("PRIMARY_DB_DSN", "select count(*) from drill_writes")) >= 1,
         "%s: a client write through the writer endpoint commits" % what)
    w = step_result(log, "verify-write") or {}
    c.eq(sb.value("PRIMARY_DB_DSN", "select count(*) from drbook.sentinel where id = '%s'" %
                  w.get("id", "")), "1", "%s: the run's verify write is there" % what)
    c.eq(audit_verify(sb, log).returncode, 0, "%s: drbook audit verify: intact" % what)
    end = run_end(log)
    c.eq(end.get("status"), "succeeded", "%s: run.end succeeded" % what)
    tg = end.get("targets") or {}
    c.eq((tg.get("rto_s"), tg.get("rpo_s")), (120, 0), "%s: run.end targets rto 2m, rpo 0"
         % what)
    c.ok(isinstance(end.get("rto_s"), (int, float)) and 0 < end["rto_s"] < 120 and
         tg.get("rto") == "met", "%s: rto_s %r within 2m" % (what, end.get("rto_s")))
    return end


def dns_params(sb):
    return {"endpoint_name": sb.vars["DRB_SANDBOX_WRITER_DNS_NAME"],
            "dns_servers": sb.vars["DRB_SANDBOX_DNS_RESOLVER"]}


def host_of(sb, node):
    return "%s.hosts.%s" % (node, sb.vars["DRB_SANDBOX_ZONE_NAME"])


def calls(log, operation):
    return [e for e in audit_events(log) if e["event"] == "call" and
            e["data"].get("operation") == operation]


def step_status(log, step):
    ends = [e for e in audit_events(log) if e["event"] == "step.end" and e["step"] == step]
    return ends[-1]["data"]["status"] if ends else None


def wait_standby(sb, c):
    # the old writer is rebuilt as the synchronous standby before a second failover can work
    ok = wait_for(lambda: (lambda s: s["standby"] and s["nodes"][s["standby"]]["running"] and
                           s["nodes"][s["standby"]]["in_recovery"])(status(sb)), 90, 1)
    c.ok(ok, "the old writer came back as the synchronous standby")


def check_planned(sb, c, runs):
    make_sentinel_table(sb)
    az = rds_instance(sb, "prod-db")["AvailabilityZone"]
    old_writer = status(sb)["writer"]
    log = os.path.join(runs, "planned.jsonl")
    p = drbook(sb, "run", RUNBOOK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
               *params(sb, **dns_params(sb)))
    end = check_common(sb, c, log, p, az, "planned")
    d = step_result(log, "rds-state") or {}
    c.eq((d.get("already"), d.get("decision"), d.get("failover_events")),
         (False, "force-failover", 0), "planned: no failover by RDS in its events: forced")
    c.eq(len(calls(log, "RebootDBInstance")), 1, "planned: one RebootDBInstance call")
    before = (step_result(log, "endpoint-dns-before") or {}).get("answers")
    after = (step_result(log, "endpoint-dns") or {}).get("answers")
    c.eq((before, after), ([host_of(sb, old_writer)], [host_of(sb, status(sb)["writer"])]),
         "planned: the writer endpoint's DNS answer moved to the new writer's host")
    ev = sb.client("rds").describe_events(SourceIdentifier="prod-db", SourceType="db-instance",
                                          Duration=30, EventCategories=["failover"])["Events"]
    c.eq([e["Message"] for e in ev], ["Multi-AZ instance failover started.",
                                      "Multi-AZ instance failover completed."],
         "planned: RDS DescribeEvents shows the forced failover (category filter applied)")
    c.ok(status(sb)["writer"] != old_writer, "planned: the real writer changed (%s -> %s)" %
         (old_writer, status(sb)["writer"]))
    s = step_result(log, "sentinel") or {}
    c.ok(s.get("written") is True, "planned: a sentinel was written before the failover")
    c.eq(sb.value("PRIMARY_DB_DSN", "select count(*) from drbook.sentinel where id = '%s'" %
                  s.get("id", "")), "1", "planned: that sentinel is on the new writer")
    c.eq(sb.value("STANDBY_DB_DSN", "select pg_is_in_recovery()"), "f",
         "planned: the former standby (prod-db-b) is the primary now")
    c.eq((end.get("rpo_s"), (end.get("targets") or {}).get("rpo")), (0, "met"),
         "planned: RPO 0 from the sentinel, target met")
    c.eq((step_result(log, "measure-rpo") or {}).get("method"), "sentinel",
         "planned: RPO measured by the sentinel")


def check_crash(sb, c, runs):
    wait_standby(sb, c)
    az = rds_instance(sb, "prod-db")["AvailabilityZone"]
    hb = Heartbeat(sb).start()
    c.ok(wait_for(lambda: len(hb.rows) >= 5, 20), "heartbeats are being written")
    incident = now_rfc3339()
    t_incident = parse_ts(incident)
    try:
        killed = sb.inject("primary")["killed"]
    finally:
        time.sleep(0.5)
        hb.stop()
    acked = [r for r in hb.rows if r[1] <= t_incident]
    log = os.path.join(runs, "crash.jsonl")
    p = drbook(sb, "run", RUNBOOK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
               "--incident-start", incident, *params(sb, incident_start=incident))
    end = check_common(sb, c, log, p, az, "crash")
    c.ok(status(sb)["writer"] != killed, "crash: the killed server (%s) is no longer the writer"
         % killed)
    present = set(sb.value("PRIMARY_DB_DSN", "select string_agg(id, ',') from drbook.sentinel "
                           "where note = 'heartbeat'").split(","))
    lost = [r for r in hb.rows if r[0] not in present]
    c.ok(len(hb.rows) >= 5 and not lost, "crash: every acknowledged heartbeat (%d) survived "
         "the failover (synchronous standby)" % len(hb.rows))
    s = step_result(log, "sentinel") or {}
    c.eq(s.get("written"), False, "crash: no sentinel could be written before (writer down)")
    m = step_result(log, "measure-rpo") or {}
    newest = max(r[1] for r in acked) if acked else None
    rpo = end.get("rpo_s")
    c.ok(newest is not None and m.get("method") == "bound" and isinstance(rpo, (int, float))
         and abs(rpo - (t_incident - newest)) < 0.05,
         "crash: rpo_s %r is the bound incident - newest heartbeat (%s)" %
         (rpo, None if newest is None else round(t_incident - newest, 3)))
    c.eq((end.get("targets") or {}).get("rpo"),
         "met" if rpo is not None and rpo <= 0 else "missed" if rpo is not None else "unknown",
         "crash: targets.rpo follows the bound against the 0 s target")
    start = parse_ts(audit_events(log)[0]["ts"])
    c.ok(end.get("rto_s", 0) > start - t_incident, "crash: RTO counts from the incident")


def check_rds_failed_over(sb, c, runs):
    wait_standby(sb, c)
    hb = Heartbeat(sb).start()
    try:
        c.ok(wait_for(lambda: len(hb.rows) >= 5, 20), "rds-failover: heartbeats are written")
        incident = now_rfc3339()
        t_incident = parse_ts(incident)
        inj = sb.inject("rds-failover")
        c.ok(inj["az_after"] != inj["az_before"], "rds-failover: RDS moved the writer %s -> %s"
             % (inj["az_before"], inj["az_after"]))
        ev = sb.client("rds").describe_events(SourceIdentifier="prod-db",
                                              SourceType="db-instance",
                                              StartTime=incident)["Events"]
        c.ok([e["Message"] for e in ev if "failover" in e["EventCategories"]][-1:] ==
             ["Multi-AZ instance failover completed."],
             "rds-failover: DescribeEvents shows RDS's own failover since the incident")
        log = os.path.join(runs, "rds-failed-over.jsonl")
        p = drbook(sb, "run", RUNBOOK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
                   "--incident-start", incident,
                   *params(sb, incident_start=incident, heartbeat_note="heartbeat",
                           **dns_params(sb)))
        time.sleep(1)
    finally:
        hb.stop()
    what = "rds-failover"
    if not c.eq(p.returncode, 0, "%s: the run succeeds (exit 0)" % what):
        show(p)
    d = step_result(log, "rds-state") or {}
    c.eq((d.get("already"), d.get("by_events"), d.get("decision")), (True, True, "verify"),
         "%s: the audit log holds the decision: RDS failed over by itself, verify (%s)" %
         (what, d.get("reason")))
    c.eq(step_status(log, "failover"), "skipped", "%s: the failover step was skipped" % what)
    c.eq(calls(log, "RebootDBInstance"), [], "%s: no RebootDBInstance call was made" % what)
    db = rds_instance(sb, "prod-db")
    c.eq((db["DBInstanceStatus"], db["AvailabilityZone"]), ("available", inj["az_after"]),
         "%s: the writer stays where RDS put it (%s)" % (what, inj["az_after"]))
    c.eq(status(sb)["writer"], inj["new_writer"], "%s: the real writer is still %s" %
         (what, inj["new_writer"]))
    c.eq(sb.value("PRIMARY_DB_DSN", "select pg_is_in_recovery()"), "f",
         "%s: the writer endpoint reaches a primary" % what)
    c.eq(step_status(log, "endpoint-dns"), "skipped", "%s: no wait for a DNS change the run "
         "did not cause" % what)
    dns = step_result(log, "endpoint-dns-fresh") or {}
    c.eq(dns.get("answers"), [host_of(sb, inj["new_writer"])],
         "%s: the writer endpoint's DNS answer, once cached answers expired, names the new "
         "writer's host (first answer %s)" % (what, dns.get("first_answers")))
    r = step_result(log, "app-reconnected") or {}
    c.ok(r.get("reconnected") is True and int(r.get("heartbeats", 0)) >= 1,
         "%s: the run saw the application's heartbeat through the endpoint (%s)" % (what, r))
    present = set(sb.value("PRIMARY_DB_DSN", "select string_agg(id, ',') from drbook.sentinel "
                           "where note = 'heartbeat'").split(","))
    lost = [row for row in hb.rows if row[0] not in present]
    after = [row for row in hb.rows if row[1] > t_incident + 0.5]
    c.ok(not lost, "%s: every acknowledged heartbeat (%d) is on the new writer" %
         (what, len(hb.rows)))
    c.ok(len(after) >= 5, "%s: the heartbeat's rows continued through the endpoint after the "
         "failover (%d)" % (what, len(after)))
    m = step_result(log, "measure-rpo") or {}
    c.eq((m.get("method"), m.get("measured_to_source")), ("bound", "RDS failover event"),
         "%s: RPO bounded at RDS's failover start" % what)
    c.ok(isinstance(m.get("rpo_s"), (int, float)) and m["rpo_s"] < 1.0,
         "%s: RPO bound %r under a second (heartbeat every 0.2 s)" % (what, m.get("rpo_s")))
    c.eq(audit_verify(sb, log).returncode, 0, "%s: drbook audit verify: intact" % what)


def check_failed_az(sb, c, runs):
    """No failover event since the incident, but the writer is already outside the zone the
    operator names as failed: verify, no reboot."""
    az = rds_instance(sb, "prod-db")["AvailabilityZone"]
    bad = "us-east-1a" if az == "us-east-1b" else "us-east-1b"
    incident = now_rfc3339()
    log = os.path.join(runs, "failed-az.jsonl")
    p = drbook(sb, "run", RUNBOOK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
               *params(sb, incident_start=incident, failed_az=bad))
    if not c.eq(p.returncode, 0, "failed_az: the run succeeds (exit 0)"):
        show(p)
    d = step_result(log, "rds-state") or {}
    c.eq((d.get("already"), d.get("by_events"), d.get("by_zone"), d.get("decision")),
         (True, False, True, "verify"), "failed_az: the writer in %s is outside %s: verify (%s)"
         % (az, bad, d.get("reason")))
    c.eq(calls(log, "RebootDBInstance"), [], "failed_az: no RebootDBInstance call")
    c.eq(rds_instance(sb, "prod-db")["AvailabilityZone"], az,
         "failed_az: the writer stays in %s" % az)


def body(sb, c):
    t0 = time.monotonic()
    sb.up()
    runs = tempfile.mkdtemp(prefix="runs-", dir=sb.dir)
    check_planned(sb, c, runs)
    check_crash(sb, c, runs)
    check_rds_failed_over(sb, c, runs)
    check_failed_az(sb, c, runs)
    print("rds scenario took %.1fs" % (time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    sys.exit(run_test(body))
