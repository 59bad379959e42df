#!/usr/bin/env python3
"""drbook's AWS actions against moto_server with SigV4 signature checking on.

Starts moto (in a child process, on a free 127.0.0.1 port) with INITIAL_NO_AUTH_ACTION_COUNT
set: the seed (an IAM user with an access key, the RDS instances, the Route 53 zone, the ECS
service, the SNS topic) is created inside the no-auth window, then the window is closed and
every later request must carry a valid signature of that user's key. Each catalog action is
run through tests/tools/aws_action_tool ($BUILD/tests/aws_action_tool) and its result is
checked against what boto3 and the AWS CLI see. Also: call records (what the audit log gets)
hold service, operation, region, redacted request, status, latency and response and no
secret; a wrong secret fails with SignatureDoesNotMatch after exactly one request; throttling
is retried and denials are not (a local fault endpoint). Prints "N passed, M failed".

moto 5 checks signatures of signed GET requests with an empty body against a body rebuilt
from the query string (boto3's own GETs fail too): the child process fixes that one method
(MotoServer.fix_get_body) so that Route 53's GET operations are really verified.
"""
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("SRC") or os.path.abspath(os.path.join(HERE, "..", ".."))
REGION = "eu-west-1"

# ---- moto in a child process ------------------------------------------------------------


def serve_moto():
    """Child mode: run moto, print the port, log each request, exit when stdin closes."""
    os.environ.setdefault("INITIAL_NO_AUTH_ACTION_COUNT", "1000000")
    from moto.iam import access_control as ac
    from moto.moto_server import threaded_moto_server as tms

    orig = ac.IAMRequestBase._create_aws_request

    def fix_get_body(self):
        # moto signs `self._body or self._data`: for a GET without a body that is the
        # query dict (or the headers), so no correct signature can match. Use the real
        # (empty) body, as AWS does.
        if not self._body and self._method in ("GET", "HEAD", "DELETE"):
            saved, self._data = self._data, b""
            try:
                return orig(self)
            finally:
                self._data = saved
        return orig(self)

    ac.IAMRequestBase._create_aws_request = fix_get_body
    log_path = os.environ.get("MOTO_REQUEST_LOG")
    lock = threading.Lock()
    app_call = tms.DomainDispatcherApplication.__call__

    def counting_call(self, environ, start_response):
        if log_path and not environ.get("PATH_INFO", "").startswith("/moto-api"):
            auth = environ.get("HTTP_AUTHORIZATION", "")
            key = auth.split("Credential=")[1].split("/")[0] if "Credential=" in auth else "-"
            with lock, open(log_path, "a") as f:
                f.write(f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} {key}\n")
        return app_call(self, environ, start_response)

    tms.DomainDispatcherApplication.__call__ = counting_call
    server = tms.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    try:
        sys.stdin.read()  # returns when the parent closes the pipe or dies
    finally:
        server.stop()


