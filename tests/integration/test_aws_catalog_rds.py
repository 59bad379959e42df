#!/usr/bin/env python3
"""The catalog additions for RDS, Application Auto Scaling and ECR (DESIGN.md "Catalog additions
for the seed's whole platform"; issue 11 point 6 for the restores) against a standalone moto
(tests/tools/motoserver.py), each action run by `drbook run` in small runbooks:

- every action's result fields, and the end state read back with boto3 (an independent client):
  the read replica's source, class, zone, security groups, subnet and parameter groups and tags;
  the modified instance; the snapshots and the copy; the restored instances' placement; the
  scalable target's minimum and maximum; the ECR image's digest;
- the wire: each request drbook recorded in the audit log (call events) equals what botocore's
  own serializer makes of the same call from the service model (Query lists as
  VpcSecurityGroupIds.VpcSecurityGroupId.N, tags as Tags.Tag.N.Key/Value, JSON 1.1 bodies);
- idempotent in effect: the replica, the snapshot and the copy asked for again are the same
  objects, not errors; a name taken by something else is an error;
- an error case for each action: a missing resource (or bad input) fails the run with exit 1
  and a clear message naming it; ECR's missing repository and missing image are both
  not_found and told apart by the AWS code in the message.
Prints "N passed, M failed"."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from motoserver import MotoServer  # noqa: E402

DRBOOK = os.environ["DRBOOK"]
passed = failed = 0


def check(cond, msg):
    global passed, failed
    print(("ok   - " if cond else "FAIL - ") + msg, flush=True)
    passed += bool(cond)
    failed += not cond


def wire(params):
    """Query params as they go on the wire (all text): a recorded request's, or botocore's
    body (which keeps integers as numbers until it encodes them)."""
    out = {}
    for k, v in params.items():
        if isinstance(v, bool):
            out[k] = "true" if v else "false"
        else:
            out[k] = str(v)
    return out


class Runner:
    def __init__(self, env, tmp):
        self.env, self.tmp, self.n = env, tmp, 0

    def run(self, steps, extra=""):
        self.n += 1
        name = f"rb{self.n}"
        rb = os.path.join(self.tmp, name + ".yaml")
        with open(rb, "w") as f:
            f.write(f"version: 1\nname: {name}\n{extra}steps:\n{steps}")
        log = os.path.join(self.tmp, name + ".jsonl")
        p = subprocess.run([DRBOOK, "run", rb, "--audit", log, "--quiet"], cwd=self.tmp,
                           env=self.env, capture_output=True, text=True, timeout=120)
        recs = [json.loads(x) for x in open(log)] if os.path.exists(log) else []
        ends = {r["step"]: r["data"] for r in recs if r["event"] == "step.end"}
        calls = [r["data"] for r in recs if r["event"] == "call"]
        return p, ends, calls


def main():
    import botocore.serialize
    import botocore.session

    session = botocore.session.get_session()
    models = {s: session.get_service_model(s) for s in ("rds", "application-autoscaling", "ecr")}

    def botocore_query(op, params):
        req = botocore.serialize.create_serializer("query").serialize_to_request(
            params, models["rds"].operation_model(op))
        body = dict(req["body"])
        body.pop("Action")
        body.pop("Version")
        return wire(body)

    def botocore_json(svc, op, params):
        req = botocore.serialize.create_serializer("json").serialize_to_request(
            params, models[svc].operation_model(op))
        return json.loads(req["body"])

    def recorded(calls, op, nth=0):
        got = [c for c in calls if c["operation"] == op]
        return got[nth]["request"] if len(got) > nth else {}

    with MotoServer() as moto:
        tmp = tempfile.mkdtemp(prefix="drb-catalog-rds-")
        r = Runner(moto.env(), tmp)
        rds, ec2 = moto.client("rds"), moto.client("ec2")
        rds_eu = moto.client("rds", region="eu-west-1")
        vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
        subnets = [s["SubnetId"] for s in ec2.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]][:2]
        sg_db = ec2.create_security_group(GroupName="db", Description="db",
                                          VpcId=vpc["VpcId"])["GroupId"]
        sg_app = ec2.create_security_group(GroupName="app-db", Description="app",
                                           VpcId=vpc["VpcId"])["GroupId"]
        rds.create_db_subnet_group(DBSubnetGroupName="db-private",
                                   DBSubnetGroupDescription="private", SubnetIds=subnets)
        rds.create_db_parameter_group(DBParameterGroupName="pg16-dr",
                                      DBParameterGroupFamily="postgres16", Description="dr")
        rds.create_db_instance(DBInstanceIdentifier="prod-db", Engine="postgres",
                               DBInstanceClass="db.r6g.large", AllocatedStorage=20,
                               MasterUsername="dr", MasterUserPassword="secret-pass-1",
                               BackupRetentionPeriod=7, VpcSecurityGroupIds=[sg_db],
                               DBSubnetGroupName="db-private")
        prod_arn = rds.describe_db_instances(
            DBInstanceIdentifier="prod-db")["DBInstances"][0]["DBInstanceArn"]

        # ---- RDS: every action, results and end state -----------------------------------
        p, ends, calls = r.run(f"""  - id: events
    action: aws.rds.describe_events
    with: {{ source_identifier: prod-db, duration: 120 }}
  - id: events-window
    action: aws.rds.describe_events
    with: {{ source_identifier: prod-db, source_type: db-instance,
            start_time: "2026-11-25T04:00:00+01:00", end_time: "2026-11-25T05:00:00Z",
            event_categories: [failover, availability] }}
  - id: replica
    action: aws.rds.create_db_instance_read_replica
    with: {{ id: prod-db-replica, source: prod-db, instance_class: db.r6g.xlarge,
            availability_zone: us-east-1b, vpc_security_group_ids: ["{sg_db}", "{sg_app}"],
            db_subnet_group: db-private, db_parameter_group: pg16-dr, multi_az: false,
            tags: {{ team: dr, drill: 1 }} }}
  - id: replica-again
    action: aws.rds.create_db_instance_read_replica
    with: {{ id: prod-db-replica, source: prod-db, instance_class: db.r6g.xlarge }}
  - id: replica-eu
    action: aws.rds.create_db_instance_read_replica
    with: {{ id: prod-db-eu, source: "{prod_arn}", source_region: us-east-1,
            region: eu-west-1, instance_class: db.r6g.large }}
  - id: modify
    action: aws.rds.modify_db_instance
    with: {{ id: prod-db-replica, instance_class: db.r6g.2xlarge, multi_az: true,
            vpc_security_group_ids: ["{sg_app}"], backup_retention_days: 3,
            db_parameter_group: pg16-dr }}
  - id: snap
    action: aws.rds.create_db_snapshot
    with: {{ snapshot: prod-db-pre-drill, instance: prod-db, tags: {{ kind: drill }} }}
  - id: snap-again
    action: aws.rds.create_db_snapshot
    with: {{ snapshot: prod-db-pre-drill, instance: prod-db }}
  - id: copy
    action: aws.rds.copy_db_snapshot
    with: {{ source: prod-db-pre-drill, target: prod-db-pre-drill-copy, copy_tags: true }}
  - id: copy-again
    action: aws.rds.copy_db_snapshot
    with: {{ source: prod-db-pre-drill, target: prod-db-pre-drill-copy }}
  - id: restore-snap
    action: aws.rds.restore_db_instance_from_snapshot
    with: {{ snapshot: prod-db-pre-drill, target: staging-db, instance_class: db.t3.large,
            vpc_security_group_ids: ["{sg_app}"], db_subnet_group: db-private,
            db_parameter_group: pg16-dr, multi_az: false, tags: {{ env: staging }} }}
  - id: restore-pitr
    action: aws.rds.restore_db_instance_to_point_in_time
    with: {{ source: prod-db, target: prod-db-pitr, latest: true,
            instance_class: db.r6g.large, vpc_security_group_ids: ["{sg_db}"],
            db_subnet_group: db-private, db_parameter_group: pg16-dr, multi_az: true,
            tags: {{ env: restore, ticket: INC-1 }} }}
