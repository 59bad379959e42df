#!/usr/bin/env python3
"""bench/startup.py: what a short drbook run costs before it does anything (issue 13,
docs/performance.md "Start-up: loading only what a run needs").

For each drbook binary given (e.g. the build before and after a change) and each case
  validate   drbook validate runbooks/examples/hello.yaml
  lua        drbook run of a one-step runbook: action: lua, read_only, return { i = 1 }
  sts        drbook run of a one-step runbook: action: aws.sts.get_caller_identity, against
             moto (tests/tools/motoserver.py), as figure 2 of bench/run
it prints:
  instr      instructions of the whole process (valgrind --tool=callgrind, its "summary");
             these do not move with the machine's load, unlike wall times
  relocs     symbol relocations done at start-up and in all, dlopen included
             (LD_DEBUG=statistics: "number of relocations", "final number of relocations")
  objects    shared objects the run initialised (LD_DEBUG=files: "calling init" lines,
             the dynamic loader included), and `ldd DRBOOK | wc -l` (what the binary needs)

Every run is checked (exit 0; a run's audit log ends in a run.end that succeeded, the sts one
holds one call answered 200), otherwise the script exits 1.

  bench/startup.py build/drbook                    one binary
  bench/startup.py /tmp/before/drbook build/drbook  two, side by side
"""
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))

LUA = ("version: 1\nname: one-lua\nsteps:\n  - id: one\n    action: lua\n"
       "    read_only: true\n    script: return { i = 1 }\n")
STS = ("version: 1\nname: one-call\nsteps:\n  - id: whoami\n"
       "    action: aws.sts.get_caller_identity\n")


def die(msg):
    print("startup.py: " + msg, file=sys.stderr)
    sys.exit(1)


def check_log(path, calls):
    recs = [json.loads(line) for line in open(path)]
    end = [r for r in recs if r["event"] == "run.end"]
    if not end or end[-1]["data"].get("status") != "succeeded":
        die("%s: no successful run.end" % path)
    got = [r for r in recs if r["event"] == "call"]
    if len(got) != calls or any(r["data"].get("status") != 200 for r in got):
        die("%s: expected %d call(s) answered 200" % (path, calls))


def measure(drbook, case, argv, env, work, calls):
    """One case of one binary: three runs (callgrind, LD_DEBUG=statistics, LD_DEBUG=files)."""
    out = {}
    log = os.path.join(work, "audit.jsonl")

    def go(prefix, extra_env, what):
        if os.path.exists(log):
            os.unlink(log)
        r = subprocess.run(prefix + [drbook] + argv, env=dict(env, **extra_env),
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            die("%s %s (%s): exit %d: %s" % (drbook, case, what, r.returncode, r.stderr[-2000:]))
        if argv[0] == "run":
            check_log(log, calls)
        return r

    cg = os.path.join(work, "callgrind.out")
    go(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg], {}, "callgrind")
    m = re.search(r"^summary:\s+(\d+)", open(cg).read(), re.M)
    if not m:
        die("no summary in " + cg)
    out["instr"] = int(m.group(1))
    r = go([], {"LD_DEBUG": "statistics"}, "LD_DEBUG=statistics")
    start = re.search(r"\s number of relocations: (\d+)", r.stderr)
    final = re.search(r"final number of relocations: (\d+)", r.stderr)
    if not start or not final:
        die("no relocation statistics from LD_DEBUG=statistics")
    out["relocs"] = int(start.group(1))
    out["relocs_final"] = int(final.group(1))
    r = go([], {"LD_DEBUG": "files"}, "LD_DEBUG=files")
    out["objects"] = len(re.findall(r"calling init: ", r.stderr))
    return out


def main():
    bins = sys.argv[1:]
    if not bins or any(b.startswith("-") for b in bins):
        print(__doc__)
        sys.exit(2)
    from motoserver import MotoServer

    work = tempfile.mkdtemp(prefix="drbook-startup-", dir="/dev/shm")
    env = dict(os.environ, DRBOOK_LOCK_DIR=os.path.join(work, "locks"))
    for k in ("DRBOOK_AUDIT_KEY_FILE", "DRBOOK_SIGN_KEY_FILE", "DRBOOK_EVIDENCE", "LD_DEBUG"):
        env.pop(k, None)
    open(os.path.join(work, "lua.yaml"), "w").write(LUA)
    open(os.path.join(work, "sts.yaml"), "w").write(STS)
    log = os.path.join(work, "audit.jsonl")
    rows = []
    with MotoServer() as moto:
        cases = [
            ("validate", ["validate", os.path.join(ROOT, "runbooks/examples/hello.yaml")], env, 0),
            ("lua", ["run", os.path.join(work, "lua.yaml"), "--audit", log], env, 0),
            ("sts", ["run", os.path.join(work, "sts.yaml"), "--audit", log], moto.env(env), 1),
        ]
        for b in bins:
            ldd = subprocess.run(["ldd", b], capture_output=True, text=True, check=True)
            n_ldd = len(ldd.stdout.splitlines())
            for name, argv, e, calls in cases:
                m = measure(b, name, argv, e, work, calls)
                rows.append((b, name, m, n_ldd))
                print("%-40s %-9s instr %12d  relocs %6d (final %6d)  objects %3d  ldd %3d" % (
                    b, name, m["instr"], m["relocs"], m["relocs_final"], m["objects"], n_ldd),
                    flush=True)
    subprocess.run(["rm", "-rf", work])
    if len(bins) == 2:
        print("\n| case | instructions before | after | change | relocations before | after "
              "| objects initialised before | after | `ldd \\| wc -l` before | after |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name in ("validate", "lua", "sts"):
            a = next(r for r in rows if r[0] == bins[0] and r[1] == name)
            z = next(r for r in rows if r[0] == bins[1] and r[1] == name)
            print("| %s | %.2f M | %.2f M | %+.1f%% | %d | %d | %d | %d | %d | %d |" % (
                name, a[2]["instr"] / 1e6, z[2]["instr"] / 1e6,
                100.0 * (z[2]["instr"] - a[2]["instr"]) / a[2]["instr"],
                a[2]["relocs_final"], z[2]["relocs_final"], a[2]["objects"], z[2]["objects"],
                a[3], z[3]))


if __name__ == "__main__":
    main()
