#!/usr/bin/env python3
"""aws.ec2 security groups, aws.s3 replication/head/put and aws.elasticache replication groups
against a standalone moto (tests/tools/motoserver.py), through `drbook run`.

Each action's result fields are checked, and the end state is read back with boto3 (rules in
the security group, the object and its metadata, the replication group's settings). Then the
idempotent cases (authorize twice, revoke twice, create an existing group: success with
changed/created false and nothing changed), the error cases (a missing group, bucket, object,
replication configuration or replication group: code not_found, the AWS code in the message,
exit 1) and the refusals (a mutating action in preflight: exit 2, nothing sent; a rule naming
both cidr and source_group_id: exit 1 before any request).

moto 5.2 lacks ModifyReplicationGroup; MotoServer(elasticache_modify=True) adds it (see
motoserver.py). moto drops a replication rule's prefix (it answers <Prefix/> whatever was put), so the rules
here use the empty prefix; the prefix forms are read in tests/unit/aws/test_xml.c from recorded
answers. moto matches a revoked source-group rule only when its description matches too (AWS
does not), so that rule is authorized without one. moto also ignores NumCacheClusters (it sizes a group by ReplicasPerNodeGroup):
the request parameter is checked in the call record instead. Prints "N passed, M failed".
"""
import json
import os
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox"))

from motoserver import MotoServer  # noqa: E402
from sandbox_lib.testkit import Checks, wait_for  # noqa: E402

DRBOOK = os.environ["DRBOOK"]


class Run:
    def __init__(self, p, recs):
        self.rc = p.returncode
        self.stderr = p.stderr
        self.recs = recs
        self.ends = {r["step"]: r["data"] for r in recs if r["event"] == "step.end"}
        self.calls = [r["data"] for r in recs if r["event"] == "call"]

    def result(self, step):
        return (self.ends.get(step) or {}).get("result")


