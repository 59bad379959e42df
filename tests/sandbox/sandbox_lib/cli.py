# The `sandbox` command: up / down / status / inject / requests / env / clean. It owns the
# launcher's lifecycle (daemonised in its own process group, pid file, log file) and the
# clean-up that must work even after the launcher or a test crashed.
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from .common import (Paths, SandboxError, check_pg_can_reach, pid_alive, port_in_use,
                     read_json)
from .pgnodes import stop_all_recorded

SCENARIOS = ["ecs-task", "primary", "region-outage", "region-recover", "corruption",
             "arc-endpoint-down", "rds-failover", "s3-replication-stall"]
MODES = ["refused", "timeout", "5xx"]


def _err(msg):
    sys.stderr.write("sandbox: %s\n" % msg)


def control(paths, req, timeout=120):
    """One JSON request over the launcher's unix socket; raises SandboxError on refusal."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(paths.control))
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError as e:
        raise SandboxError("launcher not reachable on %s: %s" % (paths.control, e))
    finally:
        s.close()
    try:
        reply = json.loads(buf)
    except ValueError:
        raise SandboxError("launcher sent no answer")
    if not reply.get("ok"):
        raise SandboxError(reply.get("error", "refused"))
    return reply.get("result")


def launcher_pid(paths):
    try:
        return int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_our_launcher(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"_launch" in f.read()
    except OSError:
        return False


def is_up(paths):
    pid = launcher_pid(paths)
    if not pid or not pid_alive(pid) or not paths.ready.exists():
        return False
    try:
        return control(paths, {"cmd": "ping"}, timeout=10) == "pong"
    except SandboxError:
        return False


def _group_members(pgid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(d))
        except (OSError, IndexError, ValueError):
            continue
    return out


def _kill_group(pgid, log):
    """The launcher runs as its own process group (setsid): whatever is left in it goes."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        members = _group_members(pgid)
        if not members:
            return True
        log("sending %s to process group %d (%s)" % (sig.name, pgid, members))
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return True
        end = time.monotonic() + wait
        while time.monotonic() < end and _group_members(pgid):
            time.sleep(0.1)
    return not _group_members(pgid)


def teardown(paths, log, graceful=True):
    """Stop everything a launcher (alive or dead) started; return the problems left."""
    pid = launcher_pid(paths)
    if graceful and pid and pid_alive(pid) and paths.control.exists():
        try:
            control(paths, {"cmd": "shutdown"}, timeout=10)
            end = time.monotonic() + 40
            while time.monotonic() < end and pid_alive(pid):
                time.sleep(0.1)
        except SandboxError as e:
            log("graceful shutdown failed: %s" % e)
    stop_all_recorded(paths, log)
    if pid and (_is_our_launcher(pid) or not pid_alive(pid)):
        _kill_group(pid, log)
    problems = []
    if pid and pid_alive(pid) and _is_our_launcher(pid):
        problems.append("launcher %d still alive" % pid)
    for name, s in (read_json(paths.servers, {}) or {}).items():
        pidfile = os.path.join(s.get("datadir", ""), "postmaster.pid")
        if os.path.exists(pidfile):
            try:
                ppid = int(open(pidfile).readline())
                if pid_alive(ppid):
                    problems.append("postgres %s (pid %d) still alive" % (name, ppid))
            except (OSError, ValueError):
                pass
    ports = dict(read_json(paths.ports, {}) or {})
    for name, s in (read_json(paths.servers, {}) or {}).items():
        ports.setdefault(name, s.get("port"))
    for name, port in ports.items():
        if port and port_in_use(port):
            problems.append("port %s (%s) still in use" % (port, name))
    for p in (paths.pid, paths.ready, paths.control):
        try:
            p.unlink()
        except OSError:
            pass
    return problems


def _wipe_for_up(paths):
    for d in (paths.pg, paths.sock, paths.archive, paths.basebackup, paths.dns):
        if d.exists():
            shutil.rmtree(d)
    for f in (paths.env_sh, paths.env_json, paths.ready, paths.servers, paths.ports,
              paths.corruption, paths.control, paths.requests):
        try:
            f.unlink()
        except OSError:
            pass
    if paths.log.exists():
        os.replace(paths.log, str(paths.log) + ".1")


