#!/usr/bin/env python3
# dns.resolve against the sandbox's real DNS: NSD (authoritative) and Unbound (caching resolver).
# drbook asks the resolver for the failover record and gets the primary with a TTL within the
# record's, as `dig` (the independent cross-check) sees it; an unknown name is NXDOMAIN; a
# dead server first in the list is skipped and the answering one named; the resolver's cached
# TTL counts down between two asks; after the routing control flips, the resolver answers the
# secondary only once the TTL ran out, and a runbook polling dns.resolve sees it.
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox"))

from sandbox_lib.testkit import dig, run_test  # noqa: E402

DRBOOK = os.environ["DRBOOK"]
TTL = 4


def drbook_resolve(tmp, env, name, servers, rtype="CNAME", extra=""):
    rb = os.path.join(tmp, "r.yaml")
    with open(rb, "w") as f:
        f.write(f"""version: 1
name: dns-resolve-test
steps:
  - id: ask
    action: dns.resolve
    with: {{ name: "{name}", type: {rtype}, servers: {json.dumps(servers)}, timeout: 2s }}
{extra}""")
    log = os.path.join(tmp, f"run-{time.monotonic_ns()}.jsonl")
    p = subprocess.run([DRBOOK, "run", rb, "--audit", log, "--quiet"], cwd=tmp, env=env,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    recs = [json.loads(x) for x in open(log)] if os.path.exists(log) else []
    ends = {r["step"]: r["data"] for r in recs if r["event"] == "step.end"}
    return p, ends, recs


def body(sb, c):
    sb.up()
    v = sb.vars
    res, auth = v["DRB_SANDBOX_DNS_RESOLVER"], v["DRB_SANDBOX_DNS_AUTHORITATIVE"]
    name = v["DRB_SANDBOX_FAILOVER_RECORD"]
    us, eu = v["DRB_SANDBOX_API_TARGET_US"], v["DRB_SANDBOX_API_TARGET_EU"]
    tmp = tempfile.mkdtemp(prefix="drb-dns-")
    env = dict(os.environ)
    env.update({k: v[k] for k in v if k.startswith("AWS_")})

    p, ends, recs = drbook_resolve(tmp, env, name, [res])
    r = ends.get("ask", {}).get("result", {})
    c.eq(p.returncode, 0, "dns.resolve through Unbound succeeds: " + p.stderr)
    c.eq(r.get("answers"), [us], "the resolver answers the primary")
    c.eq(r.get("answers"), dig(res, name), "the same answer as dig")
    c.ok(isinstance(r.get("ttl"), int) and 0 <= r["ttl"] <= TTL, "TTL within the record's: %s"
         % r.get("ttl"))
    c.eq((r.get("rcode"), r.get("server")), ("NOERROR", res), "rcode and answering server")
    calls = [x for x in recs if x["event"] == "call"]
    c.ok(calls and calls[0]["data"]["service"] == "dns", "the query is a logged call")

    p, ends, _ = drbook_resolve(tmp, env, "nope." + name.split(".", 2)[2], [auth])
    r = ends.get("ask", {}).get("result", {})
    c.eq((r.get("rcode"), r.get("answers"), r.get("ttl")), ("NXDOMAIN", [], None),
         "an unknown name: NXDOMAIN, no answers, no TTL")

    p, ends, _ = drbook_resolve(tmp, env, name, ["127.0.0.1:1", auth])
    r = ends.get("ask", {}).get("result", {})
    c.eq((p.returncode, r.get("server"), r.get("answers")), (0, auth, [us]),
         "a dead first server is skipped; the answering one is named")

    p, ends, _ = drbook_resolve(tmp, env, name, ["127.0.0.1:1"])
    c.ok(p.returncode == 1 and "no answer" in ends.get("ask", {}).get("error", ""),
         "no server answering fails the step: " + json.dumps(ends.get("ask")))

    # the flip: NSD answers the secondary at once, the resolver after its cached TTL
    _, ends, _ = drbook_resolve(tmp, env, name, [res])
    sb.inject("region-outage", "--control-plane", "--mode", "refused")
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", f"""
import boto3
c = boto3.client("route53-recovery-cluster", region_name="{v['DRB_SANDBOX_ARC_ENDPOINT_REGIONS'].split()[1]}",
                 endpoint_url="{v['DRB_SANDBOX_ARC_ENDPOINTS'].split()[1]}",
                 aws_access_key_id="{v['AWS_ACCESS_KEY_ID']}",
                 aws_secret_access_key="{v['AWS_SECRET_ACCESS_KEY']}")
c.update_routing_control_state(RoutingControlArn="{v['DRB_SANDBOX_ARC_ROUTING_CONTROL_US']}",
                               RoutingControlState="Off")
"""], check=True, timeout=60)
    extra = f"""    until: result.answers[1] == "{eu}"
    every: 500ms
    timeout: {TTL + 20}s
"""
    p, ends, recs = drbook_resolve(tmp, env, name, [res], extra=extra)
    took = time.monotonic() - t0
    r = ends.get("ask", {})
    c.eq((p.returncode, r.get("result", {}).get("answers")), (0, [eu]),
         "polling dns.resolve sees the secondary through the resolver")
    c.ok(r.get("polls", 0) >= 1 and took <= TTL + 15,
         "it took polls (%s) and at most the TTL plus slack (%.1fs)" % (r.get("polls"), took))


if __name__ == "__main__":
    sys.exit(run_test(body, {"DRB_SANDBOX_DNS_TTL": str(TTL)}))