class Moto:
    def __init__(self, tmp):
        self.log = os.path.join(tmp, "moto-requests.log")
        open(self.log, "w").close()
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="1000000", MOTO_REQUEST_LOG=self.log)
        self.errlog = os.path.join(tmp, "moto-stderr.log")
        with open(self.errlog, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--serve-moto"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            with open(self.errlog) as f:
                raise RuntimeError(f"moto did not start (is moto[server] installed?): "
                                   f"{line!r}\n{f.read()[-3000:]}")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def set_auth_after(self, n):
        """Requests left before signatures are checked (0: from now on)."""
        req = urllib.request.Request(self.url + "/moto-api/reset-auth", data=str(n).encode(),
                                     method="POST", headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(req, timeout=10) as r:
            json.load(r)

    def requests(self):
        with open(self.log) as f:
            return f.read().splitlines()

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()


# ---- the tool -----------------------------------------------------------------------------


def find_tool():
    build = os.environ.get("BUILD")
    cands = [os.environ.get("AWS_ACTION_TOOL")]
    if build:
        cands.append(os.path.join(build, "tests", "aws_action_tool"))
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    sys.exit(f"aws_action_tool not found (BUILD={build!r}): build the aws_action_tool "
             "target first; this test does not skip")


class Result:
    def __init__(self, p, calls):
        self.code = p.returncode
        self.out = p.stdout
        self.err = p.stderr
        self.calls = calls
        self.json = None
        if self.code == 0:
            self.json = json.loads(p.stdout)

    def __repr__(self):
        return f"exit {self.code}\nstdout: {self.out}\nstderr: {self.err}"


class Env:
    """The tool's environment: endpoint, credentials, a clean HOME, a call-record file."""

    def __init__(self, tool, tmp, url, ak, sk):
        self.tool, self.tmp, self.url = tool, tmp, url
        self.base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.base.update(HOME=tmp, AWS_CONFIG_FILE=os.path.join(tmp, "no-config"),
                         AWS_SHARED_CREDENTIALS_FILE=os.path.join(tmp, "no-credentials"),
                         AWS_ENDPOINT_URL=url, AWS_REGION=REGION, AWS_ACCESS_KEY_ID=ak,
                         AWS_SECRET_ACCESS_KEY=sk)
        self.n = 0

    def run(self, action, args=None, extra=None, opts=(), drop=()):
        self.n += 1
        calls = os.path.join(self.tmp, f"calls-{self.n}.jsonl")
        env = dict(self.base)
        for k in drop:
            env.pop(k, None)
        env.update(extra or {})
        env["DRB_AWS_CALLS"] = calls
        p = subprocess.run([self.tool, *opts, action, json.dumps(args or {})],
                           capture_output=True, text=True, timeout=120, env=env)
        recs = []
        if os.path.exists(calls):
            with open(calls) as f:
                recs = [json.loads(l) for l in f if l.strip()]
        return Result(p, recs)

    def ok(self, action, args=None, **kw):
        r = self.run(action, args, **kw)
        assert r.code == 0, f"{action} failed: {r}"
        return r


# ---- harness ------------------------------------------------------------------------------


class Suite:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def case(self, name, fn, *a):
        try:
            fn(*a)
            self.passed += 1
            print(f"ok   {name}", flush=True)
        except Exception:
            self.failed += 1
            print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 1 if self.failed or not self.passed else 0


def boto(service, url, ak, sk, region=REGION):
    import boto3
    return boto3.client(service, endpoint_url=url, region_name=region, aws_access_key_id=ak,
                        aws_secret_access_key=sk)


def seed(url):
    """Inside the no-auth window: IAM user + key, and the resources the actions touch."""
    dummy = ("AKIAIOSFODNN7EXAMPLE", "seed-secret")
    iam = boto("iam", url, *dummy)
    iam.create_user(UserName="drbook")
    key = iam.create_access_key(UserName="drbook")["AccessKey"]
    iam.put_user_policy(UserName="drbook", PolicyName="admin", PolicyDocument=json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    rds = boto("rds", url, *dummy)
    rds.create_db_instance(DBInstanceIdentifier="prod-db", Engine="postgres",
                           DBInstanceClass="db.t3.micro", MasterUsername="dr",
                           MasterUserPassword="not-a-secret-1", AllocatedStorage=20,
                           MultiAZ=True)
    rds.create_db_instance_read_replica(DBInstanceIdentifier="prod-db-eu",
                                        SourceDBInstanceIdentifier="prod-db")
    rds.create_db_snapshot(DBInstanceIdentifier="prod-db", DBSnapshotIdentifier="snap-1")
    rds.create_db_cluster(DBClusterIdentifier="aurora", Engine="aurora-postgresql",
                          MasterUsername="dr", MasterUserPassword="not-a-secret-1")
    for i in ("aurora-1", "aurora-2"):
        rds.create_db_instance(DBInstanceIdentifier=i, DBClusterIdentifier="aurora",
                               Engine="aurora-postgresql", DBInstanceClass="db.r5.large")
    r53 = boto("route53", url, *dummy)
    zone = r53.create_hosted_zone(Name="example.com", CallerReference="z")["HostedZone"]["Id"]
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": "api.example.com", "Type": "CNAME", "TTL": 60,
            "ResourceRecords": [{"Value": "api.us-east-1.example.com"}]}}]})
    hc = r53.create_health_check(CallerReference="hc", HealthCheckConfig={
        "Type": "HTTP", "FullyQualifiedDomainName": "api.us-east-1.example.com", "Port": 80,
        "ResourcePath": "/health"})["HealthCheck"]["Id"]
    ec2 = boto("ec2", url, *dummy)
    inst = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    doc = json.dumps({"instanceId": inst["InstanceId"], "region": REGION,
                      "availabilityZone": inst["Placement"]["AvailabilityZone"],
                      "instanceType": inst["InstanceType"], "imageId": inst["ImageId"],
                      "privateIp": inst["PrivateIpAddress"], "accountId": "123456789012",
                      "architecture": "x86_64"})
    ecs = boto("ecs", url, *dummy)
    ecs.create_cluster(clusterName="prod-eu")
    ecs.register_container_instance(cluster="prod-eu", instanceIdentityDocument=doc)
    # moto 5's Fargate run_task is broken: EC2 launch type on a registered instance.
    ecs.register_task_definition(family="api", containerDefinitions=[
        {"name": "api", "image": "api:1", "memory": 128, "cpu": 128}])
    ecs.create_service(cluster="prod-eu", serviceName="api", taskDefinition="api",
                       desiredCount=1)
    task = ecs.run_task(cluster="prod-eu", taskDefinition="api",
                        startedBy="drill")["tasks"][0]["taskArn"]
    sns = boto("sns", url, *dummy)
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    sqs = boto("sqs", url, *dummy)
    q = sqs.create_queue(QueueName="alerts-copy")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn,
                  Attributes={"RawMessageDelivery": "true"})
    return dict(ak=key["AccessKeyId"], sk=key["SecretAccessKey"], zone=zone, hc=hc,
                task=task, topic=topic, queue=q)


