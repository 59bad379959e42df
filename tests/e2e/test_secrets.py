"""Secrets of every type never leave drbook: parameters declared `secret: true` of type int,
list, map (nested) and string, used in templates, exec arguments and output, Lua print, step
results and errors; every byte drbook wrote (stdout, stderr, --json, the audit log, the
reports in every format) is searched for each marker."""
import os

from drbtest import check, main

RUNBOOK = """
version: 1
name: secret-types
params:
  pin: { type: int, secret: true }
  keys: { type: list, secret: true }
  creds: { type: map, secret: true }
  word: { type: string, secret: true }
steps:
  - id: echo
    action: exec
    with: { argv: [sh, -c, "echo $1 $2 $3 $4", x, "${params.pin}", "${params.keys[2]}",
                   "${params.creds.inner.deep}", "${params.word}"] }
  - id: lua-uses
    action: lua
    script: |
      print("pin " .. params.pin .. " key " .. params.keys[1] .. " deep " .. params.creds.inner.deep)
      return { pin = params.pin, keys = params.keys, creds = params.creds,
               text = "with " .. params.keys[2] }
  - id: fails
    action: lua
    script: error("bad key " .. params.keys[1] .. " and pin " .. params.pin)
"""

MARKERS = ["918273645", "list-secret-Alpha-77", "list-secret-Beta-88", "map-secret-Deep-99",
           "map-secret-Top-66", "string-secret-Zulu-55"]


def everything(c, r):
    out = [r.out, r.err]
    for name in sorted(os.listdir(c.dir)):
        p = c.path(name)
        if os.path.isfile(p):
            out.append(open(p, errors="replace").read())
    return "\n".join(out)


def test_secrets_of_every_type_never_written(c):
    rb = c.write("s.yaml", RUNBOOK)
    args = ["-p", "pin=918273645", "-p", "keys=list-secret-Alpha-77,list-secret-Beta-88",
            "-p", 'creds={"top": "map-secret-Top-66", "inner": {"deep": "map-secret-Deep-99"}}',
            "-p", "word=string-secret-Zulu-55"]
    r = c.drbook("run", rb, *args, "--audit", "run.jsonl", "--json")
    check(r.code == 1, "the last step fails", r)
    log = open(c.path("run.jsonl")).read()
    check('"pin":"***"' in log.replace(" ", "") and '"keys":"***"' in log.replace(" ", ""),
          "run.start shows secret parameters as ***")
    r2 = c.drbook("run", rb, *args, "--audit", "human.jsonl")
    for fmt in ("md", "html", "json"):
        rep = c.drbook("report", "run.jsonl", "--format", fmt)
        with open(c.path(f"report.{fmt}.out"), "w") as f:
            f.write(rep.out + rep.err)
    rep = c.drbook("audit", "verify", "run.jsonl")
    check(rep.code == 0, "the log verifies", rep)
    text = everything(c, r) + r2.out + r2.err
    for m in MARKERS:
        check(m not in text, f"secret {m} leaked")
    # the secrets did reach the commands and scripts that needed them
    check("***" in log, "values were masked, not dropped")


if __name__ == "__main__":
    main(globals())