""")
        check(p.returncode == 0, "the RDS runbook succeeds: " + p.stderr[-2000:])
        res = {k: v.get("result") or {} for k, v in ends.items()}

        ev = res.get("events", {}).get("events")
        check(isinstance(ev, list) and ev and all(
            set(e) >= {"time", "message", "categories", "source"} for e in ev) and
            any(e["source"] == "prod-db" for e in ev),
            "describe_events lists prod-db's events with time, message, categories, source: %s"
            % ev)
        check(recorded(calls, "DescribeEvents").get("params", {}).get("SourceType") ==
              "db-instance", "describe_events sends SourceType db-instance with an identifier")

        import datetime
        utc = datetime.timezone.utc
        check(wire(recorded(calls, "DescribeEvents", 1).get("params", {})) == botocore_query(
            "DescribeEvents", {"SourceIdentifier": "prod-db", "SourceType": "db-instance",
                               "StartTime": datetime.datetime(2026, 11, 25, 3, tzinfo=utc),
                               "EndTime": datetime.datetime(2026, 11, 25, 5, tzinfo=utc),
                               "EventCategories": ["failover", "availability"],
                               "MaxRecords": 100}),
              "DescribeEvents on the wire = botocore's (times in UTC, categories as "
              "EventCategories.EventCategory.N): %s"
              % recorded(calls, "DescribeEvents", 1).get("params"))
        # moto ignores the window and the categories (it filters by source only), so only
        # the request is checked for them, against botocore.
        check(ends.get("events-window", {}).get("status") == "ok",
              "describe_events with a time window and categories runs")

        rep = res.get("replica", {})
        check((rep.get("id"), rep.get("replica_source"), rep.get("instance_class")) ==
              ("prod-db-replica", "prod-db", "db.r6g.xlarge"),
              "create_db_instance_read_replica: id, source, class: %s" % rep)
        b = rds.describe_db_instances(DBInstanceIdentifier="prod-db-replica")["DBInstances"][0]
        check(b.get("ReadReplicaSourceDBInstanceIdentifier") == "prod-db",
              "boto3: the replica follows prod-db")
        check(b["AvailabilityZone"] == "us-east-1b", "boto3: the replica is in us-east-1b")
        check(b["DBSubnetGroup"]["DBSubnetGroupName"] == "db-private",
              "boto3: the replica is in subnet group db-private")
        tags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(
            ResourceName=b["DBInstanceArn"])["TagList"]}
        check(tags == {"team": "dr", "drill": "1"}, "boto3: the replica's tags: %s" % tags)
        check("prod-db-replica" in rds.describe_db_instances(DBInstanceIdentifier="prod-db")
              ["DBInstances"][0].get("ReadReplicaDBInstanceIdentifiers", []),
              "boto3: prod-db lists the replica")
        check(res.get("replica-again", {}).get("id") == "prod-db-replica" and
              not [c for c in calls if c["operation"] == "CreateDBInstanceReadReplica"
                   and c["request"]["params"].get("DBInstanceIdentifier") == "prod-db-replica"
                   ][1:],
              "asked again, the existing replica is the answer (no second create)")
        check(recorded(calls, "CreateDBInstanceReadReplica").get("params") and
              wire(recorded(calls, "CreateDBInstanceReadReplica")["params"]) == botocore_query(
                  "CreateDBInstanceReadReplica",
                  {"DBInstanceIdentifier": "prod-db-replica",
                   "SourceDBInstanceIdentifier": "prod-db",
                   "AvailabilityZone": "us-east-1b", "DBInstanceClass": "db.r6g.xlarge",
                   "DBSubnetGroupName": "db-private",
                   "VpcSecurityGroupIds": [sg_db, sg_app],
                   "DBParameterGroupName": "pg16-dr", "MultiAZ": False,
                   "Tags": [{"Key": "team", "Value": "dr"}, {"Key": "drill", "Value": "1"}]}),
              "CreateDBInstanceReadReplica on the wire = botocore's: %s"
              % recorded(calls, "CreateDBInstanceReadReplica").get("params"))

        eu = res.get("replica-eu", {})
        check(eu.get("id") == "prod-db-eu" and eu.get("replica_source") in
              ("prod-db", prod_arn), "cross-region replica from the source ARN: %s" % eu)
        beu = rds_eu.describe_db_instances(DBInstanceIdentifier="prod-db-eu")["DBInstances"][0]
        check(beu.get("ReadReplicaSourceDBInstanceIdentifier") in ("prod-db", prod_arn),
              "boto3 (eu-west-1): the replica follows us-east-1's prod-db")
        eu_call = [c for c in calls if c["operation"] == "CreateDBInstanceReadReplica" and
                   c.get("region") == "eu-west-1"]
        check(eu_call and "PreSignedUrl" not in eu_call[0]["request"]["params"] and
              "SourceRegion" not in eu_call[0]["request"]["params"] and
              "eu-west-1" == eu_call[0]["region"],
              "the cross-region request goes to eu-west-1 and names the source by ARN only")

        mod = res.get("modify", {})
        bm = rds.describe_db_instances(DBInstanceIdentifier="prod-db-replica")["DBInstances"][0]
        check((bm["DBInstanceClass"], bm["MultiAZ"], bm["BackupRetentionPeriod"]) ==
              ("db.r6g.2xlarge", True, 3),
              "boto3: modify_db_instance changed class, Multi-AZ, retention: %s"
              % ((bm["DBInstanceClass"], bm["MultiAZ"], bm["BackupRetentionPeriod"]),))
        check([g["VpcSecurityGroupId"] for g in bm["VpcSecurityGroups"]] == [sg_app],
              "boto3: the security groups were replaced by [%s]" % sg_app)
        check(mod.get("instance_class") == "db.r6g.2xlarge" and mod.get("multi_az") is True
              and mod.get("vpc_security_group_ids") == [sg_app]
              and mod.get("backup_retention_days") == 3,
              "modify_db_instance's result shows the new values: %s" % mod)
        check(wire(recorded(calls, "ModifyDBInstance").get("params", {})) == botocore_query(
            "ModifyDBInstance",
            {"DBInstanceIdentifier": "prod-db-replica", "DBInstanceClass": "db.r6g.2xlarge",
             "VpcSecurityGroupIds": [sg_app], "ApplyImmediately": True,
             "DBParameterGroupName": "pg16-dr", "BackupRetentionPeriod": 3, "MultiAZ": True}),
            "ModifyDBInstance on the wire = botocore's (ApplyImmediately true by default): %s"
            % recorded(calls, "ModifyDBInstance").get("params"))

        snap = res.get("snap", {})
        check((snap.get("id"), snap.get("instance"), snap.get("type")) ==
              ("prod-db-pre-drill", "prod-db", "manual") and snap.get("arn", "").endswith(
                  ":snapshot:prod-db-pre-drill") and snap.get("status") and
              snap.get("created_at"), "create_db_snapshot's fields: %s" % snap)
        check(res.get("snap-again", {}).get("id") == "prod-db-pre-drill" and
              ends.get("snap-again", {}).get("status") == "ok",
              "asked again, the existing snapshot of the same instance is the answer")
        bs = rds.describe_db_snapshots(DBSnapshotIdentifier="prod-db-pre-drill")["DBSnapshots"]
        check(len(bs) == 1 and bs[0]["DBInstanceIdentifier"] == "prod-db",
              "boto3: the snapshot exists, of prod-db")
        stags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(
            ResourceName=bs[0]["DBSnapshotArn"])["TagList"]}
        check(stags.get("kind") == "drill", "boto3: the snapshot's tags: %s" % stags)
        check(wire(recorded(calls, "CreateDBSnapshot").get("params", {})) == botocore_query(
            "CreateDBSnapshot", {"DBSnapshotIdentifier": "prod-db-pre-drill",
                                 "DBInstanceIdentifier": "prod-db",
                                 "Tags": [{"Key": "kind", "Value": "drill"}]}),
            "CreateDBSnapshot on the wire = botocore's")

        cp = res.get("copy", {})
        check((cp.get("id"), cp.get("instance")) == ("prod-db-pre-drill-copy", "prod-db"),
              "copy_db_snapshot's fields: %s" % cp)
        check(res.get("copy-again", {}).get("id") == "prod-db-pre-drill-copy",
              "asked again, the existing copy is the answer")
        check(len(rds.describe_db_snapshots(DBSnapshotIdentifier="prod-db-pre-drill-copy")
                  ["DBSnapshots"]) == 1, "boto3: the copy exists")
        check(wire(recorded(calls, "CopyDBSnapshot").get("params", {})) == botocore_query(
            "CopyDBSnapshot", {"SourceDBSnapshotIdentifier": "prod-db-pre-drill",
                               "TargetDBSnapshotIdentifier": "prod-db-pre-drill-copy",
                               "CopyTags": True}),
            "CopyDBSnapshot on the wire = botocore's")

        for step, target, sgs, op, base in (
                ("restore-snap", "staging-db", [sg_app], "RestoreDBInstanceFromDBSnapshot",
                 {"DBInstanceIdentifier": "staging-db",
                  "DBSnapshotIdentifier": "prod-db-pre-drill", "DBInstanceClass": "db.t3.large",
                  "MultiAZ": False, "Tags": [{"Key": "env", "Value": "staging"}]}),
                ("restore-pitr", "prod-db-pitr", [sg_db], "RestoreDBInstanceToPointInTime",
                 {"SourceDBInstanceIdentifier": "prod-db",
                  "TargetDBInstanceIdentifier": "prod-db-pitr",
                  "UseLatestRestorableTime": True, "DBInstanceClass": "db.r6g.large",
                  "MultiAZ": True, "Tags": [{"Key": "env", "Value": "restore"},
                                            {"Key": "ticket", "Value": "INC-1"}]})):
            got = res.get(step, {})
            bi = rds.describe_db_instances(DBInstanceIdentifier=target)["DBInstances"][0]
            check([g["VpcSecurityGroupId"] for g in bi["VpcSecurityGroups"]] == sgs and
                  bi["DBSubnetGroup"]["DBSubnetGroupName"] == "db-private" and
                  bi["DBInstanceClass"] == base["DBInstanceClass"] and
                  bi["MultiAZ"] == base["MultiAZ"],
                  f"boto3: {target} landed in {sgs}, db-private, its class and Multi-AZ")
            btags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(
                ResourceName=bi["DBInstanceArn"])["TagList"]}
            check(btags == {t["Key"]: t["Value"] for t in base["Tags"]},
                  f"boto3: {target}'s tags: {btags}")
            check(got.get("vpc_security_group_ids") == sgs and
                  got.get("db_subnet_group") == "db-private",
                  f"{step}'s result names its security groups and subnet group: {got}")
            want = dict(base, DBSubnetGroupName="db-private", VpcSecurityGroupIds=sgs,
                        DBParameterGroupName="pg16-dr")
            check(wire(recorded(calls, op).get("params", {})) == botocore_query(op, want),
                  f"{op} on the wire = botocore's: {recorded(calls, op).get('params')}")

        # ---- idempotence refuses a name taken by something else -------------------------
        p, ends, _ = r.run("""  - id: taken
    action: aws.rds.create_db_instance_read_replica
    with: { id: staging-db, source: prod-db }
