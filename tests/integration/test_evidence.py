"""Evidence off the machine (--evidence s3://..., --sign-key-file) against moto's S3 with Object
Lock on the bucket: a run ships its log as it goes (every step.end there while the run is
blocked mid-way, the final copy byte-identical to the local log); a run killed with SIGKILL
whose machine is then wiped is resumed from the bucket on "another host" (separate HOME, cwd,
runs folder and lock folder) and its final log in S3 verifies with the public key; signed
logs: cut after a head, run.end removed, a byte changed, a wrong key all exit 1; an
unreachable bucket refuses the run before any change; a loose key file is warned about."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from motoserver import MotoServer  # noqa: E402

DRBOOK = os.environ.get("DRBOOK")
BUCKET = "drbook-evidence"
REGION = "eu-west-1"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


RUNBOOK = """version: 1
name: evidence-{name}
steps:
  - id: a
    action: sleep
    with: {{ duration: 10ms }}
  - id: b
    action: sleep
    with: {{ duration: 10ms }}
  - id: hold
    action: exec
    idempotent: true
    with: {{ argv: [sh, -c, "while [ ! -e '{release}' ]; do sleep 0.02; done"], timeout: 120s }}
  - id: after
    action: sleep
    with: {{ duration: 0s }}
"""


class Env:
    def __init__(self, tmp):
        self.tmp = tmp
        self.moto = MotoServer(region=REGION)
        self.url = self.moto.url
        self.base = self.moto.env(base={})
        self.s3 = self.moto.client("s3")
        self.s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True,
                              CreateBucketConfiguration={"LocationConstraint": REGION})
        self.s3.put_object_lock_configuration(
            Bucket=BUCKET, ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
        self.keys = os.path.join(tmp, "keys")
        os.makedirs(self.keys)
        for n in ("sign", "other"):
            k = os.path.join(self.keys, n + ".pem")
            subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", k],
                           check=True, capture_output=True)
            os.chmod(k, 0o600)
            subprocess.run(["openssl", "pkey", "-in", k, "-pubout", "-out",
                            os.path.join(self.keys, n + ".pub")], check=True,
                           capture_output=True)
        self.sign = os.path.join(self.keys, "sign.pem")
        self.pub = os.path.join(self.keys, "sign.pub")
        self.other_pub = os.path.join(self.keys, "other.pub")

    def host(self, name):
        """A separate machine as far as drbook can tell: its own HOME, cwd, runs, locks."""
        d = os.path.join(self.tmp, name)
        os.makedirs(os.path.join(d, "home"), exist_ok=True)
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        env = dict(os.environ)
        env.update(self.base)
        # its own TMPDIR too: the check that drbook removes its scratch folder must not see
        # another test's, running at the same time
        env.update({"HOME": os.path.join(d, "home"), "DRBOOK_LOCK_DIR": os.path.join(d, "locks"),
                    "TMPDIR": os.path.join(d, "tmp")})
        for k in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                  "DRBOOK_EVIDENCE", "DRBOOK_SIGN_KEY_FILE"):
            env.pop(k, None)
        return d, env

    def spawn(self, host, *args):
        d, env = self.host(host)
        return subprocess.Popen([DRBOOK, *args], cwd=d, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env,
                                stdin=subprocess.DEVNULL)

    def drbook(self, host, *args, timeout=120):
        d, env = self.host(host)
        return subprocess.run([DRBOOK, *args], cwd=d, capture_output=True, text=True, env=env,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def runbook(self, host, name, release):
        d, _ = self.host(host)
        p = os.path.join(d, "rb.yaml")
        with open(p, "w") as f:
            f.write(RUNBOOK.format(name=name, release=release))
        return p

    def obj(self, key):
        try:
            return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def close(self):
        self.moto.close()


def records(data):
    return [json.loads(line) for line in data.decode().splitlines()]


def wait_for(fn, what, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def run_id_of(host_dir):
    runs = os.path.join(host_dir, "runs")
    logs = [f for f in os.listdir(runs) if f.endswith(".jsonl")] if os.path.isdir(runs) else []
    return logs[0][:-len(".jsonl")] if len(logs) == 1 else None


def stop(p):
    if p.poll() is None:
        p.kill()
    p.communicate()


def test_ships_as_it_goes(e):
    release = os.path.join(e.tmp, "release-ship")
    rb = e.runbook("ship", "ship", release)
    d, _ = e.host("ship")
    p = e.spawn("ship", "run", rb, "--runs-dir", "runs", "--quiet", "--evidence",
                f"s3://{BUCKET}/drills", "--sign-key-file", e.sign)
    try:
        run = wait_for(lambda: run_id_of(d), "the local log")
        key = f"drills/{run}/audit.jsonl"

        def shipped_b():
            data = e.obj(key)
            return data if data and any(r["event"] == "step.end" and r["step"] == "b"
                                        for r in records(data)) else None
        mid = wait_for(shipped_b, "step.end of b in S3")
        check(p.poll() is None, "the run is still blocked in 'hold'")
        ends = [r["step"] for r in records(mid) if r["event"] == "step.end"]
        check(ends == ["a", "b"], f"every step.end so far is in S3: {ends}")
        with open(os.path.join(d, "runs", run + ".jsonl"), "rb") as f:
            local = f.read()
        check(local.startswith(mid), "the S3 copy is the local log as of its last step.end")
        check(e.obj(f"drills/{run}/runbook.yaml") == open(rb, "rb").read(),
              "the runbook is beside the log")
        open(release, "w").close()
        out, err = p.communicate(timeout=60)
        check(p.returncode == 0, f"run succeeded: {p.returncode} {err}")
    finally:
        stop(p)
    with open(os.path.join(d, "runs", run + ".jsonl"), "rb") as f:
        local = f.read()
    check(e.obj(key) == local, "the final S3 copy is byte-identical to the local log")
    start = records(local)[0]
    check(start["data"]["evidence"] == f"s3://{BUCKET}/drills", "run.start names the evidence")
    v = e.drbook("verifier", "audit", "verify", f"s3://{BUCKET}/drills/{run}",
                 "--public-key", e.pub)
    check(v.returncode == 0 and "signs the run.end" in v.stdout,
          f"audit verify s3://... with the public key: {v.returncode} {v.stdout} {v.stderr}")
    # a run id that is not there: exit 2, naming the runs that are (ListObjectsV2)
    miss = e.drbook("verifier", "audit", "verify", f"s3://{BUCKET}/drills/no-such-run")
    check(miss.returncode == 2 and run in miss.stderr,
          f"missing run named with the ones present: {miss.returncode} {miss.stderr}")
    # Object Lock keeps every shipped version
    vers = e.s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])
    check(len(vers) >= 4, f"each copy is a locked version ({len(vers)})")
    e.shipped_log = local
    e.shipped_run = run


def test_kill_and_resume_from_another_host(e):
    release = os.path.join(e.tmp, "release-kill")
    rb = e.runbook("hostA", "kill", release)
    d, _ = e.host("hostA")
    p = e.spawn("hostA", "run", rb, "--runs-dir", "runs", "--quiet", "--evidence",
                f"s3://{BUCKET}/failovers/", "--sign-key-file", e.sign)
    try:
        run = wait_for(lambda: run_id_of(d), "the local log")
        key = f"failovers/{run}/audit.jsonl"
        wait_for(lambda: (e.obj(key) or b"").count(b'"event":"step.end"') >= 2,
                 "two step.end in S3")
        # let the 'hold' step start locally, then the machine dies
        wait_for(lambda: b'"step":"hold"' in open(os.path.join(d, "runs", run + ".jsonl"),
                                                  "rb").read(), "hold started")
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    finally:
        stop(p)
    shutil.rmtree(d)
    open(release, "w").close()
    r = e.drbook("hostB", "resume", f"s3://{BUCKET}/failovers/{run}", "--runs-dir", "runs",
                 "--quiet", "--sign-key-file", e.sign)
    check(r.returncode == 0, f"resume from the bucket on another host: {r.returncode} "
          f"{r.stdout} {r.stderr}")
    db, _ = e.host("hostB")
    with open(os.path.join(db, "runs", run + ".jsonl"), "rb") as f:
        local = f.read()
    final = e.obj(key)
    check(final == local, "host B kept shipping to the same place")
    evs = [x["event"] for x in records(final)]
    check("run.resume" in evs and evs[-2] == "run.end" and evs[-1] == "head",
          f"the resumed run ended and signed its end: {evs[-4:]}")
    check(records(final)[-2]["data"]["status"] == "succeeded", "the run completed")
    v = e.drbook("hostC", "audit", "verify", f"s3://{BUCKET}/failovers/{run}", "--public-key",
                 e.pub)
    check(v.returncode == 0, f"the final log in S3 verifies: {v.stdout} {v.stderr}")


def test_signed_verdicts(e):
    d, _ = e.host("verdicts")
    log = e.shipped_log
    lines = log.split(b"\n")[:-1]

    def verify(name, data, key):
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(data)
        return e.drbook("verdicts", "audit", "verify", p, "--public-key", key)

    ok = verify("ok.jsonl", log, e.pub)
    check(ok.returncode == 0, f"intact: {ok.stdout} {ok.stderr}")
    # cut right after the head that follows run.start
    cut = verify("cut.jsonl", b"\n".join(lines[:2]) + b"\n", e.pub)
    check(cut.returncode == 1 and "truncated" in cut.stderr, f"cut after a head: {cut.stderr}")
    # run.end and its final head removed
    noend = verify("noend.jsonl", b"\n".join(lines[:-2]) + b"\n", e.pub)
    check(noend.returncode == 1 and "truncated" in noend.stderr,
          f"run.end and final head removed: {noend.stderr}")
    # without the public key the chain alone cannot see it (as before)
    plain = e.drbook("verdicts", "audit", "verify", os.path.join(d, "noend.jsonl"))
    check(plain.returncode == 0, "without --public-key verify behaves as before")
    # a byte changed
    i = log.index(b'"duration_ms":')
    bad = log[:i] + log[i:].replace(b'"duration_ms":', b'"duration_ms":1', 1)
    t = verify("tampered.jsonl", bad, e.pub)
    check(t.returncode == 1, f"a changed byte: {t.stderr}")
    w = verify("wrongkey.jsonl", log, e.other_pub)
    check(w.returncode == 1 and "public key" in w.stderr, f"wrong key: {w.stderr}")
    # a forged copy in the bucket (a new version) is caught from the bucket too
    key = f"drills/{e.shipped_run}/audit.jsonl"
    e.s3.put_object(Bucket=BUCKET, Key=key, Body=b"\n".join(lines[:-2]) + b"\n",
                    ContentMD5=__import__("base64").b64encode(
                        __import__("hashlib").md5(b"\n".join(lines[:-2]) + b"\n").digest())
                    .decode())
    s = e.drbook("verdicts", "audit", "verify", f"s3://{BUCKET}/drills/{e.shipped_run}",
                 "--public-key", e.pub)
    check(s.returncode == 1 and "truncated" in s.stderr, f"cut copy in S3: {s.stderr}")


def test_unreachable_evidence_refuses(e):
    release = os.path.join(e.tmp, "release-never")
    rb = e.runbook("refuse", "refuse", release)
    r = e.drbook("refuse", "run", rb, "--runs-dir", "runs", "--quiet", "--evidence",
                 "s3://no-such-bucket-here/x")
    check(r.returncode == 3, f"refused before any change: {r.returncode} {r.stderr}")
    check("evidence" in r.stderr, f"the refusal names the evidence: {r.stderr}")
    d, _ = e.host("refuse")
    run = run_id_of(d)
    with open(os.path.join(d, "runs", run + ".jsonl"), "rb") as f:
        evs = [x["event"] for x in records(f.read())]
    check("step.start" not in evs, f"no step started: {evs}")


def test_failed_copy_stops_the_run(e):
    # a second S3 that goes away mid-run: the copy after 'hold' fails, the run stops there
    moto = MotoServer(region=REGION)
    p = None
    try:
        moto.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        release = os.path.join(e.tmp, "release-gone")
        rb = e.runbook("gone", "gone", release)
        d, env = e.host("gone")
        env["AWS_ENDPOINT_URL"] = moto.url
        p = subprocess.Popen([DRBOOK, "run", rb, "--runs-dir", "runs", "--quiet",
                              "--evidence", f"s3://{BUCKET}/x"], cwd=d, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL)
        run = wait_for(lambda: run_id_of(d), "the local log")
        log = os.path.join(d, "runs", run + ".jsonl")
        wait_for(lambda: b'"step":"hold"' in open(log, "rb").read(), "hold started")
        moto.close()
        open(release, "w").close()
        out, err = p.communicate(timeout=120)
        check(p.returncode == 1, f"the run stopped: {p.returncode} {err}")
        check("evidence" in err, f"the reason is given: {err}")
        recs = records(open(log, "rb").read())
        evs = [(r["event"], r["step"]) for r in recs]
        check(("evidence.failed", None) in evs, "the failure is in the log")
        check(("step.start", "after") not in evs, f"no step started after it: {evs}")
        check(recs[-1]["event"] == "run.end" and recs[-1]["data"]["status"] == "failed",
              "run.end failed")
    finally:
        if p:
            stop(p)
        moto.close()


def test_loose_key_file_warned(e):
    d, _ = e.host("loose")
    k = os.path.join(d, "loose.pem")
    shutil.copy(e.sign, k)
    os.chmod(k, 0o644)
    hk = os.path.join(d, "hmac.key")
    with open(hk, "w") as f:
        f.write("secret-hmac-key\n")
    os.chmod(hk, 0o640)
    rb = os.path.join(d, "rb.yaml")
    with open(rb, "w") as f:
        f.write("version: 1\nname: loose\nsteps:\n  - id: a\n    action: sleep\n"
                "    with: { duration: 0s }\n")
    r = e.drbook("loose", "run", rb, "--runs-dir", "runs", "--quiet", "--sign-key-file", k,
                 "--audit-key-file", hk)
    check(r.returncode == 0, f"the run goes on: {r.stderr}")
    check("signing key file" in r.stderr and "audit key file" in r.stderr
          and "chmod 600" in r.stderr, f"both key files warned about: {r.stderr}")


FORECAST = """version: 1
name: evidence-forecast
targets: { rto: 1s }
steps:
  - id: quick
    action: sleep
    with: { duration: 20ms }
  - id: slow
    action: sleep
    with: { duration: 300ms }
