#!/usr/bin/env python3
# The sandbox's fault proxy: clients reach moto through it (AWS_ENDPOINT_URL); it records each
# request's region, service and operation from the SigV4 scope; `inject region-outage`
# alone leaves the us-east-1 control plane up, and with --control-plane every us-east-1
# request (and the global Route 53, STS and IAM APIs) fails in the chosen mode (refused,
# timeout, 5xx) while eu-west-1 and ap-southeast-1 answer. The AWS CLI cross-checks.
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox"))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import (ClientError, ConnectionClosedError,  # noqa: E402
                                 EndpointConnectionError, ReadTimeoutError)
from sandbox_lib.testkit import run_test  # noqa: E402

# (service, region, call, operation as recorded)
CALLS = [
    ("rds", "us-east-1", lambda c: c.describe_db_instances(), "DescribeDBInstances"),
    ("route53", "us-east-1", lambda c: c.list_hosted_zones(), "ListHostedZones"),
    ("sts", "us-east-1", lambda c: c.get_caller_identity(), "GetCallerIdentity"),
    ("iam", "us-east-1", lambda c: c.list_users(), "ListUsers"),
    ("ecs", "us-east-1", lambda c: c.list_clusters(), "ListClusters"),
    ("rds", "eu-west-1", lambda c: c.describe_db_instances(), "DescribeDBInstances"),
    ("ecs", "eu-west-1", lambda c: c.list_clusters(), "ListClusters"),
    ("sts", "eu-west-1", lambda c: c.get_caller_identity(), "GetCallerIdentity"),
    ("rds", "ap-southeast-1", lambda c: c.describe_db_instances(), "DescribeDBInstances"),
]


def requests(sb, since=0):
    p = sb.run("requests", "--json", "--since", str(since))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def last_seq(sb):
    recs = requests(sb)
    return recs[-1]["seq"] if recs else 0


