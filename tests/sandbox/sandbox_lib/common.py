# Shared plumbing of the drbook sandbox: where its state lives, how ports are picked, how
# PostgreSQL tools are run as the postgres user, and how SQL is sent (psql, because the
# default python3 has no PostgreSQL driver and the sandbox must not need pip).
import datetime
import json
import os
import re
import pwd
import shutil
import random
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

PG_USER = "postgres"          # OS user that owns and runs every PostgreSQL server
DB_SUPERUSER = "postgres"     # the RDS "master user" of every instance
DB_NAME = "app"               # the application database seeded with accounts and orders


class SandboxError(Exception):
    """A failure the CLI reports as one line and a non-zero exit."""


def state_dir():
    return Path(os.environ.get("DRB_SANDBOX_DIR") or "/tmp/drbook-sandbox").resolve()


class Paths:
    """Every file the sandbox writes, relative to its state dir (one place to change)."""

    def __init__(self, root=None):
        self.root = Path(root) if root else state_dir()
        self.pid = self.root / "launcher.pid"
        self.log = self.root / "launcher.log"
        self.ready = self.root / "ready.json"
        self.env_sh = self.root / "env.sh"
        self.env_json = self.root / "env.json"
        self.servers = self.root / "servers.json"
        self.ports = self.root / "ports.json"
        self.control = self.root / "control.sock"
        self.corruption = self.root / "corruption.json"
        self.requests = self.root / "requests.jsonl"   # every request the fault proxy saw
        self.dns = self.root / "dns"            # NSD + Unbound configs, zone file, logs
        self.pg = self.root / "pg"              # data dirs + server logs (owned by postgres)
        self.sock = self.root / "sock"          # unix sockets of the servers
        self.archive = self.root / "wal-archive"
        self.basebackup = self.root / "basebackup"


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(ts):
    return ts.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        "%03dZ" % (ts.microsecond // 1000)


def parse_rfc3339(text):
    t = text.strip().replace("Z", "+00:00")
    ts = datetime.datetime.fromisoformat(t)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=datetime.timezone.utc)
    return ts


