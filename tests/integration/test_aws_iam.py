#!/usr/bin/env python3
"""The least-privilege IAM policies of docs/iam/ against moto's IAM enforcement.

For each scenario policy: the policy's action set must be exactly what the scenario's drbook
actions need (no more, no less); a fresh moto user gets that policy and nothing else; every
drbook action of the scenario then succeeds through aws_action_tool, and an action outside
the policy fails with AccessDenied, reported clearly, after exactly one request.

What moto 5 enforces (checked in moto/iam/access_control.py): signatures, and the Action
element of identity policies; every request is evaluated against Resource "*" and without
condition values, and the action prefix is the SigV4 signing name (CloudWatch signs as
"monitoring"). So the policy attached here is the documented one with each Resource widened
to "*", Conditions dropped, "cloudwatch:X" also granted as "monitoring:X" and
"s3:GetReplicationConfiguration" as "s3:ListBucket" (what moto checks for it): the same
action set, which is what moto can check. Resource scoping is for real AWS.
Prints "N passed, M failed".
"""
import json
import os
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_aws_moto as tm  # noqa: E402  (the moto launcher and harness)

# The IAM actions each drbook AWS action calls.
IAM_OF = {
    "aws.sts.get_caller_identity": [],  # needs no permission
    "aws.rds.describe_db_instance": ["rds:DescribeDBInstances"],
    "aws.rds.describe_events": ["rds:DescribeEvents"],
    "aws.rds.promote_read_replica": ["rds:PromoteReadReplica"],
    "aws.rds.reboot_db_instance": ["rds:RebootDBInstance"],
    "aws.rds.failover_db_cluster": ["rds:FailoverDBCluster"],
    "aws.rds.describe_db_snapshots": ["rds:DescribeDBSnapshots"],
    # tags given at creation need rds:AddTagsToResource too (the runbooks give them)
    "aws.rds.restore_db_instance_to_point_in_time": ["rds:RestoreDBInstanceToPointInTime",
                                                     "rds:AddTagsToResource"],
    "aws.rds.restore_db_instance_from_snapshot": ["rds:RestoreDBInstanceFromDBSnapshot",
                                                  "rds:AddTagsToResource"],
    "aws.rds.describe_events": ["rds:DescribeEvents"],
    # looks the name up first (idempotent in effect), then creates
    "aws.rds.create_db_instance_read_replica": ["rds:DescribeDBInstances",
                                                "rds:CreateDBInstanceReadReplica",
                                                "rds:AddTagsToResource"],
    "aws.rds.modify_db_instance": ["rds:ModifyDBInstance"],
    "aws.rds.delete_db_instance": ["rds:DeleteDBInstance"],
    # DescribeDBSnapshots only when the name exists (to tell our snapshot from another)
    "aws.rds.create_db_snapshot": ["rds:CreateDBSnapshot", "rds:DescribeDBSnapshots"],
    "aws.rds.copy_db_snapshot": ["rds:CopyDBSnapshot", "rds:DescribeDBSnapshots"],
    "aws.route53.get_record": ["route53:ListResourceRecordSets"],
    "aws.route53.upsert_record": ["route53:ChangeResourceRecordSets", "route53:GetChange"],
    "aws.route53.get_change": ["route53:GetChange"],
    "aws.arc.get_routing_control_state": ["route53-recovery-cluster:GetRoutingControlState"],
    "aws.arc.update_routing_control_state":
        ["route53-recovery-cluster:UpdateRoutingControlState"],
    "aws.route53.get_health_check_status": ["route53:GetHealthCheckStatus"],
    "aws.route53.update_health_check": ["route53:UpdateHealthCheck"],
    "aws.ecs.describe_service": ["ecs:DescribeServices"],
    "aws.ecs.describe_task_definition": ["ecs:DescribeTaskDefinition"],
    "aws.ecs.update_service": ["ecs:UpdateService"],
    "aws.ecs.list_tasks": ["ecs:ListTasks"],
    "aws.ecs.stop_task": ["ecs:StopTask"],
    "aws.appautoscaling.describe_scalable_targets":
        ["application-autoscaling:DescribeScalableTargets"],
    # reads the target back after registering it
    "aws.appautoscaling.register_scalable_target":
        ["application-autoscaling:RegisterScalableTarget",
         "application-autoscaling:DescribeScalableTargets"],
    "aws.ecr.describe_images": ["ecr:DescribeImages"],
    "aws.sns.publish": ["sns:Publish"],
    "aws.cloudwatch.put_metric_data": ["cloudwatch:PutMetricData"],
    "aws.cloudwatch.describe_alarms": ["cloudwatch:DescribeAlarms"],
    # EC2, S3 and ElastiCache (docs/aws.md lists them too)
    "aws.ec2.describe_security_groups": ["ec2:DescribeSecurityGroups"],
    "aws.ec2.authorize_security_group_ingress": ["ec2:AuthorizeSecurityGroupIngress"],
    "aws.ec2.revoke_security_group_ingress": ["ec2:RevokeSecurityGroupIngress"],
    "aws.s3.get_bucket_replication": ["s3:GetReplicationConfiguration"],
    # s3:ListBucket so that a missing object answers 404 (missing_ok), not 403
    "aws.s3.head_object": ["s3:GetObject", "s3:ListBucket"],
    "aws.s3.put_object": ["s3:PutObject"],
    "aws.elasticache.describe_replication_groups": ["elasticache:DescribeReplicationGroups"],
    "aws.elasticache.create_replication_group": ["elasticache:CreateReplicationGroup",
                                                 "elasticache:DescribeReplicationGroups"],
    "aws.elasticache.modify_replication_group": ["elasticache:ModifyReplicationGroup"],
}

