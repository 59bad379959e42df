"""The off-machine promises in the fast suite (the integration tests go further): against a moto
server started here, a run lease in DynamoDB refuses a second "host" (its own lock folder) while
the first holds it, and --evidence ships the log to S3 byte for byte. Small enough for every
commit, so the mutants of these promises are killed by the fast suite."""
import json
import os
import sys
import time

from drbtest import check, main

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from motoserver import MotoServer  # noqa: E402

REGION = "eu-west-1"


def host_env(m, c, host, extra=None):
    """The environment of one "host": moto as its AWS, its own HOME and lock folder."""
    os.makedirs(c.path(host), exist_ok=True)
    e = m.env(base={}, DRBOOK_LOCK_DIR=c.path(f"{host}-locks"), HOME=c.path(host))
    e.update(extra or {})
    return e


def test_a_lease_refuses_a_second_host_and_evidence_is_shipped(c):
    m = MotoServer(region=REGION)
    try:
        m.client("dynamodb").create_table(TableName="leases", BillingMode="PAY_PER_REQUEST",
                           KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
                           AttributeDefinitions=[{"AttributeName": "key",
                                                  "AttributeType": "S"}])
        m.client("s3").create_bucket(Bucket="evidence",
                           CreateBucketConfiguration={"LocationConstraint": REGION})
        lease = {"DRBOOK_LEASE_TABLE": "leases", "DRBOOK_LEASE_REGION": REGION}
        rb = c.write("hold.yaml", f"""
            version: 1
            name: hold
            lock: [db:prod-db]
            steps:
              - id: hold
                action: exec
                with: {{ argv: [sh, -c, "while [ ! -e '{c.path('release')}' ]; do sleep 0.02; done"] }}
        """)
        first = c.spawn("run", rb, "--audit", "a.jsonl", "--quiet",
                        env=host_env(m, c, "host-a", lease))
        try:
            end = time.monotonic() + 30
            while time.monotonic() < end and not (
                    os.path.exists(c.path("a.jsonl")) and
                    "step.start" in open(c.path("a.jsonl")).read()):
                time.sleep(0.02)
            r = c.drbook("run", rb, "--audit", "b.jsonl", env=host_env(m, c, "host-b", lease))
            check(r.code == 3 and "held by" in r.out + r.err,
                  "another host (its own lock folder) is refused by the lease", r)
        finally:
            open(c.path("release"), "w").close()
            first.communicate(timeout=60)
        check(first.returncode == 0, "the holder finishes")
        start = json.loads(open(c.path("a.jsonl")).readline())
        check(start["data"]["lease"][0]["token"] >= 1, "run.start records the fencing token")

        quick = c.write("quick.yaml", """
            version: 1
            name: quick
            steps:
              - id: s
                action: sleep
                with: { duration: 0s }
        """)
        r = c.drbook("run", quick, "--audit", "q.jsonl", "--evidence", "s3://evidence/runs",
                     env=host_env(m, c, "host-c"))
        check(r.code == 0, "a run with --evidence succeeds", r)
        run_id = json.loads(open(c.path("q.jsonl")).readline())["run"]
        body = m.client("s3").get_object(Bucket="evidence",
                               Key=f"runs/{run_id}/audit.jsonl")["Body"].read()
        check(body == open(c.path("q.jsonl"), "rb").read(),
              "the log in S3 is the local log, byte for byte")
    finally:
        m.close()


if __name__ == "__main__":
    main(globals())
