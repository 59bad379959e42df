#!/usr/bin/env python3
# Scenario 3's data stores, images and capacity in the sandbox (runbooks/region-failover.yaml,
# docs/scenarios.md "Region failover"): readiness passes the ECR image, capacity and S3
# replication checks on a healthy platform; a DR service's image deleted from eu-west-1's ECR
# makes readiness not ready and a drill refused (exit 3, nothing changed in AWS, PostgreSQL or
# the stores); a stalled replication (a source marker the replica lacks) and a deleted
# replication configuration fail readiness's s3-replication check, naming the backlog. After
# `inject region-outage`: a drill stopped by SIGTERM once it raised the scalable targets'
# minimums and scaled a smaller cache group rolls both back (moto's end state read with
# boto3); then the full drill creates prod-cache-eu and waits until it is available, leaves
# every prod-eu scalable target at the production minimum, reports the stale replica markers
# (s3_marker_max_age) and sends no S3 request to us-east-1.
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from test_scenario_region import (DRBOOK, RUNBOOKS, SERVICES, audit_events,  # noqa: E402
                                  audit_verify, diff, drbook, region_params, run_end, show,
                                  snapshot, step_result)
from sandbox_lib.testkit import run_test, wait_for  # noqa: E402

RUNBOOK = os.path.join(RUNBOOKS, "region-failover.yaml")
EU = "eu-west-1"
MARKER = "drbook/replication-marker"
BUCKETS = {"prod-assets": "prod-assets-eu", "prod-uploads": "prod-uploads-eu"}
SMALL_CACHE = "prod-cache-eu-small"


def stores(sb):
    """The stores' state a refused run must leave alone."""
    snap = {}
    aas = sb.client("application-autoscaling", EU)
    snap["targets"] = sorted((t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in
                             aas.describe_scalable_targets(ServiceNamespace="ecs")[
                                 "ScalableTargets"])
    for region in ("us-east-1", EU):
        snap["cache/" + region] = sorted(
            (g["ReplicationGroupId"], g["Status"], g.get("CacheNodeType"))
            for g in sb.client("elasticache", region).describe_replication_groups()[
                "ReplicationGroups"])
    for src, dst in BUCKETS.items():
        for region, b in (("us-east-1", src), (EU, dst)):
            objs = sb.client("s3", region).list_object_versions(Bucket=b).get("Versions", [])
            snap["s3/" + b] = sorted((o["Key"], o["VersionId"], o["ETag"]) for o in objs)
    return snap


def targets_eu(sb):
    aas = sb.client("application-autoscaling", EU)
    return {t["ResourceId"].split("/")[-1]: (t["MinCapacity"], t["MaxCapacity"]) for t in
            aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]}


def cache_group(sb, ident):
    try:
        g = sb.client("elasticache", EU).describe_replication_groups(
            ReplicationGroupId=ident)["ReplicationGroups"][0]
    except sb.client("elasticache", EU).exceptions.ReplicationGroupNotFoundFault:
        return None
    return g["Status"], g.get("CacheNodeType")


def put_marker(sb, bucket):
    at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    sb.client("s3").put_object(Bucket=bucket, Key=MARKER, Body=b"marker",
                               Metadata={"written-at": at})
    return at


def readiness(sb, runs, **extra):
    p = drbook(sb, "readiness", RUNBOOK, "--runs-dir", runs, "--json",
               *region_params(sb, **extra))
    try:
        rb = json.loads(p.stdout)["runbooks"][0]
    except (ValueError, KeyError, IndexError):
        show(p)
        return p, {}
    return p, {ch["check"]: ch for ch in rb["checks"]}