# ARC's data plane (route53-recovery-cluster) is not in moto: the policy's shape is checked
# here, the calls against the sandbox's ARC cluster (test_arc_actions, test_scenario_region_arc)
NO_MOTO = {"aws.arc.get_routing_control_state": "moto has no ARC cluster (test_arc_actions "
           "runs it against the sandbox's)",
           "aws.arc.update_routing_control_state": "moto has no ARC cluster (test_arc_actions "
           "runs it against the sandbox's)",
           "aws.elasticache.modify_replication_group": "moto 5.2 has no "
           "ModifyReplicationGroup (test_scenario_region_stores runs it against the "
           "sandbox's)"}

NOTIFY = ["aws.sns.publish", "aws.cloudwatch.put_metric_data", "aws.sts.get_caller_identity"]

# The actions each scenario's runbook uses (DESIGN.md's four scenarios, and the way back
# from the region failover).
SCENARIOS = {
    "ecs-task-failure": ["aws.ecs.describe_service", "aws.ecs.list_tasks", "aws.ecs.stop_task",
                         "aws.ecs.update_service", "aws.cloudwatch.describe_alarms"] + NOTIFY,
    "rds-multi-az-failover": ["aws.rds.describe_db_instance", "aws.rds.describe_events",
                              "aws.rds.reboot_db_instance",
                              "aws.rds.failover_db_cluster"] + NOTIFY,
    # the replica of the remaining standby region is rebuilt: created (after a delete, which
    # comes last here so that it has something to delete)
    "region-failover": ["aws.rds.describe_db_instance", "aws.rds.promote_read_replica",
                        "aws.rds.create_db_instance_read_replica", "aws.rds.delete_db_instance",
                        "aws.ecs.describe_service", "aws.ecs.update_service",
                        "aws.route53.get_health_check_status",
                        "aws.route53.update_health_check", "aws.route53.get_record",
                        "aws.route53.upsert_record", "aws.route53.get_change",
                        "aws.arc.get_routing_control_state",
                        "aws.arc.update_routing_control_state",
                        # the stores, images and capacity (docs/scenarios.md)
                        "aws.ecs.describe_task_definition", "aws.ecr.describe_images",
                        "aws.appautoscaling.describe_scalable_targets",
                        "aws.appautoscaling.register_scalable_target",
                        "aws.s3.get_bucket_replication", "aws.s3.head_object",
                        "aws.elasticache.describe_replication_groups",
                        "aws.elasticache.create_replication_group",
                        "aws.elasticache.modify_replication_group",
                        # isolating an unreachable old primary (and its rollback)
                        "aws.ec2.authorize_security_group_ingress",
                        "aws.ec2.describe_security_groups",
                        "aws.ec2.revoke_security_group_ingress"] + NOTIFY,
    # the way back (issue 11.9): the stale prod-db deleted (with a final snapshot, see
    # EXTRA_IAM), prod-db created as a replica of prod-db-eu and promoted, its security
    # groups' ingress given back, both regions' services and floors, traffic back, the
    # replicas rebuilt
    "region-failback": ["aws.rds.describe_db_instance", "aws.rds.promote_read_replica",
                        "aws.rds.create_db_instance_read_replica", "aws.rds.delete_db_instance",
                        "aws.ecs.describe_service", "aws.ecs.update_service",
                        "aws.route53.get_health_check_status", "aws.route53.get_record",
                        "aws.route53.upsert_record", "aws.route53.get_change",
                        "aws.arc.get_routing_control_state",
                        "aws.arc.update_routing_control_state",
                        "aws.appautoscaling.describe_scalable_targets",
                        "aws.appautoscaling.register_scalable_target",
                        "aws.ec2.authorize_security_group_ingress",
                        "aws.ec2.describe_security_groups"] + NOTIFY,
    # the recovery replicas are rebuilt from the restored instance: created (after a delete,
    # which comes last here so that it has something to delete)
    "db-corruption-restore": ["aws.rds.describe_db_instance", "aws.rds.describe_db_snapshots",
                              "aws.rds.restore_db_instance_to_point_in_time",
                              "aws.rds.restore_db_instance_from_snapshot",
                              "aws.route53.get_record", "aws.route53.upsert_record",
                              "aws.route53.get_change",
                              "aws.rds.create_db_instance_read_replica",
                              "aws.rds.delete_db_instance"] + NOTIFY,
}

