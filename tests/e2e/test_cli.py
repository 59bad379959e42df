"""The command line itself: help texts, validate's output and exit codes, audit verify,
report."""
import json
import os

from drbtest import EXAMPLES, check, main


def test_help_for_every_command(c):
    for args in (["--help"], ["run", "--help"], ["plan", "--help"], ["validate", "--help"],
                 ["resume", "--help"], ["audit", "--help"], ["report", "--help"]):
        r = c.drbook(*args)
        check(r.code == 0 and "usage: drbook" in r.out, " ".join(args), r)


def test_unknown_command_and_option_are_usage_errors(c):
    r = c.drbook("frobnicate")
    check(r.code == 2 and "unknown command" in r.err, "unknown command", r)
    r = c.drbook("run", os.path.join(EXAMPLES, "parallel.yaml"), "--frob")
    check(r.code == 2, "unknown option", r)
    r = c.drbook("run")
    check(r.code == 2, "missing runbook", r)


def test_validate_examples_prints_nothing(c):
    files = sorted(os.path.join(EXAMPLES, f) for f in os.listdir(EXAMPLES) if f.endswith(".yaml"))
    r = c.drbook("validate", *files)
    check(r.code == 0 and r.out == "" and r.err == "", "valid examples are silent", r)


def test_runbook_size_cap_is_configurable(c):
    # 1.2 MiB of valid steps: refused by default, accepted with DRBOOK_RUNBOOK_MAX_BYTES
    # (few steps with long descriptions: the file is large, its validation quick)
    pad = "x" * 600
    steps = "".join("  - id: s%d\n    description: %s\n    action: lua\n    read_only: true\n"
                    "    script: return %d\n" % (i, pad, i) for i in range(2000))
    big = c.write("big.yaml", "version: 1\nname: big\nsteps:\n" + steps)
    assert os.path.getsize(big) > 1024 * 1024
    r = c.drbook("validate", big)
    check(r.code == 2 and "runbook larger than 1 MiB" in r.err, "default cap 1 MiB", r)
    r = c.drbook("validate", big, env={"DRBOOK_RUNBOOK_MAX_BYTES": "2000000"})
    check(r.code == 0 and r.err == "", "a raised cap takes the file", r)
    r = c.drbook("validate", big, env={"DRBOOK_RUNBOOK_MAX_BYTES": "100000"})
    check(r.code == 2 and "larger than the cap of 100000 bytes" in r.err, "a lower cap", r)
    for bad in ("0", "-5", "1e6", "lots"):
        r = c.drbook("validate", big, env={"DRBOOK_RUNBOOK_MAX_BYTES": bad})
        check(r.code == 2 and "DRBOOK_RUNBOOK_MAX_BYTES" in r.err, "refused: %s" % bad, r)


def test_validate_reports_all_errors_with_positions(c):
    rb = c.write("bad.yaml", """
        version: 1
        name: bad
        steps:
          - id: a
            action: nosuch.action
          - id: a
            action: sleep
            retires: 3
            with: { duration: "${ 1 + }" }
    """)
    r = c.drbook("validate", rb)
    check(r.code == 2, "invalid -> exit 2", r)
    lines = [l for l in r.err.splitlines() if l.strip()]
    check(len(lines) >= 4, f"every error reported: {lines}", r)
    for l in lines:
        check(l.startswith(rb + ":"), f"FILE:LINE:COL prefix: {l}")
    check(any(":5:" in l and "nosuch.action" in l for l in lines), "unknown action at 5", r)
    check(any("retires" in l for l in lines), "misspelt key", r)


def test_run_of_invalid_runbook_executes_nothing(c):
    rb = c.write("bad.yaml", """
        version: 1
        name: bad
        steps:
          - id: touch
            action: exec
            with: { argv: [touch, ran] }
          - id: broken
            action: sleep
            timeout: forever
    """)
    r = c.drbook("run", rb)
    check(r.code == 2 and not os.path.exists(c.path("ran")), "nothing executed", r)


def test_validate_and_run_split_templates_alike(c):
    # validate and run share one ${ } scanner: a brace inside a long comment or a string does
    # not end the expression, and what validates runs and yields the expected value
    rb = c.write("tmpl.yaml", """
        version: 1
        name: tmpl
        steps:
          - id: echo
            action: exec
            with:
              argv:
                - echo
                - "${ 'a' --[[ } ]] }|${ '}' .. [[}]] }|$${x}"
                - |-
                  ${ 'b' -- a line comment ends at the line break: }
                  }
    """)
    r = c.drbook("validate", rb)
    check(r.code == 0 and r.err == "", "the templates validate", r)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0, "and the run evaluates them", r)
    ends = [e for e in c.log() if e["event"] == "step.end" and e["step"] == "echo"]
    check(ends and ends[0]["data"]["result"]["stdout"].strip() == "a|}}|${x} b",
          f"values: {ends}")


