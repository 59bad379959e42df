#!/usr/bin/env python3
"""aws.route53.upsert_record with routing policies against moto's Route 53 (a standalone moto
server), read back with boto3 as the independent cross-check: failover records (set
identifiers, PRIMARY/SECONDARY, health checks), weighted and geolocation records, an alias;
get_record picks a record by set_identifier; bad combinations are refused before sending."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from motoserver import MotoServer  # noqa: E402

DRBOOK = os.environ["DRBOOK"]


def main():
    moto = MotoServer()
    passed = failed = 0

    def check(cond, msg):
        nonlocal passed, failed
        print(("ok   - " if cond else "FAIL - ") + msg, flush=True)
        passed += bool(cond)
        failed += not cond

    try:
        env = moto.env()
        r53 = moto.client("route53")
        zone = r53.create_hosted_zone(Name="example.internal.", CallerReference="t")
        zid = zone["HostedZone"]["Id"].split("/")[-1]
        hc = r53.create_health_check(CallerReference="hc", HealthCheckConfig={
            "Type": "HTTP", "IPAddress": "127.0.0.1", "Port": 80, "ResourcePath": "/"})
        hcid = hc["HealthCheck"]["Id"]
        tmp = tempfile.mkdtemp(prefix="drb-r53-")

        def run(steps, name):
            rb = os.path.join(tmp, name + ".yaml")
            with open(rb, "w") as f:
                f.write(f"version: 1\nname: {name}\nsteps:\n{steps}")
            log = os.path.join(tmp, name + ".jsonl")
            p = subprocess.run([DRBOOK, "run", rb, "--audit", log, "--quiet"], cwd=tmp,
                               env=env, capture_output=True, text=True, timeout=120)
            recs = [json.loads(x) for x in open(log)] if os.path.exists(log) else []
            return p, {r["step"]: r["data"] for r in recs if r["event"] == "step.end"}

        p, ends = run(f"""  - id: primary
    action: aws.route53.upsert_record
    with: {{ zone_id: {zid}, name: api.example.internal., type: CNAME, ttl: 60,
            values: [api-us.example.internal.], set_identifier: us-east-1,
            failover: PRIMARY, health_check_id: "{hcid}" }}
  - id: secondary
    action: aws.route53.upsert_record
    with: {{ zone_id: {zid}, name: api.example.internal., type: CNAME, ttl: 60,
            values: [api-eu.example.internal.], set_identifier: eu-west-1,
            failover: SECONDARY }}
  - id: weighted
    action: aws.route53.upsert_record
    with: {{ zone_id: {zid}, name: w.example.internal., type: A, ttl: 30,
            values: [10.0.0.1], set_identifier: blue, weight: 70 }}
  - id: geo
    action: aws.route53.upsert_record
    with: {{ zone_id: {zid}, name: g.example.internal., type: A, ttl: 30,
            values: [10.0.0.2], set_identifier: europe, geolocation: {{ continent: EU }} }}
  - id: alias
    action: aws.route53.upsert_record
    with: {{ zone_id: {zid}, name: www.example.internal., type: CNAME,
            alias: {{ dns_name: api.example.internal., zone_id: {zid},
                     evaluate_target_health: true }} }}
  - id: read-secondary
    action: aws.route53.get_record
    with: {{ zone_id: {zid}, name: api.example.internal., type: CNAME,
            set_identifier: eu-west-1 }}
""", "routing")
        check(p.returncode == 0, "every routing-policy upsert succeeds: " + p.stderr)
        sets = r53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]
        by = {(s["Name"], s.get("SetIdentifier")): s for s in sets}
        pri = by.get(("api.example.internal.", "us-east-1"), {})
        sec = by.get(("api.example.internal.", "eu-west-1"), {})
        check((pri.get("Failover"), pri.get("HealthCheckId"), pri.get("TTL"),
               pri.get("ResourceRecords")) ==
              ("PRIMARY", hcid, 60, [{"Value": "api-us.example.internal."}]),
              "boto3 reads the PRIMARY with its health check: %s" % pri)
        check(sec.get("Failover") == "SECONDARY", "boto3 reads the SECONDARY")
        check(by.get(("w.example.internal.", "blue"), {}).get("Weight") == 70,
              "weighted record: weight 70")
        check(by.get(("g.example.internal.", "europe"), {}).get("GeoLocation") ==
              {"ContinentCode": "EU"}, "geolocation record: continent EU")
        al = by.get(("www.example.internal.", None), {}).get("AliasTarget", {})
        check(al.get("DNSName", "").rstrip(".") == "api.example.internal" and
              al.get("EvaluateTargetHealth") is True, "alias record: %s" % al)
        got = ends.get("read-secondary", {}).get("result", {})
        check((got.get("set_identifier"), got.get("failover"), got.get("values")) ==
              ("eu-west-1", "SECONDARY", ["api-eu.example.internal."]),
              "get_record picks the record by set_identifier: %s" % got)
        p, ends = run(f"""  - id: bad
    action: aws.route53.upsert_record
    with: {{ zone_id: {zid}, name: x.example.internal., type: A, values: [10.0.0.3],
            failover: PRIMARY }}
""", "bad")
        check(p.returncode == 1 and "set_identifier" in ends.get("bad", {}).get("error", ""),
              "failover without set_identifier is refused before sending")
        check(not [s for s in r53.list_resource_record_sets(HostedZoneId=zid)
                   ["ResourceRecordSets"] if s["Name"] == "x.example.internal."],
              "nothing was created")
    finally:
        moto.close()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