# IAM actions a policy grants beyond IAM_OF of its drbook actions: AWS authorizes a
# DeleteDBInstance with FinalDBSnapshotIdentifier on the snapshot too (moto does not check it).
EXTRA_IAM = {"region-failback": {"rds:CreateDBSnapshot"}}

# One call outside each policy, and the IAM action moto must name when refusing it.
OUTSIDE = {
    "ecs-task-failure": ("aws.rds.promote_read_replica", {"id": "prod-db-eu"},
                         "rds:PromoteReadReplica"),
    "rds-multi-az-failover": ("aws.route53.upsert_record", None,
                              "route53:ChangeResourceRecordSets"),
    "region-failover": ("aws.rds.reboot_db_instance", {"id": "prod-db", "force_failover": True},
                        "rds:RebootDBInstance"),
    "region-failback": ("aws.rds.reboot_db_instance", {"id": "prod-db", "force_failover": True},
                        "rds:RebootDBInstance"),
    "db-corruption-restore": ("aws.ecs.update_service",
                              {"cluster": "prod-eu", "service": "api", "desired_count": 0},
                              "ecs:UpdateService"),
}


def policy_path(name):
    return os.path.join(tm.SRC, "docs", "iam", name + ".json")


def policy_actions(doc):
    acts = set()
    for st in doc["Statement"]:
        a = st["Action"]
        acts.update([a] if isinstance(a, str) else a)
    return acts


def moto_form(doc):
    """The documented policy as moto can evaluate it (see the module comment)."""
    out = {"Version": doc["Version"], "Statement": []}
    for st in doc["Statement"]:
        acts = [st["Action"]] if isinstance(st["Action"], str) else list(st["Action"])
        acts += ["monitoring:" + a.split(":", 1)[1] for a in acts if a.startswith("cloudwatch:")]
        # moto authorizes GET ?replication as s3:ListBucket (its ACTION_MAP has no entry)
        acts += ["s3:ListBucket" for a in acts if a == "s3:GetReplicationConfiguration"]
        out["Statement"].append({"Effect": st["Effect"], "Action": acts, "Resource": "*"})
    return out


