#!/usr/bin/env python3
# aws.arc.* against the sandbox's ARC cluster (five endpoints, route53-recovery-cluster JSON 1.0,
# each signed for its own region): with us-east-1 down, control plane included, and one more
# endpoint failing, update_routing_control_state goes through the next endpoint and says which;
# get reads the state back; the routing control's health check then fails, so the
# authoritative DNS answers the secondary. A bad ARN fails at once (not tried everywhere);
# preflight refuses the mutating action before anything is sent.
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox"))

from sandbox_lib.testkit import run_test, wait_for  # noqa: E402

DRBOOK = os.environ["DRBOOK"]


def dig(server, name):
    host, port = server.split(":")
    p = subprocess.run(["dig", "@" + host, "-p", port, name, "CNAME", "+short", "+time=2",
                        "+tries=1"], capture_output=True, text=True, timeout=20)
    return p.stdout.strip()


def run(tmp, env, body, name):
    rb = os.path.join(tmp, name + ".yaml")
    with open(rb, "w") as f:
        f.write(body)
    log = os.path.join(tmp, name + ".jsonl")
    p = subprocess.run([DRBOOK, "run", rb, "--audit", log, "--quiet"], cwd=tmp, env=env,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    recs = [json.loads(x) for x in open(log)] if os.path.exists(log) else []
    return p, recs


def body(sb, c):
    sb.up()
    v = sb.vars
    tmp = tempfile.mkdtemp(prefix="drb-arc-")
    env = dict(os.environ)
    env.update({k: v[k] for k in v if k.startswith("AWS_")})
    eps = [{"url": u, "region": r} for u, r in zip(v["DRB_SANDBOX_ARC_ENDPOINTS"].split(),
                                                  v["DRB_SANDBOX_ARC_ENDPOINT_REGIONS"].split())]
    us_arn = v["DRB_SANDBOX_ARC_ROUTING_CONTROL_US"]
    name, auth = v["DRB_SANDBOX_FAILOVER_RECORD"], v["DRB_SANDBOX_DNS_AUTHORITATIVE"]
    sb.inject("region-outage", "--control-plane", "--mode", "refused")
    sb.inject("arc-endpoint-down", "1", "--mode", "5xx")
    p, recs = run(tmp, env, f"""version: 1
name: arc-flip
steps:
  - id: off
    action: aws.arc.update_routing_control_state
    with: {{ routing_control_arn: "{us_arn}", state: "Off", cluster_endpoints: {json.dumps(eps)} }}
  - id: read
    action: aws.arc.get_routing_control_state
    with: {{ routing_control_arn: "{us_arn}", cluster_endpoints: {json.dumps(eps)} }}
""", "flip")
    ends = {r["step"]: r["data"] for r in recs if r["event"] == "step.end"}
    c.eq(p.returncode, 0, "the flip succeeds with us-east-1 and one more endpoint down: "
         + p.stderr)
    c.eq(ends.get("off", {}).get("result"), {"state": "Off", "endpoint": eps[2]["url"]},
         "endpoint 0 (us-east-1) and 1 (5xx) failed; endpoint 2 answered")
    c.eq(ends.get("read", {}).get("result", {}).get("state"), "Off", "read back Off")
    calls = [r["data"] for r in recs if r["event"] == "call" and r["step"] == "off"]
    c.eq([x["region"] for x in calls], [e["region"] for e in eps[:3]],
         "each endpoint was signed for its own region, in turn")
    c.ok(wait_for(lambda: dig(auth, name) == v["DRB_SANDBOX_API_TARGET_EU"], 10, 0.2),
         "the routing control's health check fails: DNS answers the secondary")

    p, recs = run(tmp, env, f"""version: 1
name: arc-bad
steps:
  - id: bad
    action: aws.arc.get_routing_control_state
    with: {{ routing_control_arn: "{us_arn}-nope", cluster_endpoints: {json.dumps(eps[2:])} }}
""", "bad")
    calls = [r for r in recs if r["event"] == "call"]
    c.ok(p.returncode == 1 and len(calls) == 1, "a bad ARN fails at the first endpoint that "
         "answers, not tried everywhere (%d calls)" % len(calls))

    p, recs = run(tmp, env, f"""version: 1
name: arc-pre
preflight:
  - id: flip
    action: aws.arc.update_routing_control_state
    with: {{ routing_control_arn: "{us_arn}", state: "On", cluster_endpoints: {json.dumps(eps)} }}
steps:
  - id: s
    action: sleep
    with: {{ duration: 0s }}
""", "pre")
    c.eq(p.returncode, 2, "a mutating ARC action in preflight is refused before anything runs")


if __name__ == "__main__":
    sys.exit(run_test(body))