def body(sb, c):
    sb.up()
    v = sb.vars
    c.ok(v["AWS_ENDPOINT_URL"] != json.load(open(os.path.join(sb.dir, "ready.json")))["moto"],
         "AWS_ENDPOINT_URL is the proxy, not moto itself")

    def client(service, region, **cfg):
        cfg.setdefault("retries", {"max_attempts": 1, "mode": "standard"})
        return boto3.client(service, region_name=region, endpoint_url=v["AWS_ENDPOINT_URL"],
                            aws_access_key_id=v["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=v["AWS_SECRET_ACCESS_KEY"],
                            config=Config(**cfg))

    def outcome(service, region, call, **cfg):
        try:
            call(client(service, region, **cfg))
            return "ok"
        except ClientError as e:
            return "%d %s" % (e.response["ResponseMetadata"]["HTTPStatusCode"],
                              e.response["Error"]["Code"])
        except (ConnectionClosedError, EndpointConnectionError) as e:
            return "connection: " + type(e).__name__
        except ReadTimeoutError:
            return "read timeout"

    # --- before any outage: everything answers, and the log names what was called
    seq0 = last_seq(sb)
    got = [outcome(s, r, f) for s, r, f, _ in CALLS]
    c.eq(got, ["ok"] * len(CALLS), "before the outage every call answers")
    client("route53", "us-east-1").list_resource_record_sets(
        HostedZoneId=v["DRB_SANDBOX_ZONE_ID"])
    recs = requests(sb, seq0)
    c.eq([(r["region"], r["service"], r["operation"], r["status"], r["fault"])
          for r in recs],
         [(r, s, op, 200, None) for s, r, _, op in CALLS] +
         [("us-east-1", "route53", "ListResourceRecordSets", 200, None)],
         "requests --json: region, service and operation of each call (Query Action, JSON "
         "X-Amz-Target, Route 53 REST path), status 200, no fault")
    p = sb.run("requests", "--region", "eu-west-1", "--since", str(seq0))
    c.ok(p.returncode == 0 and len(p.stdout.splitlines()) == 3 and
         "ListClusters" in p.stdout, "requests --region filters (text table)")
    c.ok(not any(v["AWS_SECRET_ACCESS_KEY"] in line or v["AWS_ACCESS_KEY_ID"] in line
                 for line in open(os.path.join(sb.dir, "requests.jsonl"))),
         "requests.jsonl holds no credentials")

    # --- the v1 region outage leaves the control plane up
    sb.inject("region-outage")
    c.eq(outcome("rds", "us-east-1", CALLS[0][2]), "ok",
         "inject region-outage alone: the us-east-1 control plane still answers")

    # --- the control-plane outage, in each mode
    want_fail = {"refused": "connection: ConnectionClosedError",
                 "5xx": "503 ServiceUnavailable", "timeout": "read timeout"}
    for mode in ("refused", "5xx", "timeout"):
        res = sb.inject("region-outage", "--control-plane", "--mode", mode, "--hang-s", "30")
        c.eq(res.get("control_plane", {}).get("mode"), mode, "inject --mode %s" % mode)
        seq = last_seq(sb)
        t0 = time.monotonic()
        got = [outcome(s, r, f, read_timeout=2) for s, r, f, _ in CALLS]
        took = time.monotonic() - t0
        c.eq(got, [want_fail[mode] if r == "us-east-1" else "ok" for s, r, f, _ in CALLS],
             "%s: every us-east-1 call (RDS, Route 53, STS and IAM global, ECS) fails; "
             "eu-west-1 and ap-southeast-1 answer" % mode)
        recs = requests(sb, seq)
        c.eq(sorted({(r["region"], r["fault"]) for r in recs}),
             sorted({("us-east-1", mode), ("eu-west-1", None), ("ap-southeast-1", None)}),
             "%s: the log marks the failed us-east-1 requests with the mode" % mode)
        if mode == "timeout":
            hung = [r["ms"] for r in recs if r["fault"] == "timeout"]
            c.ok(hung and all(1500 <= ms < 15000 for ms in hung) and took < 60,
                 "timeout: each hang lasts until the client gives up (2 s), not the 30 s "
                 "bound (%s ms)" % hung)
    # the bound: a client that waits longer than --hang-s gets the connection cut at the bound
    sb.inject("region-outage", "--control-plane", "--mode", "timeout", "--hang-s", "2")
    t0 = time.monotonic()
    got = outcome("rds", "us-east-1", CALLS[0][2], read_timeout=30)
    took = time.monotonic() - t0
    c.ok(got.startswith("connection") and 1.5 <= took < 15,
         "timeout is bounded by --hang-s: the connection is cut after 2 s (%s, %.1fs)"
         % (got, took))
    rc, st = sb.status()
    c.eq(st.get("faults", {}).get("regions"), {"us-east-1": "timeout"},
         "status shows the fault")

    # --- the AWS CLI agrees
    sb.inject("region-outage", "--control-plane", "--mode", "5xx")
    env = dict(sb.env, AWS_ACCESS_KEY_ID=v["AWS_ACCESS_KEY_ID"], AWS_MAX_ATTEMPTS="1",
               AWS_SECRET_ACCESS_KEY=v["AWS_SECRET_ACCESS_KEY"], AWS_RETRY_MODE="standard")

    def cli(*args):
        return subprocess.run(["aws", "--endpoint-url", v["AWS_ENDPOINT_URL"], "--output",
                               "json"] + list(args), env=env, text=True, timeout=60,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p = cli("rds", "describe-db-instances", "--region", "us-east-1")
    c.ok(p.returncode != 0 and "ServiceUnavailable" in p.stderr,
         "aws rds describe-db-instances --region us-east-1 fails (ServiceUnavailable)")
    p = cli("route53", "list-hosted-zones")
    c.ok(p.returncode != 0, "aws route53 list-hosted-zones fails (global, signs us-east-1)")
    p = cli("rds", "describe-db-instances", "--region", "eu-west-1")
    c.ok(p.returncode == 0 and any(d["DBInstanceIdentifier"] == "prod-db-eu" for d in
                                   json.loads(p.stdout)["DBInstances"]),
         "aws rds describe-db-instances --region eu-west-1 answers with prod-db-eu")

    # a client killed mid-upload: a signed S3 PUT whose body stops short is not stored (AWS
    # stores nothing of it; moto, reached through a proxy that forwarded it, stored the short
    # body: an empty evidence log)
    s3 = client("s3", "eu-west-1")
    s3.create_bucket(Bucket="aborted", CreateBucketConfiguration={
        "LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="aborted", Key="log", Body=b"first copy\n")
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    full = b"second copy, longer\n"
    url = "%s/aborted/log" % v["AWS_ENDPOINT_URL"]
    req = AWSRequest(method="PUT", url=url, data=full,
                     headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials(v["AWS_ACCESS_KEY_ID"], v["AWS_SECRET_ACCESS_KEY"]), "s3",
              "eu-west-1").add_auth(req)
    import socket
    host, port = v["AWS_ENDPOINT_URL"].split("//")[1].split(":")
    seq = last_seq(sb)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = "PUT /aborted/log HTTP/1.1\r\nHost: %s:%s\r\nContent-Length: %d\r\n" % (
            host, port, len(full))
        head += "".join("%s: %s\r\n" % (k, val) for k, val in req.headers.items()
                        if k.lower() not in ("host", "content-length"))
        sock.sendall(head.encode() + b"\r\n" + full[:6])   # then the client dies
    time.sleep(1.0)
    got = s3.get_object(Bucket="aborted", Key="log")["Body"].read()
    c.eq(got, b"first copy\n", "an upload cut mid-body is not stored: the object is unchanged")
    rec = [r for r in requests(sb, seq) if r["path"] == "/aborted/log" and r["method"] == "PUT"]
    c.ok(rec and (rec[0]["fault"] or "").startswith("client-aborted") and
         rec[0]["region"] == "eu-west-1", "the proxy records it as client-aborted (%s)" % rec)


if __name__ == "__main__":
    sys.exit(run_test(body))