def args_for(action, s, n):
    zone = s["zone"]
    return {
        "aws.sts.get_caller_identity": {},
        "aws.rds.describe_db_instance": {"id": "prod-db"},
        "aws.rds.describe_events": {"source_identifier": "prod-db", "duration": 60},
        "aws.rds.promote_read_replica": {"id": "prod-db-eu"},
        "aws.rds.reboot_db_instance": {"id": "prod-db", "force_failover": True},
        "aws.rds.failover_db_cluster": {"cluster": "aurora", "target": "aurora-2"},
        "aws.rds.create_db_instance_read_replica": {"id": f"rr-{n}", "source": "prod-db"},
        "aws.rds.delete_db_instance": {"id": f"rr-{n}", "skip_final_snapshot": True},
        "aws.rds.describe_db_snapshots": {"id": "prod-db"},
        "aws.rds.restore_db_instance_to_point_in_time":
            {"source": "prod-db", "target": f"restore-pitr-{n}", "latest": True},
        "aws.rds.restore_db_instance_from_snapshot":
            {"snapshot": "snap-1", "target": f"restore-snap-{n}"},
        "aws.route53.get_record": {"zone_id": zone, "name": "api.example.com", "type": "CNAME"},
        "aws.route53.upsert_record": {"zone_id": zone, "name": "api.example.com",
                                      "type": "CNAME", "ttl": 60, "wait": True,
                                      "values": [f"api-{n}.example.com"]},
        "aws.route53.get_change": None,  # filled from the upsert's change id
        "aws.route53.get_health_check_status": {"id": s["hc"]},
        "aws.route53.update_health_check": {"id": s["hc"], "disabled": False},
        "aws.ecs.describe_service": {"cluster": "prod-eu", "service": "api"},
        "aws.ecs.update_service": {"cluster": "prod-eu", "service": "api",
                                   "force_new_deployment": True},
        "aws.ecs.list_tasks": {"cluster": "prod-eu", "service": "api"},
        "aws.ecs.stop_task": {"cluster": "prod-eu", "task": s["task"], "reason": "drill"},
        "aws.sns.publish": {"topic_arn": s["topic"], "subject": "drill", "message": n},
        "aws.cloudwatch.put_metric_data": {"namespace": "drbook", "name": "rto_s", "value": 1},
        "aws.cloudwatch.describe_alarms": {"alarm_names": ["prod-us-api-running-tasks"]},
        "aws.ecs.describe_task_definition": {"task_definition": "api"},
        "aws.ecr.describe_images": {"repository": "drbook/api", "image_tag": "1"},
        "aws.appautoscaling.describe_scalable_targets": {"cluster": "prod-eu",
                                                         "service": "api"},
        "aws.appautoscaling.register_scalable_target": {"cluster": "prod-eu", "service": "api",
                                                        "min_capacity": 1, "max_capacity": 10},
        "aws.s3.get_bucket_replication": {"bucket": "prod-assets"},
        "aws.s3.head_object": {"bucket": "prod-assets", "key": "drbook/replication-marker"},
        "aws.elasticache.describe_replication_groups": {},
        "aws.ec2.describe_security_groups": {"group_ids": [s["sg"]]},
        "aws.ec2.authorize_security_group_ingress": {"group_id": s["sg"], "protocol": "tcp",
                                                     "from_port": 5432, "to_port": 5432,
                                                     "cidr": "10.99.0.0/16"},
        "aws.ec2.revoke_security_group_ingress": {"group_id": s["sg"], "protocol": "tcp",
                                                  "from_port": 5432, "to_port": 5432,
                                                  "cidr": "10.99.0.0/16"},
        "aws.elasticache.create_replication_group": {"id": f"cache-{n}",
                                                     "node_type": "cache.t4g.micro"},
    }[action]


