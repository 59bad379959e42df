"""Tiny harness for drbook's end-to-end tests: runs the real binary in a temporary folder,
reads its audit log, and reports 'N passed, M failed'. Each test_* function is one case."""
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback

DRBOOK = os.environ.get("DRBOOK")
SRC = os.environ.get("SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if not DRBOOK or not os.access(DRBOOK, os.X_OK):
    sys.exit("DRBOOK must name the built drbook binary (ctest sets it)")
EXAMPLES = os.path.join(SRC, "runbooks", "examples")


class Run:
    def __init__(self, proc, elapsed):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.elapsed = elapsed

    def __repr__(self):
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


class Case:
    """A temporary working folder with helpers to write runbooks and run drbook in it."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="drbook-e2e-")
        self.dir = self.tmp.name

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(textwrap.dedent(text).lstrip("\n"))
        return p

    def drbook(self, *args, timeout=120, env=None, stdin=subprocess.DEVNULL):
        e = dict(os.environ)
        e.pop("DRBOOK_AUDIT_KEY_FILE", None)
        if env:
            e.update(env)
        t = time.monotonic()
        p = subprocess.run([DRBOOK, *args], cwd=self.dir, capture_output=True, text=True,
                           timeout=timeout, env=e, stdin=stdin)
        return Run(p, time.monotonic() - t)

    def spawn(self, *args, env=None):
        e = dict(os.environ)
        if env:
            e.update(env)
        return subprocess.Popen([DRBOOK, *args], cwd=self.dir, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=e,
                                stdin=subprocess.DEVNULL)

    def log(self, name="run.jsonl"):
        with open(self.path(name)) as f:
            return [json.loads(line) for line in f if line.strip()]

    def close(self):
        self.tmp.cleanup()


def events(records, event, step=None):
    return [r for r in records if r["event"] == event and (step is None or r["step"] == step)]


def check(cond, msg, run=None):
    if not cond:
        raise AssertionError(msg + (f"\n{run!r}" if run is not None else ""))


def main(module_globals):
    tests = [(n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f)]
    only = sys.argv[1:]
    passed = failed = 0
    for name, fn in tests:
        if only and name not in only:
            continue
        case = Case()
        t = time.monotonic()
        try:
            fn(case)
            passed += 1
            print(f"PASS {name} ({time.monotonic() - t:.2f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()
        finally:
            case.close()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)