def run(tmp, env, name, steps, preflight=None):
    rb = os.path.join(tmp, name + ".yaml")
    with open(rb, "w") as f:
        f.write(f"version: 1\nname: {name}\n")
        if preflight:
            f.write("preflight:\n" + preflight)
        f.write("steps:\n" + steps)
    log = os.path.join(tmp, name + ".jsonl")
    p = subprocess.run([DRBOOK, "run", rb, "--audit", log, "--quiet"], cwd=tmp, env=env,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    recs = [json.loads(x) for x in open(log)] if os.path.exists(log) else []
    return Run(p, recs)


def ec2_part(moto, tmp, env, c):
    ec2 = moto.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    db = ec2.create_security_group(GroupName="prod-db", Description="db", VpcId=vpc)["GroupId"]
    app = ec2.create_security_group(GroupName="prod-app", Description="app",
                                    VpcId=vpc)["GroupId"]
    other = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    ec2.create_security_group(GroupName="elsewhere", Description="x", VpcId=other)

    rule = f"group_id: {db}, protocol: tcp, from_port: 5432, to_port: 5432"
    r = run(tmp, env, "sg", f"""
  - id: allow-app
    action: aws.ec2.authorize_security_group_ingress
    with: {{ {rule}, source_group_id: {app} }}
  - id: allow-cidr
    action: aws.ec2.authorize_security_group_ingress
    with: {{ {rule}, cidr: 10.20.0.0/16, description: "app subnet" }}
  - id: allow-again
    action: aws.ec2.authorize_security_group_ingress
    with: {{ {rule}, cidr: 10.20.0.0/16 }}
  - id: by-id
    action: aws.ec2.describe_security_groups
    with: {{ group_ids: [{db}] }}
  - id: by-vpc
    action: aws.ec2.describe_security_groups
    with: {{ vpc_id: {vpc} }}
  - id: by-filter
    action: aws.ec2.describe_security_groups
    with: {{ filters: {{ group-name: [prod-app, elsewhere] }} }}
""")
    c.eq(r.rc, 0, "security group run succeeds: " + r.stderr)
    c.eq(r.result("allow-app"), {"group_id": db, "changed": True}, "source group rule added")
    c.eq(r.result("allow-cidr"), {"group_id": db, "changed": True}, "CIDR rule added")
    c.eq(r.result("allow-again"), {"group_id": db, "changed": False},
         "authorizing a rule already there: success, changed=false")
    dup = [x for x in r.calls if x["operation"] == "AuthorizeSecurityGroupIngress"][2]
    c.ok("InvalidPermission.Duplicate" in dup["response"]["body"],
         "the third authorize was answered InvalidPermission.Duplicate by EC2")
    c.eq(dup["request"]["params"].get("IpPermissions.1.IpRanges.1.CidrIp"), "10.20.0.0/16",
         "the rule goes on the wire as EC2's IpPermissions.1.IpRanges.1.CidrIp")
    groups = (r.result("by-id") or {}).get("groups") or []
    c.eq([g["id"] for g in groups], [db], "describe by id: the one group")
    if groups:
        g = groups[0]
        c.eq((g["name"], g["vpc_id"], g["description"]), ("prod-db", vpc, "db"),
             "name, vpc_id, description")
        ing = sorted(g["ingress"], key=lambda x: (x["cidrs"], x["groups"]))
        c.eq(len(ing), 1, "moto merges the two rules of one port range into one permission")
        if ing:
            c.eq((ing[0]["protocol"], ing[0]["from_port"], ing[0]["to_port"]),
                 ("tcp", 5432, 5432), "protocol and ports")
            c.eq((ing[0]["cidrs"], ing[0]["groups"]), (["10.20.0.0/16"], [app]),
                 "the CIDR and the source group")
        c.eq(g["egress"][0]["protocol"] if g["egress"] else None, "-1",
             "the default egress rule, protocol -1")
        c.eq(g["egress"][0]["from_port"] if g["egress"] else 0, None, "-1 has no ports: null")
    names = {g["name"] for g in (r.result("by-vpc") or {}).get("groups", [])}
    c.eq(names, {"default", "prod-db", "prod-app"}, "vpc_id filters to that VPC's groups")
    names = {g["name"] for g in (r.result("by-filter") or {}).get("groups", [])}
    c.eq(names, {"prod-app", "elsewhere"}, "a filter with a list of values")
    perms = ec2.describe_security_groups(GroupIds=[db])["SecurityGroups"][0]["IpPermissions"]
    c.eq([(p["IpProtocol"], p["FromPort"], p["ToPort"],
           [(x["CidrIp"], x.get("Description")) for x in p["IpRanges"]],
           [x["GroupId"] for x in p["UserIdGroupPairs"]]) for p in perms],
         [("tcp", 5432, 5432, [("10.20.0.0/16", "app subnet")], [app])],
         "boto3 reads back both rules, the CIDR rule with its description")

    r = run(tmp, env, "sg-revoke", f"""
  - id: revoke-app
    action: aws.ec2.revoke_security_group_ingress
    with: {{ {rule}, source_group_id: {app} }}
  - id: revoke-again
    action: aws.ec2.revoke_security_group_ingress
    with: {{ {rule}, source_group_id: {app} }}
""")
    c.eq(r.rc, 0, "revoke run succeeds: " + r.stderr)
    c.eq(r.result("revoke-app"), {"group_id": db, "changed": True}, "source group rule removed")
    c.eq(r.result("revoke-again"), {"group_id": db, "changed": False},
         "revoking a rule not there: success, changed=false")
    perms = ec2.describe_security_groups(GroupIds=[db])["SecurityGroups"][0]["IpPermissions"]
    c.eq([([x["CidrIp"] for x in p["IpRanges"]], p["UserIdGroupPairs"]) for p in perms],
         [(["10.20.0.0/16"], [])], "boto3: only the CIDR rule is left")

    r = run(tmp, env, "sg-missing", """
  - id: nope
    action: aws.ec2.authorize_security_group_ingress
    with: { group_id: sg-0123456789abcdef0, protocol: tcp, from_port: 1, to_port: 2, cidr: 10.0.0.0/8 }
""")
    e = r.ends.get("nope") or {}
    c.ok(r.rc == 1 and e.get("code") == "not_found" and "InvalidGroup.NotFound" in
         e.get("error", ""), "authorize on a missing group: not_found, InvalidGroup.NotFound, "
         "exit 1 (not changed=false): %s" % e)
    r = run(tmp, env, "sg-missing-describe", """
  - id: nope
    action: aws.ec2.describe_security_groups
    with: { group_ids: [sg-0123456789abcdef0] }
""")
    e = r.ends.get("nope") or {}
    c.ok(r.rc == 1 and e.get("code") == "not_found", "describe of a missing group: not_found, "
         "exit 1: %s" % e)
    r = run(tmp, env, "sg-both", f"""
  - id: both
    action: aws.ec2.authorize_security_group_ingress
    with: {{ {rule}, cidr: 10.0.0.0/8, source_group_id: {app} }}
  - id: noports
    action: aws.ec2.authorize_security_group_ingress
    with: {{ group_id: {db}, protocol: tcp, cidr: 10.0.0.0/8 }}
    on_failure: continue
""")
    e = r.ends.get("both") or {}
    c.ok(r.rc == 1 and "exactly one of cidr, source_group_id" in e.get("error", "") and
         not r.calls, "cidr and source_group_id together: refused before any request: %s" % e)
    r = run(tmp, env, "sg-pre", "  - id: s\n    action: sleep\n    with: { duration: 0s }\n",
            preflight=f"""
  - id: open
    action: aws.ec2.authorize_security_group_ingress
    with: {{ {rule}, cidr: 0.0.0.0/0 }}
""")
    c.ok(r.rc == 2 and not r.calls, "a mutating EC2 action in preflight: exit 2, nothing sent")
    perms = ec2.describe_security_groups(GroupIds=[db])["SecurityGroups"][0]["IpPermissions"]
    c.ok(all("0.0.0.0/0" not in [x["CidrIp"] for x in p["IpRanges"]] for p in perms),
         "and the group is unchanged")


def s3_part(moto, tmp, env, c):
    s3 = moto.client("s3")
    for b in ("prod-assets", "prod-assets-eu", "plain-bucket"):
        s3.create_bucket(Bucket=b)
    for b in ("prod-assets", "prod-assets-eu"):
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_replication(Bucket="prod-assets", ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/s3-crr",
        "Rules": [{"ID": "to-eu", "Priority": 1, "Status": "Enabled",
                   "Filter": {"Prefix": ""},
                   "DeleteMarkerReplication": {"Status": "Disabled"},
                   "Destination": {"Bucket": "arn:aws:s3:::prod-assets-eu",
                                   "StorageClass": "STANDARD_IA"}}]})

    r = run(tmp, env, "s3", """
  - id: repl
    action: aws.s3.get_bucket_replication
    with: { bucket: prod-assets }
  - id: put
    action: aws.s3.put_object
    with:
      bucket: prod-assets
      key: "dr/marker é 1.json"
      body: '{"written_at": "2026-01-01T00:00:00Z"}'
      content_type: application/json
      metadata: { written-by: drbook, Run-Id: "42" }
  - id: head
    action: aws.s3.head_object
    with: { bucket: prod-assets, key: "dr/marker é 1.json" }
  - id: put-plain
    action: aws.s3.put_object
    with: { bucket: plain-bucket, key: empty }
  - id: missing-ok
    action: aws.s3.head_object
    with: { bucket: prod-assets-eu, key: "dr/marker é 1.json", missing_ok: true }
""")
    c.eq(r.rc, 0, "S3 run succeeds: " + r.stderr)
    c.eq(r.result("repl"), {"role": "arn:aws:iam::123456789012:role/s3-crr", "rules": [{
        "id": "to-eu", "status": "Enabled", "priority": 1, "prefix": "",
        "destination_bucket": "arn:aws:s3:::prod-assets-eu",
        "destination_bucket_name": "prod-assets-eu", "destination_account": None,
        "storage_class": "STANDARD_IA", "delete_marker_replication": "Disabled",
        "replication_time": None}]}, "the replication configuration")
    put = r.result("put") or {}
    obj = s3.head_object(Bucket="prod-assets", Key="dr/marker é 1.json")
    c.eq(put.get("etag"), obj["ETag"].strip('"'), "put: the ETag (without quotes) S3 holds")
    c.eq(put.get("version_id"), obj.get("VersionId"), "put: the version id")
    body = s3.get_object(Bucket="prod-assets", Key="dr/marker é 1.json")["Body"].read()
    c.eq(body, b'{"written_at": "2026-01-01T00:00:00Z"}', "boto3 reads the body back")
    c.eq(obj["ContentType"], "application/json", "and the content type")
    c.eq(obj["Metadata"], {"written-by": "drbook", "run-id": "42"}, "and the metadata")
    head = r.result("head") or {}
    c.eq({k: head.get(k) for k in ("exists", "size", "etag", "version_id", "content_type",
                                   "metadata")},
         {"exists": True, "size": len(body), "etag": obj["ETag"].strip('"'),
          "version_id": obj["VersionId"], "content_type": "application/json",
          "metadata": {"written-by": "drbook", "run-id": "42"}}, "head_object's fields")
    c.eq(head.get("last_modified"), obj["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ"),
         "last_modified in RFC 3339 UTC")
    c.ok("replication_status" in head, "replication_status is a field (null when moto does not "
         "report one)")
    c.eq(r.result("put-plain"), {"etag": "d41d8cd98f00b204e9800998ecf8427e", "version_id": None},
         "an empty object in an unversioned bucket: MD5 of nothing, version null")
    c.eq((r.result("missing-ok") or {}).get("exists"), False,
         "missing_ok: a missing object is exists=false")

    # The documented wait: head_object with missing_ok under an until, polling while the
    # object is missing, done once it arrives (written here by boto3 when the run has polled).
    log = os.path.join(tmp, "s3-wait.jsonl")

    def polled_twice():
        if os.path.exists(log):
            with open(log) as f:
                return sum('"HeadObject"' in line for line in f) >= 2
        return False

    def late_writer():
        if wait_for(polled_twice, 60, 0.1):
            s3.put_object(Bucket="prod-assets-eu", Key="dr/late.json", Body=b"late")

    writer = threading.Thread(target=late_writer)
    writer.start()
    r = run(tmp, env, "s3-wait", """
  - id: wait
    action: aws.s3.head_object
    with: { bucket: prod-assets-eu, key: dr/late.json, missing_ok: true }
    until: result.exists and result.size == 4
    every: 250ms
    timeout: 60s
""")
    writer.join()
    heads = [x for x in r.calls if x["operation"] == "HeadObject"]
    c.ok(r.rc == 0 and (r.result("wait") or {}).get("exists") is True and len(heads) >= 3,
         "an until over head_object(missing_ok) polls while the object is missing and ends "
         "when it arrives (%d HEADs): %s" % (len(heads), r.stderr))

    cases = [
        ("no-repl", "aws.s3.get_bucket_replication", "{ bucket: plain-bucket }",
         "ReplicationConfigurationNotFoundError"),
        ("no-bucket-repl", "aws.s3.get_bucket_replication", "{ bucket: no-such-bucket-x }",
         "NoSuchBucket"),
        ("no-object", "aws.s3.head_object", "{ bucket: prod-assets, key: nope/x }", "NotFound"),
        ("no-bucket-head", "aws.s3.head_object",
         "{ bucket: no-such-bucket-x, key: a, missing_ok: true }", "NoSuchBucket"),
        ("no-bucket-put", "aws.s3.put_object", "{ bucket: no-such-bucket-x, key: a, body: x }",
         "NoSuchBucket"),
    ]
    for name, action, args, code in cases:
        r = run(tmp, env, name, f"  - id: x\n    action: {action}\n    with: {args}\n")
        e = r.ends.get("x") or {}
        c.ok(r.rc == 1 and e.get("code") == "not_found" and code in e.get("error", ""),
             f"{name}: exit 1, not_found, {code} in the message: {e}")
    r = run(tmp, env, "s3-badmeta", """
  - id: x
    action: aws.s3.put_object
    with: { bucket: plain-bucket, key: m, metadata: { "bad name": v } }
""")
    c.ok(r.rc == 1 and not r.calls and "metadata.bad name" in
         (r.ends.get("x") or {}).get("error", ""), "a metadata name with a space: refused "
         "before any request")
    c.ok("Contents" not in s3.list_objects_v2(Bucket="plain-bucket", Prefix="m"),
         "and nothing written")


