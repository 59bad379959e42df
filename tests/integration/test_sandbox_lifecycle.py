#!/usr/bin/env python3
# The sandbox's life cycle: up (timed) / status / up again / down, the seeded cloud as seen by
# the AWS CLI and boto3 with the sandbox credentials, signature checking, real streaming
# replication, and PromoteReadReplica making the real replica writable.
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox"))

from botocore.exceptions import ClientError  # noqa: E402
from sandbox_lib.testkit import (dead_and_free, rds_instance, run_test,  # noqa: E402
                                 wait_for, wait_instance)

AUTH_ERRORS = ("SignatureDoesNotMatch", "InvalidClientTokenId")
# JSON-protocol services (ECS) name the same refusals as real AWS does
JSON_AUTH_ERRORS = ("InvalidSignatureException", "UnrecognizedClientException")


def refused_code(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


def body(sb, c):
    took, st = sb.up()
    c.ok(took < 60, "up is ready in %.1fs (< 60 s)" % took)
    c.eq(st.get("state"), "up", "up prints the status")
    rc, st = sb.status()
    c.eq((rc, st["state"]), (0, "up"), "status exits 0 and reports up")
    c.eq(sorted(st["nodes"]), ["prod-db-a", "prod-db-ap", "prod-db-b", "prod-db-eu"],
         "four servers run")
    pid = st["launcher_pid"]

    t0 = time.monotonic()
    p = sb.run("up")
    c.ok(p.returncode == 0 and time.monotonic() - t0 < 10, "up again is a quick no-op, exit 0")
    rc, st2 = sb.status()
    c.eq(st2["launcher_pid"], pid, "up again keeps the same launcher")

    env_sh = os.path.join(sb.dir, "env.sh")
    c.eq(oct(os.stat(env_sh).st_mode & 0o777), "0o600", "env.sh is private (holds secrets)")
    p = sb.run("env")
    c.ok(p.returncode == 0 and "export AWS_ENDPOINT_URL=http://127.0.0.1:" in p.stdout and
         "export PRIMARY_DB_DSN=" in p.stdout, "env prints export lines")
    v = sb.vars
    for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PRIMARY_DB_DSN",
              "DR_DB_DSN", "STANDBY_DB_DSN", "DRB_SANDBOX_ZONE_ID", "DRB_SANDBOX_TOPIC_ARN",
              "DRB_SANDBOX_HEALTH_CHECK_US", "DRB_SANDBOX_HEALTH_CHECK_EU",
              "DRB_SANDBOX_PG_PASSWORD"):
        c.ok(bool(v.get(k)), "env.json has %s" % k)
    c.eq(v.get("AWS_DEFAULT_REGION"), "us-east-1", "default region")

    # --- the AWS CLI sees the seeded platform
    dbs = sb.aws_cli("rds", "describe-db-instances", "--region", "us-east-1")["DBInstances"]
    prod = [d for d in dbs if d["DBInstanceIdentifier"] == "prod-db"]
    c.ok(len(prod) == 1 and prod[0]["MultiAZ"] and prod[0]["Engine"] == "postgres",
         "aws rds describe-db-instances: prod-db, postgres, Multi-AZ")
    svcs = sb.aws_cli("ecs", "list-services", "--cluster", "prod-us")["serviceArns"]
    c.eq(sorted(a.split("/")[-1] for a in svcs),
         sorted(["api", "auth", "training", "content", "payment", "ai-ml"]),
         "aws ecs list-services prod-us")
    zones = sb.aws_cli("route53", "list-hosted-zones")["HostedZones"]
    c.ok(any(z["Name"] == "example.internal." for z in zones), "aws route53 list-hosted-zones")
    topics = sb.aws_cli("sns", "list-topics")["Topics"]
    c.ok(any(t["TopicArn"] == v["DRB_SANDBOX_TOPIC_ARN"] for t in topics), "aws sns list-topics")

    # --- boto3 sees the same, with real endpoints
    rds_eu = sb.client("rds", "eu-west-1")
    rep = rds_instance(sb, "prod-db-eu", "eu-west-1")
    dr_port = int(v["DR_DB_DSN"].split("port=")[1].split()[0])
    c.eq((rep["Endpoint"]["Address"], rep["Endpoint"]["Port"]), ("127.0.0.1", dr_port),
         "prod-db-eu endpoint is the real replica")
    c.ok(rep.get("ReadReplicaSourceDBInstanceIdentifier", "").endswith(":db:prod-db"),
         "prod-db-eu is a read replica of prod-db")
    ecs_eu = sb.client("ecs", "eu-west-1")
    d = ecs_eu.describe_services(cluster="prod-eu", services=["api", "payment"])["services"]
    c.eq([(s["desiredCount"], s["runningCount"]) for s in d], [(1, 1), (1, 1)],
         "prod-eu services run 1 task each")
    ecs_us = sb.client("ecs")
    d = ecs_us.describe_services(cluster="prod-us", services=["ai-ml"])["services"][0]
    c.eq((d["desiredCount"], d["runningCount"]), (2, 2), "prod-us ai-ml runs 2 tasks")
    tasks = ecs_us.list_tasks(cluster="prod-us", serviceName="auth")["taskArns"]
    c.eq(len(tasks), 2, "list_tasks per service")
    r53 = sb.client("route53")
    rr = r53.list_resource_record_sets(HostedZoneId=v["DRB_SANDBOX_ZONE_ID"],
                                       StartRecordName="api.example.internal.",
                                       StartRecordType="CNAME")["ResourceRecordSets"][0]
    c.eq((rr["Name"], rr["Type"], rr["TTL"], rr["ResourceRecords"][0]["Value"]),
         ("api.example.internal.", "CNAME", 60, v["DRB_SANDBOX_API_TARGET_US"]),
         "api record points at us-east-1, TTL 60")
    hs = r53.get_health_check_status(HealthCheckId=v["DRB_SANDBOX_HEALTH_CHECK_US"])
    c.ok(all(o["StatusReport"]["Status"].startswith("Success")
             for o in hs["HealthCheckObservations"]), "us-east-1 health check healthy")
    ident = sb.client("sts").get_caller_identity()
    c.ok(ident["Arn"].endswith(":user/drbook"), "credentials are the IAM user drbook")

    # --- signature checking is on
    bad = v["AWS_SECRET_ACCESS_KEY"][:-4] + "XXXX"
    c.ok(refused_code(lambda: sb.client("sts", secret=bad).get_caller_identity())
         in AUTH_ERRORS, "wrong secret refused by STS")
    c.ok(refused_code(lambda: sb.client("ecs", secret=bad).list_clusters()) in
         JSON_AUTH_ERRORS, "wrong secret refused by ECS")
    c.ok(refused_code(lambda: sb.client("route53", secret=bad).list_hosted_zones())
         in AUTH_ERRORS, "wrong secret refused by Route 53")
    c.ok(refused_code(lambda: sb.client("iam", secret=bad).list_users()) in AUTH_ERRORS,
         "wrong secret refused by IAM")
    c.ok(refused_code(lambda: sb.client("rds", secret=bad).describe_db_instances())
         in AUTH_ERRORS, "wrong secret refused by RDS")
    c.ok(refused_code(lambda: sb.client("sns", key="AKIAUNKNOWNKEY000000").list_topics())
         in AUTH_ERRORS, "unknown access key refused by SNS")
    p = sb.run("status")
    import urllib.request
    import urllib.error
    try:
        urllib.request.urlopen(urllib.request.Request(
            v["AWS_ENDPOINT_URL"] + "/moto-api/reset-auth", data=b"inf", method="POST"),
            timeout=5)
        moto_api = 200
    except urllib.error.HTTPError as e:
        moto_api = e.code
    c.eq(moto_api, 403, "moto-api (which could switch auth off) is refused")

    # --- the replica really streams; the standby is synchronous
    token = uuid.uuid4().hex
    sb.sql("PRIMARY_DB_DSN", "create table if not exists probe (t text primary key, "
           "at timestamptz default now()); insert into probe (t) values ('%s')" % token)
    c.eq(sb.value("STANDBY_DB_DSN", "select count(*) from probe where t = '%s'" % token), "1",
         "the sync standby has the row as soon as the commit returns")
    got = wait_for(lambda: sb.value("DR_DB_DSN", "select count(*) from probe where t = '%s'"
                                    % token) == "1", 15)
    c.ok(got, "the eu-west-1 replica receives the row by streaming")
    c.eq(sb.value("DR_DB_DSN", "select pg_is_in_recovery()"), "t", "the replica is in recovery")

    # --- PromoteReadReplica promotes the real replica
    r = rds_eu.promote_read_replica(DBInstanceIdentifier="prod-db-eu")["DBInstance"]
    c.eq(r["DBInstanceStatus"], "modifying", "PromoteReadReplica answers 'modifying'")
    db = wait_instance(sb, "prod-db-eu", lambda d: d["DBInstanceStatus"] == "available" and
                       not d.get("ReadReplicaSourceDBInstanceIdentifier"), 30, "eu-west-1")
    c.ok(db is not None, "prod-db-eu becomes available without a replica source")
    c.eq(sb.value("DR_DB_DSN", "select pg_is_in_recovery()"), "f",
         "the real replica left recovery")
    sb.sql("DR_DB_DSN", "insert into probe (t) values ('eu-%s')" % token)
    c.eq(sb.value("DR_DB_DSN", "select count(*) from probe where t = 'eu-%s'" % token), "1",
         "the promoted replica takes writes")
    c.eq(rds_instance(sb, "prod-db").get("ReadReplicaDBInstanceIdentifiers"),
         ["arn:aws:rds:ap-southeast-1:123456789012:db:prod-db-ap"],
         "prod-db no longer lists the promoted replica (only prod-db-ap)")

    # --- down stops everything; afterwards the CLI says so
    pids, ports = sb.recorded_pids_and_ports()
    c.ok(len(pids) == 5 and len(ports) >= 6, "pid files name the launcher and 4 postmasters")
    p = sb.down()
    c.eq(p.returncode, 0, "down exits 0")
    alive, busy = dead_and_free(pids, ports)
    c.ok(not alive and not busy, "no process alive (%s), no port in use (%s)" % (alive, busy))
    rc, st = sb.status()
    c.eq((rc, st["state"]), (1, "down"), "status after down: exit 1, state down")
    c.ok(sb.run("inject", "primary").returncode != 0, "inject on a stopped sandbox fails")
    c.eq(sb.down().returncode, 0, "down again is a no-op")


if __name__ == "__main__":
    sys.exit(run_test(body))