def seed_stores(url, s):
    """What the region failover's store actions read (with the seed's allow-all key)."""
    s3 = tm.boto("s3", url, s["ak"], s["sk"])
    for b in ("prod-assets", "prod-assets-eu"):
        s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": tm.REGION})
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_replication(Bucket="prod-assets", ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/s3-crr",
        "Rules": [{"ID": "eu", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
                   "DeleteMarkerReplication": {"Status": "Disabled"},
                   "Destination": {"Bucket": "arn:aws:s3:::prod-assets-eu"}}]})
    s3.put_object(Bucket="prod-assets", Key="drbook/replication-marker", Body=b"m")
    ec2 = tm.boto("ec2", url, s["ak"], s["sk"])
    s["sg"] = ec2.create_security_group(GroupName="prod-db", Description="prod-db")["GroupId"]
    ecr = tm.boto("ecr", url, s["ak"], s["sk"])
    ecr.create_repository(repositoryName="drbook/api")
    ecr.put_image(repositoryName="drbook/api", imageTag="1", imageManifest=json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
                    "digest": "sha256:" + "0" * 64}, "layers": []}))


def main():
    tool = tm.find_tool()
    suite = tm.Suite()
    tmp_obj = tempfile.TemporaryDirectory(prefix="drbook-iam-")
    tmp = tmp_obj.name
    moto = None
    try:
        for name, actions in SCENARIOS.items():
            def shape(name=name, actions=actions):
                with open(policy_path(name)) as f:
                    doc = json.load(f)
                assert doc["Version"] == "2012-10-17"
                need = {a for act in actions for a in IAM_OF[act]}
                need |= EXTRA_IAM.get(name, set())
                have = policy_actions(doc)
                assert have == need, f"{name}: extra {have - need}, missing {need - have}"
                for st in doc["Statement"]:
                    assert st["Effect"] == "Allow" and "*" not in "".join(
                        [st["Action"]] if isinstance(st["Action"], str) else st["Action"])
            suite.case(f"{name}.json grants exactly the scenario's actions", shape)
        moto = tm.Moto(tmp)
        s = tm.seed(moto.url)
        seed_stores(moto.url, s)
        iam = tm.boto("iam", moto.url, s["ak"], s["sk"])
        users = {}
        for name in SCENARIOS:
            u = f"dr-{name}"
            iam.create_user(UserName=u)
            key = iam.create_access_key(UserName=u)["AccessKey"]
            with open(policy_path(name)) as f:
                iam.put_user_policy(UserName=u, PolicyName=name,
                                    PolicyDocument=json.dumps(moto_form(json.load(f))))
            users[name] = key
        moto.set_auth_after(0)
        for name, actions in SCENARIOS.items():
            key = users[name]
            env = tm.Env(tool, tmp, moto.url, key["AccessKeyId"], key["SecretAccessKey"])

            def allowed(name=name, actions=actions, env=env):
                change = None
                for act in actions:
                    if act in NO_MOTO:
                        print(f"note: {act} is not run here: {NO_MOTO[act]}", flush=True)
                        continue
                    a = args_for(act, s, name)
                    if act == "aws.route53.get_change":
                        assert change, "upsert_record must run first"
                        a = {"id": change}
                    r = env.ok(act, a)
                    if act == "aws.route53.upsert_record":
                        change = r.json["change_id"]
                    if act == "aws.sts.get_caller_identity":
                        assert r.json["arn"].endswith(f":user/dr-{name}"), r.json
            suite.case(f"{name}: the scenario's actions pass with only its policy", allowed)

            def outside(name=name, env=env):
                act, a, iam_action = OUTSIDE[name]
                if a is None:
                    a = args_for(act, s, name)
                before = len(moto.requests())
                r = env.run(act, a)
                assert r.code == 1, r
                assert "denied" in r.err and "AccessDenied" in r.err, r.err
                assert f"is not authorized to perform: {iam_action}" in r.err, r.err
                assert len(moto.requests()) - before == 1, "a denial must not be retried"
            suite.case(f"{name}: an action outside the policy is AccessDenied", outside)
    except Exception:
        suite.failed += 1
        print(f"FAIL setup\n{traceback.format_exc()}", flush=True)
    finally:
        if moto:
            moto.stop()
        tmp_obj.cleanup()
    return suite.finish()


if __name__ == "__main__":
    sys.exit(main())
