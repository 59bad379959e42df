"""Stop conditions (stop_when:, DESIGN.md v1.1) against moto's CloudWatch: an alarm set to ALARM
(set_alarm_state, as boto3 sends it) while a run sleeps stops the run within 5 s, the declared
rollbacks run, run.end says rolled_back with reason "stop condition NAME" and drbook exits 1;
alarms in OK (in two regions) let the run end as usual; an alarm already in ALARM refuses the
run before any step (exit 3); an alarm that cannot be checked is recorded and does not stop a
real run, but stops a drill."""
import datetime
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

from drbtest import check, events, main  # noqa: E402
from motoserver import MotoServer  # noqa: E402

RUNBOOK = """\
version: 1
name: stop-when-{name}
stop_when:
  - {{ alarm: drill-stop, region: us-east-1 }}
  - {{ alarm: eu-latency, region: eu-west-1 }}
  - {{ alarm: {third} }}
steps:
  - id: one
    action: exec
    with: {{ argv: [sleep, "0.2"] }}
    rollback: {{ action: exec, with: {{ argv: [touch, {rolled}] }} }}
  - id: two
    action: sleep
    with: {{ duration: {hold} }}
  - id: three
    action: sleep
    with: {{ duration: 10ms }}
"""


def alarm(cw, name):
    cw.put_metric_alarm(AlarmName=name, MetricName="Errors", Namespace="drbook-test",
                        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                        ComparisonOperator="GreaterThanThreshold")


def setup(c, moto, name, hold="30s", third="drill-stop-2"):
    alarm(moto.client("cloudwatch"), "drill-stop")
    alarm(moto.client("cloudwatch"), "drill-stop-2")
    alarm(moto.client("cloudwatch", region="eu-west-1"), "eu-latency")
    rolled = c.path(f"rolled-{name}")
    c.write(f"{name}.yaml", RUNBOOK.format(name=name, rolled=rolled, hold=hold, third=third))
    return rolled