# ---- cases --------------------------------------------------------------------------------


def check_records(recs, secret):
    """Every call record has what replay needs and nothing secret."""
    assert recs, "no call record"
    text = json.dumps(recs)
    for bad in (secret, "Authorization", "authorization", "X-Amz-Security-Token",
                "Signature=", "AWS4-HMAC-SHA256"):
        assert bad not in text, f"call record holds {bad!r}"
    for r in recs:
        for k in ("service", "operation", "region", "request", "status", "latency_ms",
                  "response"):
            assert k in r, f"call record lacks {k}: {r}"
        assert r["request"]["method"] and r["request"]["url"].startswith("http://127.0.0.1:")
        assert isinstance(r["response"]["body"], str) and r["response"]["status"] == r["status"]
        assert r["latency_ms"] >= 0


def main():
    if "--serve-moto" in sys.argv:
        serve_moto()
        return 0
    tool = find_tool()
    suite = Suite()
    tmp_obj = tempfile.TemporaryDirectory(prefix="drbook-aws-")
    tmp = tmp_obj.name
    moto = None
    try:
        moto = Moto(tmp)
        s = seed(moto.url)
        moto.set_auth_after(0)
        url, ak, sk = moto.url, s["ak"], s["sk"]
        env = Env(tool, tmp, url, ak, sk)
        b = lambda svc: boto(svc, url, ak, sk)  # noqa: E731
        run_cases(suite, env, moto, s, b, tool, tmp)
    except Exception:
        suite.failed += 1
        print(f"FAIL setup\n{traceback.format_exc()}", flush=True)
    finally:
        if moto:
            moto.stop()
        tmp_obj.cleanup()
    return suite.finish()