"""


def test_forecast_from_the_bucket(e):
    """plan --evidence: the runs shipped to the bucket from one machine forecast the RTO on
    another whose runs folder is empty; a run in both places counts once; an unreadable
    bucket is said and the plan goes on from the runs folder."""
    url = "s3://%s/forecast" % BUCKET
    for host in ("fa", "fb"):
        d, _ = e.host(host)
        with open(os.path.join(d, "fc.yaml"), "w") as f:
            f.write(FORECAST)
    for _ in range(3):
        r = e.drbook("fa", "run", "fc.yaml", "--runs-dir", "runs", "--quiet", "--evidence", url)
        check(r.returncode == 0, f"run shipped: {r.returncode} {r.stderr}")
    # another run of another runbook under the same prefix is not this runbook's history
    r = e.drbook("fa", "run", e.runbook("fa", "other", os.devnull), "--runs-dir", "runs2",
                 "--quiet", "--evidence", url)
    check(r.returncode == 0, f"other runbook shipped: {r.stderr}")
    r = e.drbook("fb", "plan", "fc.yaml", "--runs-dir", "runs", "--json", "--evidence", url)
    check(r.returncode == 0, f"plan on the other host: {r.returncode} {r.stderr}")
    f = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")][-1]
    fc = f.get("forecast") or f.get("summary", {}).get("forecast")
    check(fc and fc["history"] and fc["runs"] == 3 and fc["evidence_logs"] == 4,
          f"forecast from the bucket's 3 runs of 4 logs: {fc}")
    slow = [s for s in fc["steps"] if s["id"] == "slow"][0]
    check(slow["samples"] == 3 and 0.25 <= slow["median_s"] < 2, f"slow step predicted: {slow}")
    shipped = set(os.listdir(os.path.join(e.tmp, "fa", "runs")))
    check(not shipped & set(os.listdir(os.path.join(e.tmp, "fb", "runs"))),
          "the shipped logs are not left in the other host's runs folder (only its plan's log)")
    check(not [n for n in os.listdir(os.path.join(e.tmp, "fb", "tmp"))
               if n.startswith("drbook-forecast-")], "the scratch folder is removed")
    r = e.drbook("fb", "plan", "fc.yaml", "--runs-dir", "runs", "--evidence", url)
    check(r.returncode == 0 and f"RTO forecast from 3 past runs in runs and {url}" in r.stdout,
          f"the text names both places: {r.stdout}")
    # the machine that made the runs has them locally and in the bucket: each counts once
    r = e.drbook("fa", "plan", "fc.yaml", "--runs-dir", "runs", "--json", "--evidence", url)
    f = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")][-1]
    fc = f.get("forecast") or f.get("summary", {}).get("forecast")
    check(r.returncode == 0 and fc["runs"] == 3, f"local and shipped runs deduplicated: {fc}")
    r = e.drbook("fb", "plan", "fc.yaml", "--runs-dir", "runs", "--evidence",
                 "s3://no-such-bucket-here/x")
    check(r.returncode == 0, f"an unreadable bucket does not fail the plan: {r.stderr}")
    check("evidence bucket could not be read" in r.stdout and "no history" in r.stdout,
          f"said, then the runs folder only: {r.stdout}")


def main():
    if not DRBOOK:
        sys.exit("DRBOOK must name the drbook binary")
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="drbook-evidence-") as tmp:
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
