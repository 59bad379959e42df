#!/usr/bin/env python3
# The glue between the emulated control plane and the real data plane: ECS converging on the
# desired count, Route 53 PENDING -> INSYNC, forced-failover reboots moving the writer
# endpoint (planned and after `inject primary`), point-in-time and snapshot restores that
# bring back rows lost to `inject corruption`, and `inject region-outage`.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox"))

from botocore.exceptions import ClientError  # noqa: E402
from sandbox_lib.common import dsn, parse_rfc3339, port_in_use  # noqa: E402
from sandbox_lib.testkit import run_test, wait_for, wait_instance  # noqa: E402


def port_of(dsn_text):
    return int(dsn_text.split("port=")[1].split()[0])


def service(ecs, cluster, name):
    s = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
    return s["desiredCount"], s["runningCount"]


def check_ecs(sb, c):
    ecs_eu = sb.client("ecs", "eu-west-1")
    ecs_eu.update_service(cluster="prod-eu", service="api", desiredCount=3)
    c.eq(service(ecs_eu, "prod-eu", "api"), (3, 1), "right after UpdateService: running 1 of 3")
    ok = wait_for(lambda: service(ecs_eu, "prod-eu", "api") == (3, 3), 10, 0.2)
    c.ok(ok, "running follows desired (3) after a short delay")
    c.eq(len(ecs_eu.list_tasks(cluster="prod-eu", serviceName="api")["taskArns"]), 3,
         "three tasks listed for prod-eu/api")
    s = ecs_eu.describe_services(cluster="prod-eu", services=["api"])["services"][0]
    c.eq(s["deployments"][0]["rolloutState"], "COMPLETED", "deployment completed")
    ecs_eu.update_service(cluster="prod-eu", service="api", desiredCount=1)
    c.ok(wait_for(lambda: service(ecs_eu, "prod-eu", "api") == (1, 1), 10, 0.2),
         "scaling down stops the extra tasks")

    ecs_us = sb.client("ecs")
    res = sb.inject("ecs-task", "--service", "payment")
    c.ok(res["task"].startswith("arn:aws:ecs:us-east-1:"), "inject ecs-task stops a task")
    c.eq(service(ecs_us, "prod-us", "payment"), (2, 1), "the service is below desired")
    t = ecs_us.describe_tasks(cluster="prod-us", tasks=[res["task"]])["tasks"][0]
    c.eq(t["lastStatus"], "STOPPED", "the stopped task reports STOPPED")
    c.ok(wait_for(lambda: service(ecs_us, "prod-us", "payment") == (2, 2), 15, 0.2),
         "the scheduler replaces the stopped task")

    # a StopTask through the API and a forced new deployment replace at once
    arn = ecs_us.list_tasks(cluster="prod-us", serviceName="auth")["taskArns"][0]
    ecs_us.stop_task(cluster="prod-us", task=arn, reason="drill")
    c.eq(service(ecs_us, "prod-us", "auth"), (2, 1), "StopTask lowers running")
    ecs_us.update_service(cluster="prod-us", service="auth", forceNewDeployment=True)
    c.ok(wait_for(lambda: service(ecs_us, "prod-us", "auth") == (2, 2), 6, 0.2),
         "a forced new deployment restores the running count")
    arns = ecs_us.list_tasks(cluster="prod-us", serviceName="auth")["taskArns"]
    c.ok(arn not in arns and len(arns) == 2, "the deployment runs two new tasks")


def check_route53(sb, c):
    r53 = sb.client("route53")
    ch = r53.change_resource_record_sets(
        HostedZoneId=sb.vars["DRB_SANDBOX_ZONE_ID"], ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {
                "Name": "drill.example.internal.", "Type": "A", "TTL": 60,
                "ResourceRecords": [{"Value": "127.0.0.1"}]}}]})["ChangeInfo"]
    c.eq(ch["Status"], "PENDING", "a record change starts PENDING")
    st = r53.get_change(Id=ch["Id"])["ChangeInfo"]["Status"]
    c.eq(st, "PENDING", "GetChange right after: PENDING")
    c.ok(wait_for(lambda: r53.get_change(Id=ch["Id"])["ChangeInfo"]["Status"] == "INSYNC", 5),
         "then INSYNC")


def wait_available(sb, ident, timeout=60):
    return wait_instance(sb, ident, lambda d: d["DBInstanceStatus"] in ("available", "failed"),
                         timeout)


