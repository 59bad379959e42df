"""Action schemas end to end: `drbook actions` prints the catalog from them (and
docs/actions.md is exactly its --markdown output), `drbook validate` checks with: literals
against them, and a run checks interpolated values against them, naming step and argument.
Custom Lua actions declare their arguments the same way."""
import json
import os

from drbtest import SRC, check, main

# DESIGN.md "Action catalog v1": names and fields are contract.
CATALOG_V1 = {
    "lua": (["script"], []),
    "sleep": (["duration"], []),
    "approval": (["message", "timeout"], ["approver", "approved_at"]),
    "exec": (["argv", "timeout", "env"], ["exit_code", "stdout", "stderr"]),
    "http.request": (["method", "url", "headers", "body", "timeout"],
                     ["status", "headers", "body", "latency_ms"]),
    "notify": (["channel", "text", "severity", "dedup_key"], ["delivered"]),
    "aws.sts.get_caller_identity": ([], ["account", "arn"]),
    "aws.rds.describe_db_instance": (["id"], ["id", "status", "engine", "multi_az", "az",
                                              "secondary_az", "endpoint", "port",
                                              "replica_source", "replicas"]),
    "aws.rds.promote_read_replica": (["id"], ["id", "status"]),
    "aws.rds.reboot_db_instance": (["id", "force_failover"], ["id", "status"]),
    "aws.rds.failover_db_cluster": (["cluster", "target"], ["id", "status", "writer"]),
    "aws.rds.describe_db_snapshots": (["id"], ["snapshot", "created_at", "status"]),
    "aws.rds.restore_db_instance_to_point_in_time": (["source", "target", "restore_time",
                                                      "latest"], ["id", "status"]),
    "aws.rds.restore_db_instance_from_snapshot": (["snapshot", "target"], ["id", "status"]),
    "aws.route53.get_record": (["zone_id", "name", "type"], ["name", "type", "ttl", "values"]),
    "aws.route53.upsert_record": (["zone_id", "name", "type", "ttl", "values", "wait"],
                                  ["change_id", "status"]),
    "aws.route53.get_health_check_status": (["id"], ["healthy", "reporting", "failing"]),
    "aws.route53.update_health_check": (["id", "disabled", "inverted"], ["id"]),
    "aws.ecs.describe_service": (["cluster", "service"], ["status", "desired", "running",
                                                          "pending", "rollout_state"]),
    "aws.ecs.update_service": (["cluster", "service", "desired_count", "force_new_deployment"],
                               ["desired", "running"]),
    "aws.ecs.list_tasks": (["cluster", "service"], ["tasks"]),
    "aws.ecs.stop_task": (["cluster", "task", "reason"], ["task", "last_status"]),
    "aws.sns.publish": (["topic_arn", "subject", "message"], ["message_id"]),
    "aws.cloudwatch.put_metric_data": (["namespace", "name", "value", "unit", "dimensions"], []),
    "pg.query": (["connection", "sql", "args"], ["rows"]),
    "pg.exec": (["connection", "sql", "args"], ["rows_affected"]),
    "pg.status": (["connection"], ["in_recovery", "timeline", "lsn", "server_version"]),
    "pg.replication_lag": (["connection"], ["replay_lag_s", "lag_bytes", "receive_lsn",
                                            "replay_lsn"]),
    "pg.promote": (["connection", "wait"], ["promoted", "took_ms"]),
    "pg.fence": (["connection"], ["fenced"]),
    "pg.sentinel_write": (["connection"], ["id", "written_at", "lsn"]),
    "pg.sentinel_check": (["connection", "id"], ["present"]),
    "pg.validate": (["connection", "checks"], ["passed", "failures"]),
}
READ_ONLY = {"sleep", "aws.sts.get_caller_identity", "aws.rds.describe_db_instance",
             "aws.rds.describe_db_snapshots", "aws.route53.get_record",
             "aws.route53.get_health_check_status", "aws.ecs.describe_service",
             "aws.ecs.list_tasks", "pg.query", "pg.status", "pg.replication_lag",
             "pg.sentinel_check", "pg.validate"}