def elasticache_part(moto, tmp, env, c):
    ec = moto.client("elasticache")
    r = run(tmp, env, "cache", """
  - id: create
    action: aws.elasticache.create_replication_group
    with:
      id: prod-cache-eu
      description: rebuilt on failover
      engine: redis
      node_type: cache.r6g.large
      num_cache_clusters: 2
      automatic_failover: true
      multi_az: true
      cache_subnet_group: prod-cache-eu
      security_group_ids: [sg-0aaa, sg-0bbb]
      tags: { team: sre }
  - id: create-again
    action: aws.elasticache.create_replication_group
    with: { id: prod-cache-eu, node_type: cache.t3.micro }
  - id: describe
    action: aws.elasticache.describe_replication_groups
    with: { id: prod-cache-eu }
  - id: later
    action: aws.elasticache.modify_replication_group
    with: { id: prod-cache-eu, node_type: cache.r6g.2xlarge }
  - id: scale
    action: aws.elasticache.modify_replication_group
    with: { id: prod-cache-eu, node_type: cache.r6g.xlarge, apply_immediately: true }
  - id: all
    action: aws.elasticache.describe_replication_groups
""")
    c.eq(r.rc, 0, "ElastiCache run succeeds: " + r.stderr)
    g = r.result("create") or {}
    c.eq({k: g.get(k) for k in ("id", "description", "status", "engine", "node_type",
                                "automatic_failover", "multi_az", "cluster_enabled",
                                "created")},
         {"id": "prod-cache-eu", "description": "rebuilt on failover", "status": "available",
          "engine": "redis", "node_type": "cache.r6g.large", "automatic_failover": "enabled",
          "multi_az": "enabled", "cluster_enabled": False, "created": True},
         "create: the group's fields, created=true")
    c.ok(isinstance(g.get("primary_endpoint"), dict) and
         g["primary_endpoint"].get("address", "").startswith("master.prod-cache-eu.") and
         g["primary_endpoint"].get("port") == 6379, "create: primary_endpoint {address, port}")
    c.eq(g.get("member_clusters"), ["prod-cache-eu-001"], "member clusters")
    ng = (g.get("node_groups") or [{}])[0]
    c.eq((ng.get("id"), [m.get("role") for m in ng.get("members", [])]), ("0001", ["primary"]),
         "node group with its members and roles")
    create = [x for x in r.calls if x["operation"] == "CreateReplicationGroup"][0]
    c.eq({k: create["request"]["params"].get(k) for k in (
        "NumCacheClusters", "SecurityGroupIds.SecurityGroupId.1",
        "SecurityGroupIds.SecurityGroupId.2", "Tags.Tag.1.Key", "Tags.Tag.1.Value",
        "CacheSubnetGroupName", "MultiAZEnabled")},
        {"NumCacheClusters": 2, "SecurityGroupIds.SecurityGroupId.1": "sg-0aaa",
         "SecurityGroupIds.SecurityGroupId.2": "sg-0bbb", "Tags.Tag.1.Key": "team",
         "Tags.Tag.1.Value": "sre", "CacheSubnetGroupName": "prod-cache-eu",
         "MultiAZEnabled": True}, "the Query parameters as ElastiCache's model names them")
    again = r.result("create-again") or {}
    c.eq((again.get("created"), again.get("node_type")), (False, "cache.r6g.large"),
         "creating an existing group: success, created=false, returned as it is")
    c.eq([g["id"] for g in (r.result("describe") or {}).get("groups", [])], ["prod-cache-eu"],
         "describe by id")
    c.eq((r.result("later") or {}).get("node_type"), "cache.r6g.large",
         "modify without apply_immediately: left for the maintenance window")
    later = [x for x in r.calls if x["operation"] == "ModifyReplicationGroup"][0]
    c.eq(later["request"]["params"].get("ApplyImmediately"), False,
         "ApplyImmediately=false is sent")
    c.eq((r.result("scale") or {}).get("node_type"), "cache.r6g.xlarge",
         "modify with apply_immediately: the new node type")
    c.eq([g["id"] for g in (r.result("all") or {}).get("groups", [])], ["prod-cache-eu"],
         "describe without id: every group")
    rg = ec.describe_replication_groups(ReplicationGroupId="prod-cache-eu")["ReplicationGroups"]
    c.eq((rg[0]["CacheNodeType"], rg[0]["AutomaticFailover"], rg[0]["MultiAZ"]),
         ("cache.r6g.xlarge", "enabled", "enabled"), "boto3 reads back the scaled group")

    for name, action in (("cache-missing", "aws.elasticache.describe_replication_groups"),
                         ("cache-missing-mod", "aws.elasticache.modify_replication_group")):
        r = run(tmp, env, name, f"  - id: x\n    action: {action}\n    with: {{ id: nope }}\n")
        e = r.ends.get("x") or {}
        c.ok(r.rc == 1 and e.get("code") == "not_found" and
             "ReplicationGroupNotFoundFault" in e.get("error", ""),
             f"{name}: exit 1, not_found, ReplicationGroupNotFoundFault: {e}")
    r = run(tmp, env, "cache-pre", "  - id: s\n    action: sleep\n    with: { duration: 0s }\n",
            preflight="""
  - id: mk
    action: aws.elasticache.create_replication_group
    with: { id: never-made }
""")
    c.ok(r.rc == 2 and not r.calls, "create in preflight: exit 2, nothing sent")
    c.eq([x["ReplicationGroupId"] for x in ec.describe_replication_groups()["ReplicationGroups"]],
         ["prod-cache-eu"], "no group was created by the refused preflight")


def main():
    c = Checks()
    tmp = tempfile.mkdtemp(prefix="drb-catinfra-")
    with MotoServer(elasticache_modify=True) as moto:
        env = moto.env()
        for part in (ec2_part, s3_part, elasticache_part):
            try:
                part(moto, tmp, env, c)
            except Exception as e:  # a crash in one part still reports the others
                import traceback
                traceback.print_exc()
                c.ok(False, f"{part.__name__} raised {e!r}")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