def check_failover(sb, c):
    rds = sb.client("rds")
    v = sb.vars
    sb.sql("PRIMARY_DB_DSN", "create table sentinel (id int primary key, at timestamptz "
           "default now()); insert into sentinel values (1)")
    r = rds.reboot_db_instance(DBInstanceIdentifier="prod-db", ForceFailover=True)
    c.eq(r["DBInstance"]["DBInstanceStatus"], "rebooting", "reboot answers 'rebooting'")
    db = wait_available(sb, "prod-db")
    c.eq(db and db["DBInstanceStatus"], "available", "prod-db is available again")
    c.eq(db["AvailabilityZone"], "us-east-1b", "the writer moved to the other AZ")
    c.eq(db["Endpoint"]["Port"], port_of(v["PRIMARY_DB_DSN"]), "same writer endpoint")
    c.eq(sb.value("PRIMARY_DB_DSN", "select pg_is_in_recovery()"), "f",
         "PRIMARY_DB_DSN reaches a server that is not in recovery")
    c.eq(int(sb.value("PRIMARY_DB_DSN", "select inet_server_port()")),
         port_of(v["STANDBY_DB_DSN"]), "... and it is the former standby")
    c.eq(sb.value("PRIMARY_DB_DSN", "select count(*) from sentinel"), "1",
         "the committed row survived the failover")
    sb.sql("PRIMARY_DB_DSN", "insert into sentinel values (2)")
    c.ok(True, "the new writer takes writes")

    # Multi-AZ rebuilds the standby; then scenario 2: the writer crashes, reboot with failover
    rebuilt = wait_for(lambda: sb.status()[1].get("standby") == "prod-db-a", 30)
    c.ok(rebuilt, "the old writer is rebuilt as the new synchronous standby")
    res = sb.inject("primary")
    c.eq(res["killed"], "prod-db-b", "inject primary kills the current writer")
    try:
        sb.value("PRIMARY_DB_DSN", "select 1")
        c.ok(False, "the writer endpoint fails while the writer is down")
    except Exception:
        c.ok(True, "the writer endpoint fails while the writer is down")
    rds.reboot_db_instance(DBInstanceIdentifier="prod-db", ForceFailover=True)
    db = wait_available(sb, "prod-db")
    c.eq(db and db["DBInstanceStatus"], "available", "failover after the crash completes")
    c.eq(sb.value("PRIMARY_DB_DSN", "select count(*) from sentinel"), "2",
         "no committed write lost (RPO 0)")
    c.eq(sb.value("PRIMARY_DB_DSN", "select pg_is_in_recovery()"), "f", "writer is writable")


def check_restores(sb, c):
    rds = sb.client("rds")
    res = sb.inject("corruption")
    corr = dict(res)
    c.ok(corr["rows_deleted"] > 0, "inject corruption deletes rows (%d)" % corr["rows_deleted"])
    stored = sb.vars and os.path.exists(os.path.join(sb.dir, "corruption.json"))
    c.ok(stored, "corruption.json is written")
    c.eq(int(sb.value("PRIMARY_DB_DSN", "select count(*) from orders")), corr["orders_after"],
         "the rows are gone on the writer")
    rt = parse_rfc3339(corr["restore_to"])
    rds.restore_db_instance_to_point_in_time(
        SourceDBInstanceIdentifier="prod-db", TargetDBInstanceIdentifier="prod-db-pitr",
        RestoreTime=rt, DBInstanceClass="db.t3.micro")
    db = wait_available(sb, "prod-db-pitr", 90)
    c.eq(db and db["DBInstanceStatus"], "available", "the PITR instance becomes available")
    port = db["Endpoint"]["Port"]
    c.ok(port not in [port_of(sb.vars[k]) for k in ("PRIMARY_DB_DSN", "DR_DB_DSN",
                                                    "STANDBY_DB_DSN")],
         "the restored instance has a port of its own")
    restored = dsn(port, sb.vars["DRB_SANDBOX_PG_PASSWORD"])
    c.eq(int(sb.value(restored, "select count(*) from orders")), corr["orders_before"],
         "the restored instance has the deleted rows back")
    c.eq(sb.value(restored, "select pg_is_in_recovery()"), "f", "and is promoted")
    c.eq(sb.value(restored, "select count(*) from sentinel"), "2",
         "and has what was committed before the restore time (across both failovers)")

    try:
        rds.restore_db_instance_to_point_in_time(
            SourceDBInstanceIdentifier="prod-db", TargetDBInstanceIdentifier="prod-db-x",
            RestoreTime=parse_rfc3339("2001-01-01T00:00:00Z"))
        code = None
    except ClientError as e:
        code = e.response["Error"]["Code"]
    c.eq(code, "InvalidRestoreFault", "a restore time before the base backup is refused")

    rds.delete_db_instance(DBInstanceIdentifier="prod-db-pitr", SkipFinalSnapshot=True)
    c.ok(wait_for(lambda: not port_in_use(port), 20), "deleting the restored instance stops "
         "its server")

    rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier="prod-db-snap",
                                             DBSnapshotIdentifier=sb.vars["DRB_SANDBOX_SNAPSHOT"])
    db = wait_available(sb, "prod-db-snap", 90)
    c.eq(db and db["DBInstanceStatus"], "available", "the snapshot restore becomes available")
    snap = dsn(db["Endpoint"]["Port"], sb.vars["DRB_SANDBOX_PG_PASSWORD"])
    c.eq(sb.value(snap, "select count(*) from orders"), "300",
         "the snapshot restore has the seeded orders")
    c.eq(sb.value(snap, "select to_regclass('sentinel') is null"), "t",
         "and nothing written after the snapshot")