def test_actions_json_holds_the_v1_catalog(c):
    r = c.drbook("actions", "--json")
    check(r.code == 0, "actions --json exits 0", r)
    cat = {a["name"]: a for a in json.loads(r.out)}
    for name, (args, fields) in CATALOG_V1.items():
        check(name in cat, f"{name} is in the catalog")
        a = cat[name]
        have = [x["name"] for x in a["args"]]
        for arg in args:
            check(arg in have, f"{name} takes {arg} (has {have})")
        got = [f["name"] for f in a["result"]]
        for f in fields:
            check(f in got, f"{name} returns {f} (has {got})")
        if name in READ_ONLY:
            check(a["mode"] == "ro", f"{name} is read-only")
        for x in a["args"]:
            check(set(x) >= {"name", "type", "required", "doc"}, f"{name}.{x['name']} fields")
    for name in ("aws.rds.promote_read_replica", "aws.ecs.update_service", "pg.exec",
                 "notify", "aws.route53.upsert_record"):
        check(cat[name]["mode"] == "mut", f"{name} is mutating")
    check(cat["http.request"]["mode"] == "depends", "http.request's mode depends on the method")
    check(cat["aws.ecs.update_service"]["resource"] == "service", "resource argument")
    sev = [x for x in cat["notify"]["args"] if x["name"] == "severity"][0]
    check(sev["enum"] == ["info", "warning", "error", "critical"], "enum values")
    dur = [x for x in cat["sleep"]["args"] if x["name"] == "duration"][0]
    check(dur["type"] == "duration" and dur["required"] is True, "sleep duration is required")


def test_actions_text_and_usage(c):
    r = c.drbook("actions")
    check(r.code == 0 and "aws.ecs.update_service (mutating)" in r.out
          and "desired_count" in r.out, "text catalog", r)
    check(c.drbook("actions", "--yaml").code == 2, "unknown option -> 2")
    h = c.drbook("actions", "--help")
    check(h.code == 0 and "usage: drbook actions" in h.out, "help", h)
    check("actions" in c.drbook("--help").out, "listed in drbook --help")


def test_docs_actions_md_is_generated_from_the_schemas(c):
    r = c.drbook("actions", "--markdown")
    check(r.code == 0, "actions --markdown", r)
    with open(os.path.join(SRC, "docs", "actions.md")) as f:
        doc = f.read()
    check(doc == r.out, "docs/actions.md differs from `drbook actions --markdown`: regenerate it "
          "with `build/drbook actions --markdown > docs/actions.md`")


def test_validate_reports_with_errors_all_at_once(c):
    p = c.write("bad.yaml", """
        version: 1
        name: bad
        steps:
          - id: scale
            action: aws.ecs.update_service
            with: { cluster: prod-eu, service: api, desird_count: 2 }
          - id: scale2
            action: aws.ecs.update_service
            with: { cluster: prod-eu, service: api, desired_count: two }
          - id: nap
            action: sleep
            with: { duration: 3x }
          - id: tell
            action: notify
            with: { channel: email, text: hi }
          - id: promote
            action: aws.rds.promote_read_replica
        """)
    r = c.drbook("validate", p)
    check(r.code == 2 and r.out == "", "invalid -> exit 2, nothing on stdout", r)
    want = [
        "bad.yaml:6:45: step 'scale': aws.ecs.update_service: unknown argument 'desird_count' "
        "(did you mean 'desired_count'?)",
        "bad.yaml:9:60: step 'scale2': aws.ecs.update_service: argument 'desired_count' must be "
        "an integer (got \"two\")",
        "bad.yaml:12:23: step 'nap': sleep: argument 'duration' must be a duration such as 90s, "
        "15m or 1h (got \"3x\")",
        "bad.yaml:15:22: step 'tell': notify: argument 'channel' must be slack, pagerduty or sns "
        "(got \"email\")",
        "bad.yaml:17:13: step 'promote': aws.rds.promote_read_replica: argument 'id' is "
        "required",
    ]
    got = [line.replace(c.dir + "/", "") for line in r.err.splitlines()]
    check(got == want, f"diagnostics\n{got}", r)
    for cmd in (["plan", p], ["run", p, "--runs-dir", c.path("runs")]):
        r = c.drbook(*cmd)
        check(r.code == 2 and "unknown argument 'desird_count'" in r.err,
              f"{cmd[0]} loads the same way and refuses", r)
    check(not os.path.exists(c.path("runs")), "nothing ran")