""")
        err = ends.get("taken", {}).get("error", "")
        check(p.returncode == 1 and "already exists" in err and "not a read replica" in err,
              "a replica name taken by another instance fails clearly: " + err)

        # ---- Application Auto Scaling ------------------------------------------------------
        ecs = moto.client("ecs")
        ecs.create_cluster(clusterName="prod")
        ecs.register_task_definition(family="api", containerDefinitions=[
            {"name": "api", "image": "api:v1", "memory": 128}])
        ecs.create_service(cluster="prod", serviceName="api", taskDefinition="api",
                           desiredCount=2)
        aas = moto.client("application-autoscaling")
        aas.register_scalable_target(ServiceNamespace="ecs", ResourceId="service/prod/api",
                                     ScalableDimension="ecs:service:DesiredCount",
                                     MinCapacity=2, MaxCapacity=10)
        p, ends, calls = r.run("""  - id: before
    action: aws.appautoscaling.describe_scalable_targets
    with: { cluster: prod, service: api }
  - id: raise
    action: aws.appautoscaling.register_scalable_target
    with: { cluster: prod, service: api, min_capacity: 6, max_capacity: 10,
            dynamic_scaling_in_suspended: true }
  - id: raise-again
    action: aws.appautoscaling.register_scalable_target
    with: { resource_id: service/prod/api, min_capacity: 6, max_capacity: 10 }
  - id: all
    action: aws.appautoscaling.describe_scalable_targets
    with: {}