def check_region_outage(sb, c):
    r53 = sb.client("route53")
    v = sb.vars

    def healthy(hc):
        obs = r53.get_health_check_status(HealthCheckId=hc)["HealthCheckObservations"]
        return all(o["StatusReport"]["Status"].startswith("Success") for o in obs)
    c.ok(healthy(v["DRB_SANDBOX_HEALTH_CHECK_US"]), "before: us-east-1 healthy")
    res = sb.inject("region-outage")
    c.eq(sorted(res["stopped_servers"]), ["prod-db-a", "prod-db-b"],
         "region-outage stops the us-east-1 primary and standby")
    c.ok(not healthy(v["DRB_SANDBOX_HEALTH_CHECK_US"]), "the us-east-1 health check fails")
    c.ok(healthy(v["DRB_SANDBOX_HEALTH_CHECK_EU"]), "the eu-west-1 health check stays healthy")
    try:
        sb.value("PRIMARY_DB_DSN", "select 1")
        c.ok(False, "the us-east-1 writer is unreachable")
    except Exception:
        c.ok(True, "the us-east-1 writer is unreachable")
    c.eq(sb.value("DR_DB_DSN", "select pg_is_in_recovery()"), "t",
         "the eu-west-1 replica still answers (in recovery)")
    ecs = sb.client("ecs")
    c.eq(service(ecs, "prod-us", "api"), (2, 0), "prod-us tasks are gone and not replaced")
    try:
        sb.client("rds").reboot_db_instance(DBInstanceIdentifier="prod-db", ForceFailover=True)
        code = None
    except ClientError as e:
        code = e.response["Error"]["Code"]
    c.eq(code, "InvalidDBInstanceState", "a failover inside the failed region is refused")
    rds_eu = sb.client("rds", "eu-west-1")
    rds_eu.promote_read_replica(DBInstanceIdentifier="prod-db-eu")
    db = wait_instance(sb, "prod-db-eu", lambda d: d["DBInstanceStatus"] == "available" and
                       not d.get("ReadReplicaSourceDBInstanceIdentifier"), 30, "eu-west-1")
    c.ok(db is not None, "the DR replica can be promoted during the outage")
    c.eq(sb.value("DR_DB_DSN", "select count(*) from sentinel"), "2",
         "the DR database has the writes made before the outage")


def body(sb, c):
    t0 = time.monotonic()
    sb.up()
    check_ecs(sb, c)
    check_route53(sb, c)
    check_failover(sb, c)
    check_restores(sb, c)
    check_region_outage(sb, c)
    rc, st = sb.status()
    c.eq(st.get("errors"), [], "the launcher recorded no background error")
    print("glue checks took %.1fs" % (time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    # a short replacement delay keeps the test quick; the default (10 s) is for drills
    sys.exit(run_test(body, {"DRB_SANDBOX_ECS_REPLACE_DELAY": "2"}))