def check_readiness(sb, c, runs):
    p, checks = readiness(sb, runs)
    if not c.eq(p.returncode, 0, "healthy platform: region-failover is ready (exit 0)"):
        show(p)
    for name in ("dr-images", "dr-capacity", "s3-replication", "dr-cache"):
        c.eq((checks.get(name) or {}).get("ok"), True, "readiness runs the %s check" % name)
    log = os.path.join(runs, "readiness", "region-failover.jsonl")
    img = step_result(log, "dr-images") or {}
    c.eq(img.get("checked"), len(SERVICES), "every DR service's image was looked up in ECR")
    cap = step_result(log, "dr-capacity") or {}
    c.eq(cap.get("targets", {}).get("api"), {"min": 1, "max": 10},
         "dr-capacity read the scalable target of prod-eu/api (min 1, max 10)")
    c.eq(cap.get("vcpu"), 3, "dr-capacity: 6 services x 2 tasks x 0.25 vCPU")
    s3 = step_result(log, "s3-replication") or {}
    c.ok(not s3.get("problems") and s3.get("backlog_s") == 0 and len(s3.get("buckets", {}))
         == 2, "s3-replication: every replica holds the source's marker (no backlog): %r"
         % s3)

    p, checks = readiness(sb, runs, dr_vcpu_quota="2")
    c.eq((p.returncode, (checks.get("dr-capacity") or {}).get("ok")), (3, False),
         "a Fargate quota of 2 vCPUs is not enough: not ready, dr-capacity fails")
    c.ok("over the Fargate quota" in (checks.get("dr-capacity") or {}).get("error", ""),
         "the capacity error names the quota: %r" % (checks.get("dr-capacity") or {}).get(
             "error"))


def check_missing_image(sb, c, runs):
    ecr = sb.client("ecr", EU)
    saved = ecr.batch_get_image(repositoryName="drbook/payment",
                                imageIds=[{"imageTag": "1"}])["images"][0]
    ecr.batch_delete_image(repositoryName="drbook/payment", imageIds=[{"imageTag": "1"}])
    try:
        p, checks = readiness(sb, runs)
        err = (checks.get("dr-images") or {}).get("error", "")
        c.eq((p.returncode, (checks.get("dr-images") or {}).get("ok")), (3, False),
             "payment's image missing in eu-west-1's ECR: not ready, dr-images fails")
        c.ok("payment" in err and "drbook/payment:1" in err and "not in eu-west-1's ECR" in err,
             "the error names the service and the image: %r" % err)
        before = (snapshot(sb), stores(sb))
        log = os.path.join(runs, "refused-image.jsonl")
        p = drbook(sb, "run", RUNBOOK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
                   *region_params(sb, force="true"))
        if not c.eq(p.returncode, 3, "a forced drill with the image missing is refused "
                    "(exit 3)"):
            show(p)
        c.ok("drbook/payment:1" in p.stdout + p.stderr, "the refusal names the image")
        c.eq(run_end(log).get("status"), "refused", "run.end status refused")
        after = (snapshot(sb), stores(sb))
        c.eq(diff(before[0], after[0]) + diff(before[1], after[1]), [],
             "the refused drill changed nothing (RDS, Route 53, ECS, PostgreSQL, scalable "
             "targets, caches, buckets)")
    finally:
        ecr.put_image(repositoryName="drbook/payment", imageTag="1",
                      imageManifest=saved["imageManifest"])
    p, checks = readiness(sb, runs)
    c.eq((checks.get("dr-images") or {}).get("ok"), True, "the image is back: dr-images passes")