def ephemeral_low():
    """The lowest port the kernel hands out on its own (to bind(0) and to outgoing
    connections), from ip_local_port_range; 32768 when it cannot be read."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


PORTS_ENV = "DRB_SANDBOX_PORTS"     # LOW-HIGH: the only ports this test may pick (ctest)


def port_range():
    """(low, high), inclusive: where free_port picks. ctest gives each script test its own
    range in DRB_SANDBOX_PORTS=LOW-HIGH (tests/CMakeLists.txt), disjoint from every other
    test's, so that tests running at once never pick each other's ports (and a test's check
    that no port is in use after `down` never sees another test's server). Unset, the whole
    span from 10000 to just below the kernel's ephemeral range."""
    text = os.environ.get(PORTS_ENV, "").strip()
    if not text:
        low = ephemeral_low()
        return (10000, low - 1) if low > 11000 else (0, 0)
    m = re.fullmatch(r"(\d+)-(\d+)", text)
    if not m or not 1024 <= int(m.group(1)) <= int(m.group(2)) <= 65535:
        raise SandboxError("%s=%r: want LOW-HIGH, 1024 <= LOW <= HIGH <= 65535" %
                           (PORTS_ENV, text))
    return int(m.group(1)), int(m.group(2))


_handed_out = set()     # ports this process picked already: never twice while others remain
_pick_lock = threading.Lock()   # the launcher's threads (glue) pick too


def free_port(udp_too=False):
    """A loopback port nobody uses right now; the caller binds it soon after. Picked below
    the kernel's ephemeral range: a port from bind(0) can be taken, between the pick and the
    bind, as the local port of any outgoing connection on the machine (a test's client talking
    to moto), which made a sandbox fail to start with EADDRINUSE now and then. Picked inside
    port_range(), and never a port this process picked before while the range has others: a
    sandbox picks several ports before it binds any, and a port just given up (a server
    stopped by the test) is not handed out again at once."""
    low, high = port_range()
    with _pick_lock:
        return _pick(low, high, udp_too)


def _pick(low, high, udp_too):
    rng = random.SystemRandom()
    if low == 0:
        candidates = [0] * 200      # no room below the ephemeral range: the kernel picks
    else:
        candidates = [p for p in range(low, high + 1) if p not in _handed_out]
        if not candidates:          # every port of the range was handed out once: start over
            _handed_out.clear()
            candidates = list(range(low, high + 1))
        rng.shuffle(candidates)
    for port in candidates[:2000]:
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if udp_too else None
        try:
            t.bind(("127.0.0.1", port))
            port = t.getsockname()[1]
            if u:
                u.bind(("127.0.0.1", port))
            _handed_out.add(port)
            return port
        except OSError:
            continue
        finally:
            t.close()
            if u:
                u.close()
    raise SandboxError("no free loopback port in %d-%d" % (low, high))


def port_in_use(port):
    """True when something still listens on 127.0.0.1:port (what `down` must rule out)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", int(port)))
            return True
        except OSError:
            return False


def pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); treat it as dead
    try:
        with open("/proc/%d/stat" % int(pid)) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def write_json_atomic(path, obj, mode=0o644):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def is_root():
    return os.geteuid() == 0


def pg_bindir():
    d = os.environ.get("DRB_PG_BINDIR", "/usr/lib/postgresql/15/bin")
    if not os.path.exists(os.path.join(d, "pg_ctl")):
        raise SandboxError("PostgreSQL 15 binaries not found in %s (set DRB_PG_BINDIR; "
                           "Debian package postgresql-15)" % d)
    return d


def pg_tool(name):
    return os.path.join(pg_bindir(), name)


def as_pg_user(argv):
    """PostgreSQL refuses to run as root; when we are root, run its tools as postgres."""
    if is_root():
        return ["runuser", "-u", PG_USER, "--"] + list(argv)
    return list(argv)


def chown_pg(path):
    if is_root():
        pw = pwd.getpwnam(PG_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def chown_pg_tree(path):
    if not is_root():
        return
    pw = pwd.getpwnam(PG_USER)
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for n in dirs + files:
            os.lchown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)


def run(argv, env=None, timeout=120, check=True, input_text=None):
    """Run a command; on failure raise SandboxError carrying its output (fail loudly)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        p = subprocess.run(argv, env=full_env, timeout=timeout, input=input_text,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           stdin=None if input_text is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise SandboxError("%s: timed out after %ss" % (" ".join(argv[:6]), timeout)) from e
    if check and p.returncode != 0:
        # conninfo strings carry the password: keep it out of logs and error messages
        cmd = re.sub(r"password=\S+", "password=***", " ".join(argv[:8]))
        raise SandboxError("%s: exit %d: %s" % (cmd, p.returncode,
                                               (p.stderr or p.stdout).strip()[-2000:]))
    return p


def dsn(port, password, dbname=DB_NAME, user=DB_SUPERUSER, app=None):
    parts = ["host=127.0.0.1", "port=%d" % int(port), "dbname=%s" % dbname,
             "user=%s" % user, "password=%s" % password, "connect_timeout=5"]
    if app:
        parts.append("application_name=%s" % app)
    return " ".join(parts)


def psql(conninfo, sql, timeout=20, check=True):
    """Run one SQL string through psql (unaligned, tuples only); returns the raw stdout."""
    if not shutil.which("psql"):
        raise SandboxError("psql not found (Debian package postgresql-client-15)")
    p = run(["psql", conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
            env={"PGCONNECT_TIMEOUT": "5", "PGOPTIONS": "-c statement_timeout=%d" %
                 int(timeout * 1000)}, timeout=timeout + 5, check=check)
    return p.stdout if p.returncode == 0 else None


def psql_value(conninfo, sql, timeout=20):
    out = psql(conninfo, sql, timeout=timeout)
    return out.strip().splitlines()[0] if out and out.strip() else ""


def wait_until(pred, timeout, interval=0.2, what="condition"):
    end = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < end:
        try:
            if pred():
                return
        except Exception as e:  # retried until the deadline; reported below
            last_exc = e
        time.sleep(interval)
    raise SandboxError("timed out after %ss waiting for %s%s" %
                       (timeout, what, (": %s" % last_exc) if last_exc else ""))


def ensure_dir(path, mode=0o755, pg_owned=False):
    Path(path).mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if pg_owned:
        chown_pg(path)


def check_pg_can_reach(path):
    """The postgres user must traverse every parent of the state dir (e.g. not /root)."""
    if not is_root():
        return
    p = run(as_pg_user(["test", "-x", str(path)]), check=False)
    if p.returncode != 0:
        raise SandboxError("the postgres user cannot enter %s: pick a DRB_SANDBOX_DIR whose "
                           "parents are world-executable (e.g. under /tmp)" % path)

