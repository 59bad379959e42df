"""Run leases in DynamoDB (DRBOOK_LEASE_TABLE) against moto's DynamoDB: two "hosts" (separate
HOME, runs folder and lock folder, so only the table can decide) start the same failover at
once, 100 times, and exactly one proceeds; the fencing token grows with every take and is in
run.start; a dead holder's lease expires and is taken over; resume takes its own lease back;
a run whose lease is taken over stops."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from motoserver import MotoServer  # noqa: E402

DRBOOK = os.environ.get("DRBOOK")
TABLE = "drbook-leases"
REGION = "eu-west-1"


HOLD = """version: 1
name: {name}
lock: [db:prod-db]
steps:
  - id: hold
    action: exec
    with: {{ argv: [sh, -c, "while [ ! -e '{release}' ]; do sleep 0.01; done"], timeout: 60s }}
  - id: after
    action: sleep
    with: {{ duration: 0s }}
"""


class Env:
    def __init__(self, tmp):
        self.tmp = tmp
        self.moto = MotoServer(serialise_dynamodb=True, region=REGION)
        self.base = self.moto.env(base={}, DRBOOK_LEASE_TABLE=TABLE, DRBOOK_LEASE_REGION=REGION)
        self.ddb = self.moto.client("dynamodb")
        self.ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "key",
                                                     "AttributeType": "S"}])

    def host(self, name):
        """A separate machine as far as drbook can tell: its own HOME, runs and lock folder."""
        d = os.path.join(self.tmp, name)
        os.makedirs(os.path.join(d, "home"), exist_ok=True)
        env = dict(os.environ)
        env.update(self.base)
        env.update({"HOME": os.path.join(d, "home"), "DRBOOK_LOCK_DIR": os.path.join(d, "locks")})
        env.pop("AWS_PROFILE", None)
        return d, env

    def spawn(self, host, *args, extra=None):
        d, env = self.host(host)
        env.update(extra or {})
        return subprocess.Popen([DRBOOK, *args, "--runs-dir", "runs"], cwd=d,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, stdin=subprocess.DEVNULL)

    def item(self, key="db:prod-db"):
        return self.ddb.get_item(TableName=TABLE, Key={"key": {"S": key}},
                                 ConsistentRead=True).get("Item")

    def close(self):
        self.moto.close()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def logs(folder):
    runs = os.path.join(folder, "runs")
    out = []
    for n in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
        with open(os.path.join(runs, n)) as f:
            out.append([json.loads(x) for x in f if x.strip()])
    return out


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def wait_started(folder, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for log in logs(folder):
            if any(r["event"] == "step.start" for r in log):
                return log
        time.sleep(0.02)
    raise AssertionError(f"no run started in {folder}")


def test_race_100(e):
    tokens = []
    for i in range(100):
        release = os.path.join(e.tmp, f"release-{i}")
        rb = write(os.path.join(e.tmp, f"race-{i}.yaml"), HOLD.format(name="race", release=release))
        procs = [e.spawn(f"host{j}-{i}", "run", rb, "--quiet") for j in (0, 1)]
        try:
            end = time.monotonic() + 60
            while time.monotonic() < end and all(p.poll() is None for p in procs):
                time.sleep(0.005)
        finally:
            open(release, "w").close()
            res = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
        codes = sorted(c for c, _ in res)
        check(codes == [0, 3], f"round {i}: exit codes {codes}: {res}")
        loser = [err for c, err in res if c == 3][0]
        check("db:prod-db" in loser and "held by run" in loser and "host" in loser,
              f"round {i}: the refusal names the holder: {loser}")
        winner = [j for j, (c, _) in enumerate(res) if c == 0][0]
        start = logs(os.path.join(e.tmp, f"host{winner}-{i}"))[0][0]
        lease = start["data"].get("lease")
        check(lease and lease[0]["key"] == "db:prod-db" and lease[0]["table"] == TABLE,
              f"round {i}: run.start records the lease: {start['data']}")
        tokens.append(lease[0]["token"])
    check(tokens == sorted(tokens) and len(set(tokens)) == 100,
          f"fencing tokens grow with every take: {tokens[:5]}...")
    print("lease race: exactly one of two hosts proceeded 100 of 100 times", flush=True)


def test_dead_holder_expires_and_is_taken_over(e):
    release = os.path.join(e.tmp, "release-dead")
    rb = write(os.path.join(e.tmp, "dead.yaml"), HOLD.format(name="dead", release=release))
    ttl = {"DRBOOK_LEASE_TTL": "3s"}
    first = e.spawn("dead-a", "run", rb, "--quiet", extra=ttl)
    wait_started(os.path.join(e.tmp, "dead-a"))
    token = e.item()["token"]["N"]
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = e.spawn("dead-b", "run", rb, "--quiet", extra=ttl)
    out, err = second.communicate(timeout=60)
    check(second.returncode == 3 and "expires in" in err,
          f"refused while the dead holder's lease lives: {second.returncode} {err}")
    time.sleep(3.5)
    open(release, "w").close()
    third = e.spawn("dead-c", "run", rb, "--quiet", extra=ttl)
    out, err = third.communicate(timeout=60)
    check(third.returncode == 0, f"taken over after expiry: {err}")
    start = logs(os.path.join(e.tmp, "dead-c"))[0][0]
    check(start["data"]["lease"][0]["token"] == int(token) + 1, "token incremented on takeover")


def test_resume_takes_its_lease_back(e):
    release = os.path.join(e.tmp, "release-resume")
    rb = write(os.path.join(e.tmp, "resume.yaml"), HOLD.format(name="resume", release=release))
    first = e.spawn("res-a", "run", rb, "--quiet", extra={"DRBOOK_LEASE_TTL": "60s"})
    log = wait_started(os.path.join(e.tmp, "res-a"))
    first.send_signal(signal.SIGKILL)
    first.wait()
    open(release, "w").close()
    path = os.path.join(e.tmp, "res-a", "runs", sorted(os.listdir(os.path.join(e.tmp, "res-a", "runs")))[0])
    # another host cannot take it (the lease has 60 s left) ...
    other = e.spawn("res-b", "run", rb, "--quiet")
    other.communicate(timeout=60)
    check(other.returncode == 3, "another run is refused while the lease lives")
    # ... but the same run, resumed, takes its own lease back at once
    d, env = e.host("res-a")
    p = subprocess.run([DRBOOK, "resume", path, "--retry", "hold"], cwd=d, env=env,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    check(p.returncode == 0, f"resume took the lease back: {p.returncode} {p.stdout} {p.stderr}")
    resumed = [json.loads(x) for x in open(path)]
    rr = [r for r in resumed if r["event"] == "run.resume"]
    check(rr and rr[0]["data"]["lease"][0]["token"] > log[0]["data"]["lease"][0]["token"],
          "run.resume records the new token")


def test_run_whose_lease_is_taken_over_stops(e):
    release = os.path.join(e.tmp, "release-lost")
    rb = write(os.path.join(e.tmp, "lost.yaml"), HOLD.format(name="lost", release=release))
    first = e.spawn("lost-a", "run", rb, "--quiet", extra={"DRBOOK_LEASE_TTL": "3s"})
    wait_started(os.path.join(e.tmp, "lost-a"))
    # another holder takes the item over (as after a partition): the renewal's condition fails
    e.ddb.update_item(TableName=TABLE, Key={"key": {"S": "db:prod-db"}},
                      UpdateExpression="SET #r = :r, #t = #t + :one",
                      ExpressionAttributeNames={"#r": "run", "#t": "token"},
                      ExpressionAttributeValues={":r": {"S": "someone-else"}, ":one": {"N": "1"}})
    time.sleep(2.5)  # a renewal (every ttl/3) has failed by now
    open(release, "w").close()
    out, err = first.communicate(timeout=60)
    check(first.returncode != 0, f"the run stopped after losing its lease: {first.returncode}")
    log = logs(os.path.join(e.tmp, "lost-a"))[0]
    after = [r for r in log if r["event"] == "step.start" and r["step"] == "after"]
    check(not after, "no step started after the lease was lost")


def main():
    if not DRBOOK:
        sys.exit("DRBOOK must name the drbook binary")
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="drbook-lease-") as tmp:
        e = Env(tmp)
        try:
            for name, fn in [(n, f) for n, f in globals().items() if n.startswith("test_")]:
                t = time.monotonic()
                try:
                    fn(e)
                    passed += 1
                    print(f"PASS {name} ({time.monotonic() - t:.1f}s)", flush=True)
                except Exception as ex:  # noqa: BLE001
                    failed += 1
                    print(f"FAIL {name}: {ex}", flush=True)
        finally:
            e.close()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