def status_obj(paths):
    pid = launcher_pid(paths)
    obj = {"state": "down", "state_dir": str(paths.root), "launcher_pid": pid,
           "env_file": str(paths.env_sh), "log": str(paths.log)}
    if is_up(paths):
        obj["state"] = "up"
        obj.update(read_json(paths.ready, {}) or {})
        obj["ports"] = read_json(paths.ports, {})
        try:
            obj.update(control(paths, {"cmd": "status"}, timeout=30))
        except SandboxError as e:
            obj["state"], obj["error"] = "unhealthy", str(e)
    elif pid and pid_alive(pid):
        obj["state"] = "starting" if not paths.ready.exists() else "unhealthy"
    return obj


def cmd_up(paths, args):
    paths.root.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.root, 0o755)     # the postgres user must enter it
    check_pg_can_reach(paths.root)
    if is_up(paths):
        print(json.dumps(status_obj(paths), indent=2, sort_keys=True))
        return 0
    if launcher_pid(paths) or (read_json(paths.servers) or read_json(paths.ports)):
        # a previous launcher died (or is wedged): clear what it left before starting anew
        problems = teardown(paths, _err)
        if problems:
            raise SandboxError("could not clean up the previous sandbox: " +
                               "; ".join(problems))
    _wipe_for_up(paths)
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "sandbox")
    env = dict(os.environ, DRB_SANDBOX_DIR=str(paths.root), PYTHONUNBUFFERED="1")
    with open(paths.log, "ab") as log:
        proc = subprocess.Popen([sys.executable, script, "_launch"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, close_fds=True, cwd=str(paths.root))
    paths.pid.write_text("%d\n" % proc.pid)
    timeout = float(os.environ.get("DRB_SANDBOX_UP_TIMEOUT", "90"))
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            break
        if paths.ready.exists():
            print(json.dumps(status_obj(paths), indent=2, sort_keys=True))
            return 0
        time.sleep(0.2)
    why = ("launcher exited with %s" % proc.returncode if proc.poll() is not None
           else "not ready after %.0fs" % timeout)
    try:
        tail = paths.log.read_text().splitlines()[-30:]
    except OSError:
        tail = []
    _err("up failed: %s; last lines of %s:\n  %s" % (why, paths.log, "\n  ".join(tail)))
    problems = teardown(paths, _err)
    for p in problems:
        _err(p)
    return 1


def cmd_down(paths, args):
    problems = teardown(paths, _err)
    print(json.dumps({"state": "down", "state_dir": str(paths.root),
                      "problems": problems}, indent=2, sort_keys=True))
    return 1 if problems else 0


def cmd_status(paths, args):
    obj = status_obj(paths)
    print(json.dumps(obj, indent=2, sort_keys=True))
    return 0 if obj["state"] == "up" else 1


def cmd_inject(paths, args):
    if not is_up(paths):
        raise SandboxError("the sandbox is not up (run: sandbox up)")
    a = {}
    if args.service:
        a["service"] = args.service
    if args.cluster:
        a["cluster"] = args.cluster
    if args.region:
        if args.scenario not in ("region-outage", "region-recover"):
            raise SandboxError("--region goes with region-outage or region-recover")
        a["region"] = args.region
    if args.control_plane:
        if args.scenario != "region-outage":
            raise SandboxError("--control-plane goes with region-outage")
        a["control_plane"] = True
    if (args.mode or args.hang_s is not None) and not (
            args.control_plane or args.scenario == "arc-endpoint-down"):
        raise SandboxError("--mode and --hang-s go with region-outage --control-plane or "
                           "arc-endpoint-down")
    if args.mode:
        a["mode"] = args.mode
    if args.hang_s is not None:
        a["hang_s"] = args.hang_s
    if args.scenario == "arc-endpoint-down":
        if args.index is None:
            raise SandboxError("arc-endpoint-down needs the endpoint number (0-4)")
        a["index"] = args.index
    elif args.index is not None:
        raise SandboxError("unexpected argument %r" % args.index)
    res = control(paths, {"cmd": "inject", "scenario": args.scenario, "args": a})
    print(json.dumps(res, indent=2, sort_keys=True))
    return 0


def cmd_region_state(paths, args):
    if not is_up(paths):
        raise SandboxError("the sandbox is not up (run: sandbox up)")
    res = control(paths, {"cmd": "region-state", "args": {"action": args.action}})
    print(json.dumps(res, indent=2, sort_keys=True))
    return 0


def cmd_requests(paths, args):
    """The fault proxy's request log (requests.jsonl), filtered; readable after `down` too."""
    recs = []
    try:
        with open(paths.requests) as f:
            for line in f:
                if line.strip():
                    recs.append(json.loads(line))
    except OSError:
        raise SandboxError("no request log in %s (the sandbox was never up)" % paths.root)
    recs = [r for r in recs if r["seq"] > args.since and
            (not args.region or r["region"] == args.region) and
            (not args.service or r["service"] == args.service)]
    if args.json:
        print(json.dumps(recs, indent=2, sort_keys=True))
        return 0
    for r in recs:
        print("%5d %s %-8s %-15s %-26s %-32s %s" % (
            r["seq"], r["ts"], r["endpoint"], r["region"] or "-", r["service"] or "-",
            r["operation"] or r["method"] + " " + r["path"],
            r["fault"] or r["status"]))
    return 0


def cmd_env(paths, args):
    if not is_up(paths) or not paths.env_sh.exists():
        raise SandboxError("the sandbox is not up (run: sandbox up)")
    sys.stdout.write(paths.env_sh.read_text())
    return 0


def cmd_clean(paths, args):
    problems = teardown(paths, _err)
    if problems:
        for p in problems:
            _err(p)
        return 1
    shutil.rmtree(paths.root, ignore_errors=True)
    return 0


def main(argv):
    if argv[:1] == ["_launch"]:
        from .launcher import main as launch
        return launch()
    ap = argparse.ArgumentParser(prog="sandbox", description="drbook local mini-cloud "
                                 "(moto behind a fault proxy + PostgreSQL + an ARC cluster + "
                                 "DNS). State: $DRB_SANDBOX_DIR or /tmp/drbook-sandbox.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="start everything and wait until ready (idempotent)")
    sub.add_parser("down", help="stop every process and free every port")
    sub.add_parser("status", help="print JSON; exit 0 when up, 1 otherwise")
    inj = sub.add_parser("inject", help="inject a failure scenario")
    inj.add_argument("scenario", choices=SCENARIOS)
    inj.add_argument("--service", help="ecs-task: the service (default api)")
    inj.add_argument("--cluster", help="ecs-task: the cluster (default prod-us)")
    inj.add_argument("index", nargs="?", type=int,
                     help="arc-endpoint-down: which ARC cluster endpoint (0-4)")
    inj.add_argument("--region", choices=["us-east-1", "eu-west-1"],
                     help="region-outage: the failed region (default us-east-1; eu-west-1 "
                          "stops its replica's server and tasks and fails its health check, "
                          "the case for failing over to ap-southeast-1); region-recover: "
                          "the region that comes back (default us-east-1)")
    inj.add_argument("--control-plane", action="store_true",
                     help="region-outage: every us-east-1 endpoint fails too (with the global "
                          "Route 53, STS and IAM APIs, which sign for us-east-1)")
    inj.add_argument("--mode", choices=MODES,
                     help="how a failed endpoint fails: refused (connection reset or refused; "
                          "the default), timeout (no answer until the client gives up, at most "
                          "--hang-s), 5xx (HTTP 503 ServiceUnavailable)")
    inj.add_argument("--hang-s", type=float, help="bound of the timeout mode (default 120)")
    req = sub.add_parser("requests", help="the requests clients sent through the sandbox's "
                         "endpoints (region, service, operation, fault)")
    req.add_argument("--json", action="store_true", help="a JSON array")
    req.add_argument("--since", type=int, default=0, help="only records after this seq")
    req.add_argument("--region", help="only this region")
    req.add_argument("--service", help="only this service (SigV4 signing name)")
    rs = sub.add_parser("region-state", help="save, or put back, what the region drill "
                        "changes (the eu-west-1 replica's data and RDS model, prod-eu's counts, "
                        "the routing controls): a cheap reset between drills")
    rs.add_argument("action", choices=["save", "restore"])
    sub.add_parser("env", help="print the shell export lines")
    sub.add_parser("clean", help="down, then delete the state dir")
    args = ap.parse_args(argv)
    paths = Paths()
    fn = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "inject": cmd_inject,
          "env": cmd_env, "clean": cmd_clean, "requests": cmd_requests,
          "region-state": cmd_region_state}[args.cmd]
    try:
        return fn(paths, args)
    except SandboxError as e:
        _err(str(e))
        return 1