def test_validate_reports_undeclared_params_and_out_of_scope_variables(c):
    rb = c.write("refs.yaml", """
        version: 1
        name: refs
        params:
          replica: { type: string, default: db }
          services: { type: list, default: [api] }
        steps:
          - id: scale
            for_each: params.services
            as: svc
            action: exec
            with: { argv: [touch, "${svc}"] }
          - id: touch
            action: exec
            with: { argv: [touch, "${params.replcia}", "${svc}"] }
            assert: result.exit_code == params.want -- params.not_this_one
    """)
    r = c.drbook("validate", rb)
    check(r.code == 2, "invalid -> exit 2", r)
    check(r.err.splitlines() == [
        rb + ":14:27: step 'touch': undeclared parameter 'replcia' in with.argv[2] "
        "(did you mean 'replica'?)",
        rb + ":14:48: step 'touch': 'svc' in with.argv[3] is not in scope: it is the "
        "for_each variable of step 'scale'",
        rb + ":15:13: step 'touch': undeclared parameter 'want' in assert",
    ], "each reference at its place, all at once", r)
    r = c.drbook("run", rb)
    check(r.code == 2, "run refuses it too", r)
    check(not os.path.exists(c.path("api")), "nothing executed", r)


def test_audit_verify_detects_a_flipped_byte(c):
    r = c.drbook("run", os.path.join(EXAMPLES, "parallel.yaml"), "-p", "each=1ms",
                 "--audit", "run.jsonl")
    check(r.code == 0, "run", r)
    data = bytearray(open(c.path("run.jsonl"), "rb").read())
    lines = data.split(b"\n")
    i = len(lines[0]) + 1 + len(lines[1]) + 1 + 20  # a byte inside line 3
    data[i] ^= 0x01
    open(c.path("run.jsonl"), "wb").write(data)
    v = c.drbook("audit", "verify", "run.jsonl")
    check(v.code == 1, "tampered -> exit 1", v)
    check(":3:" in v.err or ":4:" in v.err, "names the line", v)


def test_audit_verify_truncated_last_line_is_interrupted_write(c):
    r = c.drbook("run", os.path.join(EXAMPLES, "parallel.yaml"), "-p", "each=1ms",
                 "--audit", "run.jsonl")
    check(r.code == 0, "run", r)
    data = open(c.path("run.jsonl"), "rb").read()
    open(c.path("run.jsonl"), "wb").write(data[:-40])
    v = c.drbook("audit", "verify", "run.jsonl")
    check(v.code == 0, "an interrupted write is not tampering (exit 1 means tampered)", v)
    n = len(data[:-40].split(b"\n"))
    check(f"run.jsonl:{n}: warning:" in v.err, f"names the incomplete line {n}", v)
    check("interrupted" in v.err and "tamper" not in v.err.replace("not tampering", ""),
          "reported as an interrupted write", v)
    # a truncated line in the middle is damage, not a crash
    lines = data.split(b"\n")
    lines[2] = lines[2][:30]
    open(c.path("run.jsonl"), "wb").write(b"\n".join(lines))
    v = c.drbook("audit", "verify", "run.jsonl")
    check(v.code == 1, "a cut line in the middle is tampering", v)


def test_report_formats(c):
    r = c.drbook("run", os.path.join(EXAMPLES, "rollback.yaml"), "-p",
                 f"journal={c.path('journal')}", "--audit", "run.jsonl")
    check(r.code == 1, "the rollback example fails and rolls back", r)
    md = c.drbook("report", "run.jsonl")
    check(md.code == 0, "report of an intact log exits 0", md)
    check("**Outcome**: rolled_back" in md.out and "| breaks | exec | failed |" in md.out,
          "markdown names the outcome and the failed step", md)
    check("rollback first: ok" in md.out, "the timeline shows the compensations", md)
    html = c.drbook("report", "run.jsonl", "--format", "html")
    check(html.code == 0 and html.out.startswith("<!doctype html>") and "<table>" in html.out,
          "html", html)
    js = c.drbook("report", "run.jsonl", "--format", "json")
    model = json.loads(js.out)
    check(model["status"] == "rolled_back" and model["integrity"]["ok"] is True, "json model")
    check([s["id"] for s in model["steps"]][-1] == "breaks", "steps in order")
    lines = open(c.path("run.jsonl")).read().splitlines()
    i = next(i for i, line in enumerate(lines) if i > 0 and '"exec"' in line)
    lines[i] = lines[i].replace('"exec"', '"exex"', 1)
    open(c.path("run.jsonl"), "w").write("\n".join(lines) + "\n")
    bad = c.drbook("report", "run.jsonl")
    check(bad.code == 1 and "NOT INTACT" in bad.out, "a tampered log is reported as such", bad)
    check(c.drbook("report", "run.jsonl", "--format", "pdf").code == 2, "bad format -> 2")


if __name__ == "__main__":
    main(globals())