def run_cases(suite, env, moto, s, b, tool, tmp):
    url, ak, sk = env.url, s["ak"], s["sk"]

    def auth_is_on():
        # The window is closed: boto3 with a wrong secret is refused.
        import botocore.exceptions
        try:
            boto("sts", url, ak, "wrong" + sk[5:]).get_caller_identity()
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "SignatureDoesNotMatch", e.response
            return
        raise AssertionError("moto accepted a wrong signature: auth is not on")
    suite.case("moto checks signatures", auth_is_on)

    def sts():
        r = env.ok("aws.sts.get_caller_identity")
        want = b("sts").get_caller_identity()
        assert r.json["account"] == want["Account"] and r.json["arn"] == want["Arn"], r.json
        assert r.json["arn"].endswith(":user/drbook")
        check_records(r.calls, sk)
        assert r.calls[0]["service"] == "sts" and r.calls[0]["operation"] == "GetCallerIdentity"
        assert r.calls[0]["region"] == REGION
    suite.case("sts.get_caller_identity", sts)

    def rds_fields(r, want):
        assert r["id"] == want["DBInstanceIdentifier"]
        assert r["status"] == want["DBInstanceStatus"]
        assert r["engine"] == want["Engine"]
        assert r["multi_az"] == want["MultiAZ"]
        assert r["az"] == want.get("AvailabilityZone")
        assert r["secondary_az"] == want.get("SecondaryAvailabilityZone")
        assert r["endpoint"] == want["Endpoint"]["Address"]
        assert r["port"] == want["Endpoint"]["Port"]
        assert r["replica_source"] == want.get("ReadReplicaSourceDBInstanceIdentifier")
        assert r["replicas"] == want.get("ReadReplicaDBInstanceIdentifiers", [])

    def describe():
        for i in ("prod-db", "prod-db-eu"):
            r = env.ok("aws.rds.describe_db_instance", {"id": i})
            want = b("rds").describe_db_instances(DBInstanceIdentifier=i)["DBInstances"][0]
            rds_fields(r.json, want)
            check_records(r.calls, sk)
            rec = r.calls[0]
            assert rec["operation"] == "DescribeDBInstances" and rec["service"] == "rds"
            assert rec["request"]["params"] == {"DBInstanceIdentifier": i}, rec["request"]
        r = env.ok("aws.rds.describe_db_instance", {"id": "prod-db-eu"})
        assert r.json["replica_source"] == "prod-db"
        r = env.ok("aws.rds.describe_db_instance", {"id": "prod-db"})
        assert r.json["replica_source"] is None and r.json["replicas"] == ["prod-db-eu"]
        # AWS CLI as an independent client.
        cli = subprocess.run(["aws", "--endpoint-url", url, "--region", REGION, "--output",
                              "json", "rds", "describe-db-instances",
                              "--db-instance-identifier", "prod-db"], capture_output=True,
                             text=True, timeout=60, env=dict(env.base))
        assert cli.returncode == 0, cli.stderr
        rds_fields(r.json, json.loads(cli.stdout)["DBInstances"][0])
    suite.case("rds.describe_db_instance (boto3 and AWS CLI agree)", describe)

    def not_found():
        r = env.run("aws.rds.describe_db_instance", {"id": "no-such-db"})
        assert r.code == 1, r
        assert "not_found" in r.err and "rds DescribeDBInstances: DBInstanceNotFound" in r.err
        assert "(request id " in r.err, r.err
    suite.case("rds.describe_db_instance missing -> DBInstanceNotFound", not_found)

    def snapshots():
        r = env.ok("aws.rds.describe_db_snapshots", {"id": "prod-db"})
        want = b("rds").describe_db_snapshots(DBInstanceIdentifier="prod-db")["DBSnapshots"]
        assert sorted(x["snapshot"] for x in r.json) == sorted(
            w["DBSnapshotIdentifier"] for w in want), (r.json, want)
        assert "snap-1" in [x["snapshot"] for x in r.json]
        times = [x["created_at"] for x in r.json]
        assert times == sorted(times, reverse=True), times
        assert all(x["status"] == "available" for x in r.json)
    suite.case("rds.describe_db_snapshots", snapshots)

    def reboot():
        r = env.ok("aws.rds.reboot_db_instance", {"id": "prod-db", "force_failover": True})
        assert r.json["id"] == "prod-db" and "status" in r.json
        assert r.calls[0]["request"]["params"]["ForceFailover"] is True
    suite.case("rds.reboot_db_instance force_failover", reboot)

    def failover_cluster():
        r = env.ok("aws.rds.failover_db_cluster", {"cluster": "aurora", "target": "aurora-2"})
        want = b("rds").describe_db_clusters(DBClusterIdentifier="aurora")["DBClusters"][0]
        writer = [m["DBInstanceIdentifier"] for m in want["DBClusterMembers"]
                  if m["IsClusterWriter"]]
        assert r.json["id"] == "aurora" and r.json["status"] == want["Status"], r.json
        assert [r.json["writer"]] == writer, (r.json, writer)
    suite.case("rds.failover_db_cluster", failover_cluster)

    def restores():
        r = env.ok("aws.rds.restore_db_instance_from_snapshot",
                   {"snapshot": "snap-1", "target": "restored-snap"})
        assert r.json["id"] == "restored-snap"
        r2 = env.ok("aws.rds.restore_db_instance_to_point_in_time",
                    {"source": "prod-db", "target": "restored-pitr", "latest": True})
        assert r2.json["id"] == "restored-pitr"
        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
        r3 = env.ok("aws.rds.restore_db_instance_to_point_in_time",
                    {"source": "prod-db", "target": "restored-time", "restore_time": t})
        assert r3.calls[0]["request"]["params"]["RestoreTime"] == t
        ids = {d["DBInstanceIdentifier"] for d in b("rds").describe_db_instances()["DBInstances"]}
        assert {"restored-snap", "restored-pitr", "restored-time"} <= ids, ids
        bad = env.run("aws.rds.restore_db_instance_to_point_in_time",
                      {"source": "prod-db", "target": "x", "latest": True, "restore_time": t})
        assert bad.code == 1 and "exactly one" in bad.err and not bad.calls, bad
    suite.case("rds.restore_db_instance_* (snapshot, latest, time)", restores)

    def promote():
        r = env.ok("aws.rds.promote_read_replica", {"id": "prod-db-eu"})
        assert r.json["id"] == "prod-db-eu"
        d = env.ok("aws.rds.describe_db_instance", {"id": "prod-db-eu"})
        want = b("rds").describe_db_instances(DBInstanceIdentifier="prod-db-eu")["DBInstances"][0]
        rds_fields(d.json, want)
    suite.case("rds.promote_read_replica", promote)

    zone = s["zone"]

    def get_record():
        r = env.ok("aws.route53.get_record",
                   {"zone_id": zone, "name": "api.example.com", "type": "CNAME"})
        want = b("route53").list_resource_record_sets(
            HostedZoneId=zone, StartRecordName="api.example.com", StartRecordType="CNAME",
            MaxItems="1")["ResourceRecordSets"][0]
        assert r.json["name"] == want["Name"] and r.json["type"] == "CNAME"
        assert r.json["ttl"] == want["TTL"]
        assert r.json["values"] == [x["Value"] for x in want["ResourceRecords"]]
        assert r.calls[0]["region"] == "us-east-1", "Route 53 is signed for us-east-1"
        assert r.calls[0]["request"]["method"] == "GET"
        missing = env.run("aws.route53.get_record",
                          {"zone_id": zone, "name": "nope.example.com", "type": "CNAME"})
        assert missing.code == 1 and "not_found" in missing.err, missing
    suite.case("route53.get_record", get_record)

    def upsert():
        r = env.ok("aws.route53.upsert_record",
                   {"zone_id": zone, "name": "api.example.com", "type": "CNAME", "ttl": 30,
                    "values": ["api.eu-west-1.example.com"], "wait": True})
        assert r.json["status"] == "INSYNC" and r.json["change_id"], r.json
        ch = b("route53").get_change(Id=r.json["change_id"])["ChangeInfo"]
        assert ch["Status"] == "INSYNC"
        g = env.ok("aws.route53.get_change", {"id": r.json["change_id"]})
        assert g.json["status"] == "INSYNC" and g.json["change_id"] == r.json["change_id"]
        cli = subprocess.run(["aws", "--endpoint-url", url, "--region", "us-east-1",
                              "--output", "json", "route53",
                              "list-resource-record-sets", "--hosted-zone-id", zone],
                             capture_output=True, text=True, timeout=60, env=dict(env.base))
        assert cli.returncode == 0, cli.stderr
        rec = [x for x in json.loads(cli.stdout)["ResourceRecordSets"]
               if x["Name"] == "api.example.com." and x["Type"] == "CNAME"][0]
        assert rec["TTL"] == 30 and rec["ResourceRecords"] == [
            {"Value": "api.eu-west-1.example.com"}], rec
        body = r.calls[0]["request"]["body"]
        assert "<Action>UPSERT</Action>" in body and "api.eu-west-1.example.com" in body
    suite.case("route53.upsert_record wait + get_change (AWS CLI agrees)", upsert)

    def delete_record():
        env.ok("aws.route53.upsert_record",
               {"zone_id": zone, "name": "drill-x.example.com", "type": "CNAME", "ttl": 45,
                "values": ["a.example.com"]})
        r = env.ok("aws.route53.delete_record",
                   {"zone_id": zone, "name": "drill-x.example.com", "type": "CNAME"})
        assert r.json["deleted"] is True and r.json["change_id"], r.json
        ops = [c["operation"] for c in r.calls]
        assert ops == ["ListResourceRecordSets", "ChangeResourceRecordSets"], ops
        body = r.calls[1]["request"]["body"]
        assert ("<Action>DELETE</Action>" in body and "<TTL>45</TTL>" in body and
                "a.example.com" in body), body
        left = [x["Name"] for x in b("route53").list_resource_record_sets(
            HostedZoneId=zone)["ResourceRecordSets"]]
        assert "drill-x.example.com." not in left, left
        again = env.ok("aws.route53.delete_record",
                       {"zone_id": zone, "name": "drill-x.example.com", "type": "CNAME"})
        assert again.json == {"deleted": False}, again.json
        assert [c["operation"] for c in again.calls] == ["ListResourceRecordSets"]
    suite.case("route53.delete_record (as it is now; a missing record: deleted false)",
               delete_record)

    def health():
        r = env.ok("aws.route53.get_health_check_status", {"id": s["hc"]})
        obs = b("route53").get_health_check_status(HealthCheckId=s["hc"])[
            "HealthCheckObservations"]
        fails = sum(1 for o in obs if not o["StatusReport"]["Status"].startswith("Success"))
        assert r.json == {"healthy": fails < len(obs), "reporting": len(obs),
                          "failing": fails}, (r.json, obs)
        u = env.ok("aws.route53.update_health_check", {"id": s["hc"], "disabled": True,
                                                       "inverted": False})
        assert u.json["id"] == s["hc"]
        cfg = b("route53").get_health_check(HealthCheckId=s["hc"])["HealthCheck"][
            "HealthCheckConfig"]
        assert cfg["Disabled"] is True and cfg["Inverted"] is False, cfg
    suite.case("route53 health check status and update", health)

    def ecs():
        r = env.ok("aws.ecs.describe_service", {"cluster": "prod-eu", "service": "api"})
        want = b("ecs").describe_services(cluster="prod-eu", services=["api"])["services"][0]
        prim = [d for d in want["deployments"] if d["status"] == "PRIMARY"]
        assert r.json["status"] == want["status"] and r.json["desired"] == want["desiredCount"]
        assert r.json["running"] == want["runningCount"]
        assert r.json["pending"] == want["pendingCount"]
        assert r.json["rollout_state"] == (prim[0].get("rolloutState") if prim else None)
        rec = r.calls[0]
        assert rec["request"]["target"] == \
            "AmazonEC2ContainerServiceV20141113.DescribeServices", rec
        assert r.json["task_definition"] == want["taskDefinition"], r.json
        t = env.ok("aws.ecs.describe_task_definition",
                   {"task_definition": r.json["task_definition"]})
        assert (t.json["family"], [(x["name"], x["image"], x["cpu"], x["memory"],
                                    x["essential"]) for x in t.json["containers"]]) == \
            ("api", [("api", "api:1", 128, 128, True)]), t.json
        u = env.ok("aws.ecs.update_service",
                   {"cluster": "prod-eu", "service": "api", "desired_count": 3})
        assert u.json["desired"] == 3
        assert b("ecs").describe_services(cluster="prod-eu", services=["api"])["services"][0][
            "desiredCount"] == 3
        f = env.ok("aws.ecs.update_service", {"cluster": "prod-eu", "service": "api",
                                              "force_new_deployment": True})
        assert f.json["desired"] == 3
        m = env.run("aws.ecs.describe_service", {"cluster": "prod-eu", "service": "nope"})
        assert m.code == 1 and "not_found" in m.err and "MISSING" in m.err, m
    suite.case("ecs.describe_service / describe_task_definition / update_service", ecs)

    def tasks():
        r = env.ok("aws.ecs.list_tasks", {"cluster": "prod-eu", "service": "api"})
        want = b("ecs").list_tasks(cluster="prod-eu", serviceName="api")["taskArns"]
        assert r.json["tasks"] == want and s["task"] in want, (r.json, want)
        st = env.ok("aws.ecs.stop_task", {"cluster": "prod-eu", "task": s["task"],
                                          "reason": "drill"})
        assert st.json["task"] == s["task"], st.json
        t = b("ecs").describe_tasks(cluster="prod-eu", tasks=[s["task"]])["tasks"][0]
        assert st.json["last_status"] == t["lastStatus"], (st.json, t["lastStatus"])
        assert t["desiredStatus"] == "STOPPED" and t["stoppedReason"] == "drill"
    suite.case("ecs.list_tasks / stop_task", tasks)

    def sns():
        msg = "Failover drill: api -> eu-west-1 & <ok> 100%"
        r = env.ok("aws.sns.publish", {"topic_arn": s["topic"], "subject": "drbook drill",
                                       "message": msg})
        assert r.json["message_id"]
        got = b("sqs").receive_message(QueueUrl=s["queue"], WaitTimeSeconds=2)["Messages"]
        assert got[0]["Body"] == msg, got
    suite.case("sns.publish (delivered to a subscribed queue)", sns)

    def cloudwatch():
        env.ok("aws.cloudwatch.put_metric_data",
               {"namespace": "drbook", "name": "rto_s", "value": 42.5, "unit": "Seconds",
                "dimensions": {"runbook": "region-failover"}})
        m = b("cloudwatch").list_metrics(Namespace="drbook")["Metrics"]
        assert {"Namespace": "drbook", "MetricName": "rto_s",
                "Dimensions": [{"Name": "runbook", "Value": "region-failover"}]} in m, m
        st = b("cloudwatch").get_metric_statistics(
            Namespace="drbook", MetricName="rto_s", StartTime=time.time() - 600,
            EndTime=time.time() + 60, Period=60, Statistics=["Maximum"],
            Dimensions=[{"Name": "runbook", "Value": "region-failover"}])["Datapoints"]
        assert st and st[0]["Maximum"] == 42.5, st
    suite.case("cloudwatch.put_metric_data", cloudwatch)

    def wrong_secret():
        before = len(moto.requests())
        r = env.run("aws.sts.get_caller_identity",
                    extra={"AWS_SECRET_ACCESS_KEY": "x" * 40})
        after = moto.requests()[before:]
        assert r.code == 1, r
        assert "SignatureDoesNotMatch" in r.err and "denied" in r.err, r.err
        assert len(after) == 1, f"expected exactly one request, moto saw {after}"
        assert len(r.calls) == 1 and r.calls[0]["response"]["attempts"] == 1
        assert "x" * 40 not in json.dumps(r.calls)
        before = len(moto.requests())
        r = env.run("aws.ecs.describe_service", {"cluster": "prod-eu", "service": "api"},
                    extra={"AWS_SECRET_ACCESS_KEY": "y" * 40})
        assert r.code == 1 and "SignatureDoesNotMatch" in r.err, r
        assert len(moto.requests()) - before == 1
        before = len(moto.requests())
        r = env.run("aws.rds.describe_db_instance", {"id": "prod-db"},
                    extra={"AWS_ACCESS_KEY_ID": "AKIAUNKNOWNKEY000000"})
        assert r.code == 1 and "InvalidClientTokenId" in r.err and "denied" in r.err, r
        assert len(moto.requests()) - before == 1
    suite.case("wrong secret / unknown key: denied after exactly one request", wrong_secret)

    def read_only():
        before = len(moto.requests())
        r = env.run("aws.rds.promote_read_replica", {"id": "prod-db"}, opts=["--read-only"])
        assert r.code == 1 and "mutating" in r.err and "denied" in r.err, r
        assert len(moto.requests()) == before and not r.calls
        ro = env.ok("aws.rds.describe_db_instance", {"id": "prod-db"}, opts=["--read-only"])
        assert ro.json["id"] == "prod-db"
        bad = env.run("aws.rds.describe_db_instance", {"id": "prod-db", "idd": "x"})
        assert bad.code == 1 and "idd" in bad.err and not bad.calls, bad
    suite.case("read-only context refuses mutating actions; unknown argument refused",
               read_only)

    def profiles():
        cred = os.path.join(tmp, "credentials")
        conf = os.path.join(tmp, "config")
        with open(cred, "w") as f:
            f.write(f"# drill credentials\n[default]\naws_access_key_id = AKIAWRONGWRONG000000\n"
                    f"aws_secret_access_key = wrong\n\n[drill]\naws_access_key_id = {ak}\n"
                    f"aws_secret_access_key = {sk}\n")
        with open(conf, "w") as f:
            f.write("[profile drill]\nregion = ap-southeast-1\n"
                    "s3 =\n  max_concurrent_requests = 2\n")
        files = {"AWS_SHARED_CREDENTIALS_FILE": cred, "AWS_CONFIG_FILE": conf}
        drop = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
        r = env.ok("aws.sts.get_caller_identity", extra=dict(files, AWS_PROFILE="drill"),
                   drop=drop)
        assert r.json["arn"].endswith(":user/drbook")
        assert r.calls[0]["region"] == "ap-southeast-1", r.calls[0]
        # A connection names profile, region and endpoint; the environment has none.
        conns = json.dumps({"dr": {"kind": "aws", "profile": "drill", "region": REGION,
                                   "endpoint_url": url}})
        r = env.ok("aws.rds.describe_db_instance", {"id": "prod-db", "connection": "dr"},
                   extra=files, drop=drop + ("AWS_ENDPOINT_URL",),
                   opts=["--connections", conns])
        assert r.calls[0]["region"] == REGION and r.json["id"] == "prod-db"
        # The action's own region wins over the connection's: moto has no prod-db there.
        r = env.run("aws.rds.describe_db_instance",
                    {"id": "prod-db", "connection": "dr", "region": "eu-west-2"},
                    extra=files, drop=drop + ("AWS_ENDPOINT_URL",),
                    opts=["--connections", conns])
        assert r.code == 1 and "DBInstanceNotFound" in r.err, r
        assert r.calls[0]["region"] == "eu-west-2"
        # The default profile's wrong key is used when nothing else is named.
        r = env.run("aws.sts.get_caller_identity", extra=files, drop=drop)
        assert r.code == 1 and "InvalidClientTokenId" in r.err, r
        r = env.run("aws.sts.get_caller_identity", drop=drop)
        assert r.code == 1 and "no" in r.err and "credentials" in r.err and not r.calls[0].get(
            "response"), r
    suite.case("profiles, config region and per-connection settings", profiles)

    throttle_cases(suite, env)


