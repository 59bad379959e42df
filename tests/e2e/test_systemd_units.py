"""The systemd units the package ships (packaging/systemd/: the game-day and readiness
services and their timers) pass `systemd-analyze verify` (systemd's own parser: unknown keys,
bad time spans, missing ExecStart, an ExecStart that is not executable, a timer without its
unit), with /usr/bin/drbook pointed at the built binary; the readiness timer fires every 5
minutes and the game-day timer hourly (docs/operations.md, docs/gameday.md). A broken copy is
refused, so the check can fail. systemd-analyze comes with Debian's systemd package."""
import os
import re
import shutil
import subprocess

from drbtest import DRBOOK, SRC, check, main

UNITS = os.path.join(SRC, "packaging", "systemd")
NAMES = ("drbook-gameday.service", "drbook-gameday.timer", "drbook-readiness.service",
         "drbook-readiness.timer")


def analyzer():
    exe = shutil.which("systemd-analyze")
    check(exe, "systemd-analyze is not installed (Debian package systemd)")
    return exe


def copy_units(c, edit=None):
    """The units in a folder of their own, drbook's path replaced by the built binary."""
    d = c.path("units")
    os.makedirs(d, exist_ok=True)
    for n in NAMES:
        with open(os.path.join(UNITS, n)) as f:
            text = f.read().replace("/usr/bin/drbook", DRBOOK)
        if edit:
            text = edit(n, text)
        with open(os.path.join(d, n), "w") as f:
            f.write(text)
    return [os.path.join(d, n) for n in NAMES]


def verify(paths):
    return subprocess.run([analyzer(), "verify", *paths], capture_output=True, text=True,
                          timeout=60)


def test_shipped_units_verify(c):
    check(sorted(os.listdir(UNITS)) == sorted(NAMES), f"the units are {NAMES}")
    r = verify(copy_units(c))
    check(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
          f"systemd-analyze verify: clean (exit {r.returncode}): {r.stdout}{r.stderr}")


def test_timers_fire_as_documented(c):
    def key(name, k):
        with open(os.path.join(UNITS, name)) as f:
            m = re.search(rf"^{k}=(.*)$", f.read(), re.M)
        return m.group(1).strip() if m else None
    check(key("drbook-readiness.timer", "OnUnitActiveSec") == "5min",
          "readiness: every 5 minutes after the last run")
    check(key("drbook-gameday.timer", "OnCalendar") == "hourly", "game days: hourly")
    check(key("drbook-readiness.timer", "Unit") in (None, "drbook-readiness.service") and
          key("drbook-gameday.timer", "Unit") in (None, "drbook-gameday.service"),
          "each timer starts its own service")


def test_broken_units_are_refused(c):
    def edit(name, text):
        if name == "drbook-readiness.timer":
            return text.replace("OnUnitActiveSec=5min", "OnUnitActiveSec=5 fortnights-ish")
        if name == "drbook-gameday.service":
            return re.sub(r"^ExecStart=", "ExecStrat=", text, flags=re.M)
        return text
    r = verify(copy_units(c, edit))
    out = r.stdout + r.stderr
    check(r.returncode != 0, f"a broken unit fails verification: {out}")
    check("ExecStrat" in out and "drbook-readiness.timer" in out,
          f"both faults are named: {out}")


if __name__ == "__main__":
    main(globals())