""")
        check(p.returncode == 0, "the auto scaling runbook succeeds: " + p.stderr[-2000:])
        res = {k: v.get("result") or {} for k, v in ends.items()}
        t0 = (res.get("before", {}).get("targets") or [{}])[0]
        check((t0.get("resource_id"), t0.get("min_capacity"), t0.get("max_capacity"),
               t0.get("scalable_dimension")) ==
              ("service/prod/api", 2, 10, "ecs:service:DesiredCount"),
              "describe_scalable_targets: the seeded target, min 2 max 10: %s" % t0)
        t1 = res.get("raise", {})
        check((t1.get("min_capacity"), t1.get("max_capacity"),
               t1.get("dynamic_scaling_in_suspended")) == (6, 10, True),
              "register_scalable_target's result: min 6, max 10, scale-in suspended: %s" % t1)
        bt = aas.describe_scalable_targets(ServiceNamespace="ecs",
                                           ResourceIds=["service/prod/api"])["ScalableTargets"]
        check(len(bt) == 1 and (bt[0]["MinCapacity"], bt[0]["MaxCapacity"]) == (6, 10),
              "boto3: one target, now min 6 max 10: %s" % bt)
        check(res.get("raise-again", {}).get("min_capacity") == 6 and
              len(res.get("all", {}).get("targets", [])) == 1,
              "registering the same values again changes nothing (still one target)")
        check(recorded(calls, "RegisterScalableTarget").get("body") == botocore_json(
            "application-autoscaling", "RegisterScalableTarget",
            {"ServiceNamespace": "ecs", "ResourceId": "service/prod/api",
             "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 6,
             "MaxCapacity": 10, "SuspendedState": {"DynamicScalingInSuspended": True}}),
            "RegisterScalableTarget on the wire = botocore's")
        check(recorded(calls, "RegisterScalableTarget").get("target") ==
              "AnyScaleFrontendService.RegisterScalableTarget", "X-Amz-Target as the model says")

        # ---- ECR ---------------------------------------------------------------------------
        ecr = moto.client("ecr")
        ecr.create_repository(repositoryName="api")
        manifest = json.dumps({"schemaVersion": 2, "mediaType":
                               "application/vnd.docker.distribution.manifest.v2+json",
                               "config": {"digest": "sha256:" + "1" * 64, "size": 1,
                                          "mediaType": "application/vnd.docker.container."
                                                       "image.v1+json"},
                               "layers": []})
        pushed = ecr.put_image(repositoryName="api", imageManifest=manifest, imageTag="v42")
        digest = pushed["image"]["imageId"]["imageDigest"]
        p, ends, calls = r.run("""  - id: by-tag
    action: aws.ecr.describe_images
    with: { repository: api, image_tag: v42 }
  - id: all
    action: aws.ecr.describe_images
    with: { repository: api }
  - id: from-lua
    action: lua
    read_only: true
    with:
      script: |
        local r = aws.ecr.describe_images{repository = "api", image_digest = "%s"}
        local t = aws.appautoscaling.describe_scalable_targets{cluster = "prod", service = "api"}
        return { digest = r.images[1].digest, min = t.targets[1].min_capacity }