def check_replication_problems(sb, c, runs):
    sb.inject("s3-replication-stall")
    at = put_marker(sb, "prod-assets")
    s3 = sb.client("s3")
    cfg = s3.get_bucket_replication(Bucket="prod-uploads")["ReplicationConfiguration"]
    s3.delete_bucket_replication(Bucket="prod-uploads")
    try:
        p, checks = readiness(sb, runs)
        err = (checks.get("s3-replication") or {}).get("error", "")
        c.eq((p.returncode, (checks.get("s3-replication") or {}).get("ok")), (3, False),
             "replication stalled and a configuration deleted: not ready, s3-replication fails")
        c.ok("prod-assets" in err and at in err and "PENDING" in err and "backlog" in err,
             "the error names prod-assets' newer source marker, PENDING, and the backlog: %r"
             % err)
        c.ok("prod-uploads: replication configuration: none" in err,
             "the error names prod-uploads' missing replication configuration")
        r = step_result(os.path.join(runs, "readiness", "region-failover.jsonl"),
                        "s3-replication") or {}
        c.eq(r, {}, "a failed check records no result")
        c.eq(sb.client("s3", EU).head_object(Bucket="prod-assets-eu", Key=MARKER)[
            "Metadata"].get("written-at") == at, False,
            "the sandbox did not replicate the new marker (stalled)")
    finally:
        s3.put_bucket_replication(Bucket="prod-uploads", ReplicationConfiguration=cfg)


def wait_steps_ended(log, names, timeout):
    """Waits until the audit log has a step.end of every named (parent) step."""
    def ended():
        try:
            done = {e["step"] for e in audit_events(log)
                    if e["event"] == "step.end" and e.get("step") in names}
        except (OSError, ValueError):
            return False
        return done >= set(names)
    return wait_for(ended, timeout, interval=0.05)