def ts(rec):
    return datetime.datetime.strptime(rec["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def wait_for(c, log, event, step, proc, limit=30):
    t = time.monotonic()
    while time.monotonic() - t < limit:
        if os.path.exists(c.path(log)) and events(c.log(log), event, step):
            return
        check(proc.poll() is None, f"drbook ended before {event} {step}")
        time.sleep(0.05)
    raise AssertionError(f"no {event} {step} within {limit}s")


def test_an_alarm_set_during_the_run_stops_it_and_rolls_back(c):
    with MotoServer() as moto:
        rolled = setup(c, moto, "alarm")
        p = c.spawn("run", "alarm.yaml", "--yes", "--audit", "run.jsonl", env=moto.env())
        try:
            wait_for(c, "run.jsonl", "step.start", "two", p)
            set_at = time.time()
            moto.client("cloudwatch").set_alarm_state(AlarmName="drill-stop",
                                                       StateValue="ALARM",
                                                       StateReason="5xx over 1%")
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        log = c.log()
        check(p.returncode == 1, f"exit {p.returncode}, want 1\n{out}\n{err}")
        end = events(log, "run.end")[0]["data"]
        check(end["status"] == "rolled_back", f"run.end {end}")
        check(end["reason"] == "stop condition drill-stop", f"run.end {end}")
        stop = [r for r in events(log, "stop_condition") if r["data"]["decision"] == "stop"]
        check(len(stop) == 1 and stop[0]["data"]["alarm"] == "drill-stop"
              and stop[0]["data"]["state"] == "ALARM"
              and stop[0]["data"]["alarm_reason"] == "5xx over 1%", f"stop records {stop}")
        two_end = events(log, "step.end", "two")[0]
        check(ts(two_end) - set_at < 5.0,
              f"the sleeping step ended {ts(two_end) - set_at:.1f}s after the alarm (> 5 s)")
        check(not events(log, "step.start", "three"), "a step started after the stop")
        rb = events(log, "rollback.end", "one")
        check(len(rb) == 1 and rb[0]["data"]["status"] == "ok", f"rollback {rb}")
        check(os.path.exists(rolled), "the rollback's effect is missing")
        # compact: the first check's states, then only the decision that stopped the run
        check(len(events(log, "stop_condition")) == 4,
              f"stop_condition records: {events(log, 'stop_condition')}")
        check("stop condition drill-stop" in err, f"stderr says why: {err}")


def test_alarms_in_ok_let_the_run_end(c):
    with MotoServer() as moto:
        rolled = setup(c, moto, "ok", hold="5s")
        r = c.drbook("run", "ok.yaml", "--yes", "--audit", "run.jsonl", env=moto.env())
        check(r.code == 0, "a run with its alarms in OK must succeed", r)
        log = c.log()
        check(events(log, "run.end")[0]["data"]["status"] == "succeeded", "run.end")
        checks = events(log, "stop_condition")
        check({(x["data"]["alarm"], x["data"]["state"], x["data"]["decision"]) for x in checks}
              == {("drill-stop", "OK", "continue"), ("eu-latency", "OK", "continue"),
                  ("drill-stop-2", "OK", "continue")}, f"records {checks}")
        check(len(checks) == 3, f"an unchanged state is not recorded again: {checks}")
        check("reason" not in events(log, "run.end")[0]["data"], "no stop reason")
        check(not os.path.exists(rolled), "nothing rolled back")


def test_an_alarm_in_another_region(c):
    with MotoServer() as moto:
        setup(c, moto, "eu")
        p = c.spawn("run", "eu.yaml", "--yes", "--audit", "run.jsonl", env=moto.env())
        try:
            wait_for(c, "run.jsonl", "step.start", "two", p)
            moto.client("cloudwatch", region="eu-west-1").set_alarm_state(
                AlarmName="eu-latency", StateValue="ALARM", StateReason="p99 high")
            p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        check(p.returncode == 1, f"exit {p.returncode}")
        end = events(c.log(), "run.end")[0]["data"]
        check(end["reason"] == "stop condition eu-latency", f"run.end {end}")


def test_an_alarm_already_in_alarm_refuses_the_run(c):
    with MotoServer() as moto:
        rolled = setup(c, moto, "pre")
        moto.client("cloudwatch").set_alarm_state(AlarmName="drill-stop-2", StateValue="ALARM",
                                                  StateReason="already")
        r = c.drbook("run", "pre.yaml", "--yes", "--audit", "run.jsonl", env=moto.env())
        check(r.code == 3, "refused before any step", r)
        log = c.log()
        end = events(log, "run.end")[0]["data"]
        check(end["status"] == "refused" and end["reason"] == "stop condition drill-stop-2",
              f"run.end {end}")
        check(not events(log, "step.start"), "no step started")
        check(not os.path.exists(rolled), "nothing to roll back")


def test_an_alarm_that_cannot_be_checked(c):
    """A missing alarm (as an unreachable CloudWatch) is recorded once; a real run goes on (the
    outage may be what keeps CloudWatch away), a drill stops (its safety net is gone)."""
    with MotoServer() as moto:
        setup(c, moto, "gone", hold="7s", third="no-such-alarm")
        r = c.drbook("run", "gone.yaml", "--yes", "--audit", "run.jsonl", env=moto.env())
        check(r.code == 0, "a real run goes on when a stop condition cannot be checked", r)
        errs = [x for x in events(c.log(), "stop_condition") if x["data"].get("error")]
        check(len(errs) == 1 and errs[0]["data"]["alarm"] == "no-such-alarm"
              and "no alarm named 'no-such-alarm'" in errs[0]["data"]["error"]
              and errs[0]["data"]["decision"] == "continue", f"error records {errs}")

        t = time.monotonic()
        r = c.drbook("run", "gone.yaml", "--yes", "--drill", "--audit", "drill.jsonl",
                     env=moto.env())
        check(r.code == 1, "a drill stops when its stop conditions cannot be checked", r)
        end = events(c.log("drill.jsonl"), "run.end")[0]["data"]
        check(end["status"] == "rolled_back"
              and end["reason"].startswith("stop condition no-such-alarm could not be checked"),
              f"run.end {end}")
        check(time.monotonic() - t < 7, "the drill stopped before its 7 s step ended")

    # CloudWatch unreachable: nothing listens on the endpoint
    with MotoServer() as moto:
        env = moto.env()
    r = c.drbook("run", "gone.yaml", "--yes", "--audit", "down.jsonl", env=env, timeout=120)
    check(r.code == 0, "a real run goes on without CloudWatch", r)
    errs = [x for x in events(c.log("down.jsonl"), "stop_condition") if x["data"].get("error")]
    check(len(errs) == 3, f"one error record per alarm, not one per poll: {errs}")


if __name__ == "__main__":
    main(globals())