def test_interpolated_value_checked_at_run_time(c):
    p = c.write("rt.yaml", """
        version: 1
        name: rt
        params:
          pause: { type: string, default: soon }
        steps:
          - id: nap
            action: sleep
            with: { duration: "${params.pause}" }
        """)
    check(c.drbook("validate", p).code == 0, "a ${ } value passes validate")
    r = c.drbook("run", p, "--audit", "run.jsonl", "--runs-dir", c.path("runs"))
    check(r.code == 1, "the run fails", r)
    msg = "step 'nap': sleep: argument 'duration' must be a duration such as 90s, 15m or 1h " \
          "(got \"soon\")"
    check(msg in r.out + r.err, "the error names the step and the argument", r)
    ends = [x for x in c.log("run.jsonl") if x["event"] == "step.end"]
    check(ends and ends[0]["data"]["status"] == "failed"
          and "argument 'duration' must be a duration" in ends[0]["data"]["error"],
          "step.end records it", r)
    ok = c.drbook("run", p, "-p", "pause=10ms", "--runs-dir", c.path("runs"))
    check(ok.code == 0, "a good value runs", ok)


MODULE = """
    drbook.action("site.scale", {
      mode = "mut",
      doc = "Scales a service of the site",
      resource = "service",
      args = {
        service = { type = "string", required = true, doc = "service name" },
        count = { type = "int", default = 2 },
        tier = { type = "string", enum = { "gold", "silver" } },
        pause = { type = "duration" },
      },
      result = { scaled = { type = "int", doc = "the new count" } },
    }, function(args) return { scaled = args.count or 2 } end)
    drbook.action("site.open", { mode = "ro" }, function(args) return { ok = true } end)
    """


def test_custom_lua_actions_declare_their_arguments(c):
    c.write("site.lua", MODULE)
    p = c.write("custom.yaml", """
        version: 1
        name: custom
        lua: [site]
        params:
          n: { type: string, default: three }
        steps:
          - id: scale
            action: site.scale
            with: { servise: api, count: many, tier: bronze, pause: 3x }
          - id: open
            action: site.open
            with: { anything: goes }
        """)
    r = c.drbook("validate", p)
    got = [line.replace(c.dir + "/", "") for line in r.err.splitlines()]
    want = [
        "custom.yaml:9:13: step 'scale': site.scale: unknown argument 'servise' (did you mean "
        "'service'?)",
        "custom.yaml:9:34: step 'scale': site.scale: argument 'count' must be an integer "
        "(got \"many\")",
        "custom.yaml:9:46: step 'scale': site.scale: argument 'tier' must be gold or silver "
        "(got \"bronze\")",
        "custom.yaml:9:61: step 'scale': site.scale: argument 'pause' must be a duration such "
        "as 90s, 15m or 1h (got \"3x\")",
    ]
    check(r.code == 2 and got == want, f"declared arguments are checked\n{got}", r)
    good = c.write("good.yaml", """
        version: 1
        name: good
        lua: [site]
        params:
          n: { type: string, default: three }
        steps:
          - id: scale
            action: site.scale
            with: { service: api, count: "${params.n}" }
        """)
    check(c.drbook("validate", good).code == 0, "an interpolated value passes validate")
    r = c.drbook("run", good, "--runs-dir", c.path("runs"), "--audit", "run.jsonl")
    check(r.code == 1 and "step 'scale': site.scale: argument 'count' must be an integer "
          "(got \"three\")" in r.out + r.err, "and is checked when it runs", r)
    ok = c.drbook("run", good, "-p", "n=4", "--runs-dir", c.path("runs"))
    check(ok.code == 0, "a good value runs", ok)


def test_bad_custom_declaration_is_reported(c):
    c.write("broken.lua", """
        drbook.action("site.broken", { mode = "ro", args = { x = { type = "integer" } } },
          function(args) return {} end)
        """)
    p = c.write("b.yaml", """
        version: 1
        name: b
        lua: [broken]
        steps:
          - { id: a, action: sleep, with: { duration: 1ms } }
        """)
    r = c.drbook("validate", p)
    check(r.code == 2 and "argument 'x': type must be string, int, number" in r.err,
          "an unknown type in a declaration is an error", r)


if __name__ == "__main__":
    main(globals())