# ---- fault endpoint: throttling retried, denial not ---------------------------------------

IDENTITY = (b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            b'<GetCallerIdentityResult><Arn>arn:aws:iam::111122223333:user/x</Arn>'
            b'<UserId>AIDA</UserId><Account>111122223333</Account></GetCallerIdentityResult>'
            b'<ResponseMetadata><RequestId>r-ok</RequestId></ResponseMetadata>'
            b'</GetCallerIdentityResponse>')


def error_xml(code):
    return (f'<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>'
            f'<Message>{code} says no</Message></Error><RequestId>r-{code}</RequestId>'
            f'</ErrorResponse>').encode()


class Fault:
    """A loopback endpoint answering a scripted list of (status, body), then 200 IDENTITY."""

    def __init__(self, script):
        self.script = list(script)
        self.count = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.count += 1
                st, body = outer.script.pop(0) if outer.script else (200, IDENTITY)
                self.send_response(st)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def throttle_cases(suite, env):
    def with_fault(script, fn):
        f = Fault(script)
        try:
            fn(f, {"AWS_ENDPOINT_URL_STS": f.url})
        finally:
            f.close()

    def throttled_then_ok():
        def go(f, extra):
            t = time.monotonic()
            r = env.ok("aws.sts.get_caller_identity", extra=extra)
            assert r.json["account"] == "111122223333"
            assert f.count == 3, f.count
            assert r.calls[0]["response"]["attempts"] == 3
            assert time.monotonic() - t < 15
        with_fault([(400, error_xml("Throttling")), (400, error_xml("RequestLimitExceeded"))],
                   go)
    suite.case("throttling is retried, then succeeds", throttled_then_ok)

    def denied_once():
        def go(f, extra):
            r = env.run("aws.sts.get_caller_identity", extra=extra)
            assert r.code == 1 and "denied" in r.err, r
            assert "sts GetCallerIdentity: AccessDenied: AccessDenied says no (request id " \
                "r-AccessDenied)" in r.err, r.err
            assert f.count == 1, f.count
        with_fault([(403, error_xml("AccessDenied"))] * 5, go)
    suite.case("AccessDenied is not retried", denied_once)

    def always_503():
        def go(f, extra):
            r = env.run("aws.sts.get_caller_identity", extra=extra)
            assert r.code == 1 and "transient" in r.err and "4 attempts" in r.err, r
            assert f.count == 4, f.count
        with_fault([(503, b"")] * 10, go)
    suite.case("5xx retried up to 4 attempts, then transient", always_503)


if __name__ == "__main__":
    sys.exit(main())