""" % digest)
        check(p.returncode == 0, "the ECR runbook succeeds: " + p.stderr[-2000:])
        img = ((ends.get("by-tag", {}).get("result") or {}).get("images") or [{}])[0]
        check(img.get("digest") == digest and img.get("tags") == ["v42"] and
              str(img.get("pushed_at", "")).endswith("Z"),
              "describe_images by tag: digest, tags, pushed_at: %s" % img)
        check(len((ends.get("all", {}).get("result") or {}).get("images", [])) == 1,
              "describe_images of the repository lists its one image")
        check((ends.get("from-lua", {}).get("result") or {}) == {"digest": digest, "min": 6},
              "a lua step calls the new actions as functions: %s"
              % ends.get("from-lua", {}).get("result"))
        check(recorded(calls, "DescribeImages").get("body") == botocore_json(
            "ecr", "DescribeImages", {"repositoryName": "api", "imageIds": [{"imageTag": "v42"}]}),
            "DescribeImages on the wire = botocore's")

        # ---- error cases: one run each, exit 1, a clear message ---------------------------
        errors = [
            ("aws.rds.describe_events", "{ source_identifier: prod-db, start_time: yesterday }",
             "invalid", "start_time"),
            ("aws.rds.create_db_instance_read_replica", "{ id: r2, source: no-such-db }",
             "not_found", "no-such-db"),
            ("aws.rds.create_db_instance_read_replica",
             "{ id: r3, source: prod-db, source_region: us-west-2 }", "invalid", "ARN"),
            ("aws.rds.modify_db_instance", "{ id: no-such-db, multi_az: true }",
             "not_found", "no-such-db"),
            ("aws.rds.modify_db_instance", "{ id: prod-db }", "invalid", "nothing to change"),
            ("aws.rds.create_db_snapshot", "{ snapshot: s9, instance: no-such-db }",
             "not_found", "no-such-db"),
            ("aws.rds.create_db_snapshot", "{ snapshot: prod-db-pre-drill, instance: staging-db }",
             "error", "DBSnapshotAlreadyExists"),
            ("aws.rds.copy_db_snapshot", "{ source: no-such-snap, target: c9 }",
             "not_found", "no-such-snap"),
            ("aws.rds.restore_db_instance_from_snapshot",
             f"{{ snapshot: no-such-snap, target: r9, vpc_security_group_ids: [{sg_app}] }}",
             "not_found", "no-such-snap"),
            ("aws.rds.restore_db_instance_to_point_in_time",
             "{ source: no-such-db, target: r10, latest: true, db_subnet_group: db-private }",
             "not_found", "no-such-db"),
            ("aws.rds.restore_db_instance_from_snapshot",
             "{ snapshot: prod-db-pre-drill, target: r11, subnet_group: a, db_subnet_group: b }",
             "invalid", "not both"),
            ("aws.appautoscaling.register_scalable_target",
             "{ cluster: prod, service: api, min_capacity: 5, max_capacity: 2 }",
             "invalid", "above"),
            ("aws.appautoscaling.register_scalable_target",
             "{ cluster: prod, service: no-such-service, min_capacity: 1, max_capacity: 2 }",
             "error", "ValidationException"),
            ("aws.appautoscaling.describe_scalable_targets",
             "{ cluster: prod }", "invalid", "both"),
            ("aws.ecr.describe_images", "{ repository: no-such-repo, image_tag: v1 }",
             "not_found", "RepositoryNotFoundException"),
            ("aws.ecr.describe_images", "{ repository: api, image_tag: v0-missing }",
             "not_found", "ImageNotFoundException"),
        ]
        for action, args, code, needle in errors:
            p, ends, _ = r.run(f"""  - id: bad
    action: {action}
    with: {args}
""")
            d = ends.get("bad", {})
            check(p.returncode == 1 and d.get("status") == "failed" and
                  d.get("code") == code and needle in d.get("error", ""),
                  f"{action} {args}: exit 1, {code}, names '{needle}': "
                  f"rc={p.returncode} {d.get('code')} {d.get('error')}")
        # Nothing half done by the refused calls.
        names = {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}
        check(not names & {"r2", "r3", "r9", "r10", "r11"}, "the failed calls created nothing")
        check(aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"][0]
              ["MinCapacity"] == 6, "the refused registration left the target as it was")

    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
