"""Lua print is capped per run: a script printing in a loop leaves a small log (one
"print output truncated" record, the rest dropped), and the run ends as the script decides."""
import os

from drbtest import check, events, main

LOOP = """
            version: 1
            name: print-loop
            steps:
              - id: chatty
                action: lua
                script: |
                  local line = string.rep("x", 60000)
                  for i = 1, 2000 do print(i, line) end
                  {end}
"""


def run_loop(c, end):
    rb = c.write("p.yaml", LOOP.replace("{end}", end))
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    size = os.path.getsize(c.path("run.jsonl"))
    check(size < 12 * 1024 * 1024, f"the log stays bounded: {size} bytes for 120 MB printed", r)
    prints = events(c.log(), "lua.print")
    cut = [p for p in prints if p["data"].get("truncated")]
    check(len(cut) == 1, f"exactly one truncation record, got {len(cut)}", r)
    check(prints[-1] is cut[0], "nothing is logged after the truncation record", r)
    check(prints[0]["data"]["line"].startswith("1\t"), "the first prints are kept", r)
    return r


def test_print_loop_is_bounded_and_the_run_succeeds(c):
    r = run_loop(c, 'return "done"')
    check(r.code == 0, "the script returned: the run succeeds", r)
    end = events(c.log(), "step.end", "chatty")[0]["data"]
    check(end["status"] == "ok", f"the step ended ok: {end}")


def test_print_loop_is_bounded_and_the_script_fails_the_run(c):
    r = run_loop(c, 'error("giving up")')
    check(r.code == 1, "the script raised: the run fails", r)
    end = events(c.log(), "step.end", "chatty")[0]["data"]
    check("giving up" in end["error"], f"the script's own error: {end}")


if __name__ == "__main__":
    main(globals())