def check_rollback(sb, c, runs):
    ec = sb.client("elasticache", EU)
    ec.create_replication_group(ReplicationGroupId=SMALL_CACHE,
                                ReplicationGroupDescription="warm, small",
                                CacheNodeType="cache.t4g.micro", NumCacheClusters=1,
                                Engine="redis")
    c.ok(wait_for(lambda: cache_group(sb, SMALL_CACHE) == ("available", "cache.t4g.micro"),
                  30), "a small warm cache group is available in eu-west-1")
    sb.run("region-state", "save")
    log = os.path.join(runs, "rolled-back.jsonl")
    env = dict(sb.env)
    env.update({k: str(v) for k, v in sb.vars.items()})
    proc = subprocess.Popen([DRBOOK, "run", RUNBOOK, "--drill", "--yes", "--audit", log,
                             "--runs-dir", runs,
                             *region_params(sb, cache_group=SMALL_CACHE)],
                            env=env, cwd=sb.dir, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        reached = wait_steps_ended(log, ["scaling-floor", "cache-scale"], 120)
        c.ok(reached, "the drill raised the scalable targets and scaled the cache")
        raised = targets_eu(sb)
        c.eq(raised, {s: (2, 10) for s in SERVICES},
             "while it runs: every prod-eu scalable target's minimum is 2")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if not c.eq(proc.returncode, 1, "SIGTERM: the drill stops and rolls back (exit 1)"):
        print(out[-3000:], err[-2000:], flush=True)
    c.eq(run_end(log).get("status"), "rolled_back", "run.end status rolled_back")
    rb = {e["step"]: e["data"].get("status") for e in audit_events(log)
          if e["event"] == "rollback.end"}
    c.ok(rb.get("cache-scale") == "ok" and
         all(rb.get("scaling-floor[%d]" % i) == "ok" for i in range(1, len(SERVICES) + 1)),
         "the cache and each service's scaling floor were rolled back: %r" % rb)
    c.eq(targets_eu(sb), {s: (1, 10) for s in SERVICES},
         "moto: every prod-eu scalable target is back at min 1, max 10")
    c.ok(wait_for(lambda: cache_group(sb, SMALL_CACHE) == ("available", "cache.t4g.micro"),
                  60), "moto: the small cache group is back at cache.t4g.micro (%s)" %
         (cache_group(sb, SMALL_CACHE),))
    p = sb.run("region-state", "restore")
    c.eq(p.returncode, 0, "region-state restore: prod-db-eu is a replica again")


def check_failover(sb, c, runs):
    seq0 = max([r["seq"] for r in json.loads(sb.run("requests", "--json").stdout or "[]")]
               or [0])
    log = os.path.join(runs, "failover.jsonl")
    p = drbook(sb, "run", RUNBOOK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
               *region_params(sb, s3_marker_max_age="1s"))
    if not c.eq(p.returncode, 0, "the drill succeeds (exit 0)"):
        show(p)
    c.eq(run_end(log).get("status"), "succeeded", "run.end status succeeded")
    c.eq(audit_verify(sb, log).returncode, 0, "drbook audit verify: the log is intact")

    c.eq(cache_group(sb, "prod-cache-eu"), ("available", "cache.r6g.large"),
         "moto: prod-cache-eu was created and is available at cache.r6g.large")
    created = step_result(log, "cache-create") or {}
    c.eq((created.get("created"), created.get("status")), (True, "creating"),
         "cache-create created the group (it answered creating)")
    waited = [e["data"] for e in audit_events(log)
              if e["event"] == "step.end" and e["step"] == "cache-wait"]
    c.ok(waited and waited[0].get("polls", 0) >= 2,
         "cache-wait polled until the group was available (%s)" %
         (waited[0].get("polls") if waited else None))
    c.eq(targets_eu(sb), {s: (2, 10) for s in SERVICES},
         "moto: every prod-eu scalable target's minimum is the production count 2")
    c.eq(cache_group(sb, SMALL_CACHE), ("available", "cache.t4g.micro"),
         "the other cache group was left alone")

    s3 = step_result(log, "s3-replication") or {}
    probs = s3.get("problems") or []
    c.ok(len(probs) == 2 and all("s3_marker_max_age" in x for x in probs),
         "the stale replica markers are reported: %r" % probs)
    b = (s3.get("buckets") or {}).get("prod-assets") or {}
    c.ok(b.get("replication") == "unreadable" and "is confirmed" in b.get("source_error", "")
         and b.get("marker_age_s", 0) > 1 and b.get("backlog_s") == b.get("marker_age_s"),
         "with the outage confirmed the source is not read; the marker's age bounds the "
         "backlog: %r" % b)
    prints = [e["data"].get("line", "") for e in audit_events(log)
              if e["event"] == "lua.print" and e.get("step") == "s3-replication"]
    c.ok(prints and prints[0].startswith("WARNING S3 replication:"),
         "the warning is printed into the log (report timeline): %r" % prints[:1])
    reqs = json.loads(sb.run("requests", "--json", "--since", str(seq0), "--region",
                             "us-east-1", "--service", "s3").stdout or "[]")
    c.eq(reqs, [], "no S3 request went to us-east-1 during the drill")

    p = sb.run("region-state", "restore")
    c.eq(p.returncode, 0, "region-state restore after the drill")
    c.eq((targets_eu(sb), cache_group(sb, "prod-cache-eu"),
          cache_group(sb, SMALL_CACHE)),
         ({s: (1, 10) for s in SERVICES}, None, ("available", "cache.t4g.micro")),
         "region-state restore resets the scalable targets and removes the created cache")


def body(sb, c):
    t0 = time.monotonic()
    sb.up()
    runs = tempfile.mkdtemp(prefix="runs-", dir=sb.dir)
    c.ok(wait_for(lambda: all(
        sb.client("s3", EU).head_object(Bucket=dst, Key=MARKER) for dst in BUCKETS.values()),
        20), "the seeded markers reached the replica buckets")
    check_readiness(sb, c, runs)
    check_missing_image(sb, c, runs)
    check_replication_problems(sb, c, runs)
    res = sb.inject("region-outage")
    c.eq(sorted(res["stopped_servers"]), ["prod-db-a", "prod-db-b"], "the outage is injected")
    check_rollback(sb, c, runs)
    check_failover(sb, c, runs)
    print("region stores scenario took %.1fs" % (time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    # the cache takes 6 s to create or modify: the SIGTERM lands while the drill still waits
    sys.exit(run_test(body, extra_env={"DRB_SANDBOX_CACHE_DELAY": "6"}))
