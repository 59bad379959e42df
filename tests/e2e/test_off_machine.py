"""The off-machine promises in the fast suite (the integration tests go further): against a moto
server started here, a run lease in DynamoDB refuses a second "host" (its own lock folder) while
the first holds it, and --evidence ships the log to S3 byte for byte. Small enough for every
commit, so the mutants of these promises are killed by the fast suite."""
import json
import os
import socket
import subprocess
import sys
import time

from drbtest import check, main

REGION = "eu-west-1"


class Moto:
    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, "-c", f"""
import sys
from moto.server import ThreadedMotoServer
s = ThreadedMotoServer(ip_address="127.0.0.1", port={self.port}, verbose=False)
s.start(); print("ready", flush=True); sys.stdin.read(); s.stop()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("moto did not start (is moto[server] installed?)")
        self.url = f"http://127.0.0.1:{self.port}"
        import boto3
        kw = dict(endpoint_url=self.url, region_name=REGION, aws_access_key_id="testing",
                  aws_secret_access_key="testing")
        self.ddb = boto3.client("dynamodb", **kw)
        self.s3 = boto3.client("s3", **kw)

    def env(self, c, host, extra=None):
        e = {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "testing",
             "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
             "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
             "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
             "DRBOOK_LOCK_DIR": c.path(f"{host}-locks"), "HOME": c.path(host)}
        os.makedirs(c.path(host), exist_ok=True)
        e.update(extra or {})
        return e

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_a_lease_refuses_a_second_host_and_evidence_is_shipped(c):
    m = Moto()
    try:
        m.ddb.create_table(TableName="leases", BillingMode="PAY_PER_REQUEST",
                           KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
                           AttributeDefinitions=[{"AttributeName": "key",
                                                  "AttributeType": "S"}])
        m.s3.create_bucket(Bucket="evidence",
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
                        env=m.env(c, "host-a", lease))
        try:
            end = time.monotonic() + 30
            while time.monotonic() < end and not (
                    os.path.exists(c.path("a.jsonl")) and
                    "step.start" in open(c.path("a.jsonl")).read()):
                time.sleep(0.02)
            r = c.drbook("run", rb, "--audit", "b.jsonl", env=m.env(c, "host-b", lease))
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
                     env=m.env(c, "host-c"))
        check(r.code == 0, "a run with --evidence succeeds", r)
        run_id = json.loads(open(c.path("q.jsonl")).readline())["run"]
        body = m.s3.get_object(Bucket="evidence",
                               Key=f"runs/{run_id}/audit.jsonl")["Body"].read()
        check(body == open(c.path("q.jsonl"), "rb").read(),
              "the log in S3 is the local log, byte for byte")
    finally:
        m.close()


if __name__ == "__main__":
    main(globals())
