# The sandbox's DNS, served for real: an authoritative server (NSD) answering the sandbox's
# hosted zone as Route 53 would (failover records answer the secondary while the primary's
# health check fails), regenerated from moto's Route 53 state and the health checks' state,
# and a caching resolver (Unbound) in front of it, so `dig` shows a failover as a client sees
# it, TTL caching included.
#
# Why NSD: it is authoritative-only and serves plain zone files with no database, so "write
# the zone, `nsd-control reload ZONE`" is the whole update path; it comes from NLnet Labs
# like Unbound and runs in the foreground (-d) in the launcher's process group. Knot would
# do as well but needs a journal/timer database and serial-policy handling we have no use for.
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time

from .common import SandboxError, ephemeral_low, free_port, is_root

FEED_INTERVAL = 0.5     # how often moto's records and the health checks are read
SOA_MINIMUM = 5         # negative-answer TTL: a missing name is not cached for long
_DOTTED = {"CNAME", "NS", "PTR"}
_LAST_DOTTED = {"MX", "SRV"}


def free_dns_port():
    """A loopback port free for both UDP and TCP (DNS listens on both)."""
    return free_port(udp_too=True)


def _need(tool, package):
    path = shutil.which(tool) or (os.path.exists("/usr/sbin/" + tool) and "/usr/sbin/" + tool)
    if not path:
        raise SandboxError("%s not found (Debian package %s; scripts/setup installs it)"
                           % (tool, package))
    return path


def _fqdn(name):
    name = name.replace("\\052", "*")
    return name if name.endswith(".") else name + "."


def _value(rtype, v):
    v = v["Value"] if isinstance(v, dict) else str(v)
    if rtype in _DOTTED and not v.endswith("."):
        return v + "."
    if rtype in _LAST_DOTTED:
        parts = v.split()
        if parts and not parts[-1].endswith("."):
            parts[-1] += "."
        return " ".join(parts)
    return v


def choose(rrsets, healthy):
    """Route 53's answer for one name and type: records without a set identifier as they are;
    failover: the PRIMARY while its health check is healthy (or it has none), else the
    SECONDARY when healthy; when neither is, the primary (Route 53 then treats all as
    healthy). Other routing policies (weighted, latency, geolocation, multivalue): the
    healthy member with the highest weight, then the first set identifier."""
    simple = [r for r in rrsets if not r.set_identifier]
    if simple:
        return simple[0]
    ok = lambda r: not r.health_check_id or healthy(r.health_check_id)  # noqa: E731
    fo = {str(r.failover).upper(): r for r in rrsets if r.failover}
    if fo:
        p, s = fo.get("PRIMARY"), fo.get("SECONDARY")
        if p is not None and ok(p):
            return p
        if s is not None and ok(s):
            return s
        return p or s
    members = sorted(rrsets, key=lambda r: (-(int(r.weight or 0)), str(r.set_identifier)))
    live = [r for r in members if ok(r)]
    return (live or members)[0]


def render_zone(zone_name, rrsets, healthy, serial):
    """The zone file for NSD. The apex SOA and NS are the sandbox's own (ns1.<zone> on
    loopback): Route 53's awsdns name servers are not reachable from here."""
    zone_name = _fqdn(zone_name)
    groups = {}
    for r in rrsets:
        name = _fqdn(r.name)
        if not (name == zone_name or name.endswith("." + zone_name)):
            continue
        if name == zone_name and r.type in ("SOA", "NS"):
            continue
        groups.setdefault((name, r.type), []).append(r)
    chosen = {k: choose(v, healthy) for k, v in groups.items()}
    lines = ["$ORIGIN %s" % zone_name,
             "@ 60 IN SOA ns1.%s hostmaster.%s %d 60 30 3600 %d"
             % (zone_name, zone_name, serial, SOA_MINIMUM),
             "@ 60 IN NS ns1.%s" % zone_name]
    if ("ns1." + zone_name, "A") not in chosen:
        lines.append("ns1.%s 60 IN A 127.0.0.1" % zone_name)
    for (name, rtype), r in sorted(chosen.items()):
        ttl, values = r.ttl, list(r.records or [])
        alias = r.alias_target
        if alias and not values:
            # an alias to a record of this zone answers that record's values and TTL
            target = chosen.get((_fqdn(alias.get("DNSName", "")), rtype))
            if target is None or target.alias_target:
                continue
            ttl, values = target.ttl, list(target.records or [])
        for v in values:
            lines.append("%s %d IN %s %s" % (name, int(ttl or 0), rtype, _value(rtype, v)))
    return "\n".join(lines) + "\n"


class Dns:
    def __init__(self, paths, glue, zone_name, log):
        self.paths = paths
        self.glue = glue
        self.zone = _fqdn(zone_name)
        self.log = log
        self.dir = paths.dns
        self.auth_port = free_dns_port()
        self.resolver_port = free_dns_port()
        self.procs = {}
        self.serial = int(time.time())
        self.text = None
        self.reloads = 0
        self.errors = []
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ configuration
    def _user(self, name):
        """Started as root, each daemon drops to its own Debian system user after binding;
        as an ordinary user they stay that user."""
        if not is_root():
            return ""
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            return ""

    def _write_configs(self):
        d = str(self.dir)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        nsd_user = self._user("nsd")
        if nsd_user:
            pw = pwd.getpwnam(nsd_user)
            os.chown(d, pw.pw_uid, pw.pw_gid)
        with open(os.path.join(d, "nsd.conf"), "w") as f:
            f.write("""# written by the drbook sandbox launcher
server:
  ip-address: 127.0.0.1
  port: %(port)d
  do-ip6: no
  server-count: 1
  username: "%(user)s"
  chroot: ""
  zonesdir: "%(d)s"
  database: ""
  zonelistfile: "%(d)s/zone.list"
  xfrdfile: ""
  xfrdir: "%(d)s"
  pidfile: "%(d)s/nsd.pid"
  logfile: "%(d)s/nsd.log"
  hide-version: yes
  verbosity: 1
remote-control:
  control-enable: yes
  control-interface: %(d)s/nsd.ctl
zone:
  name: "%(zone)s"
  zonefile: "%(d)s/zone.db"
""" % {"port": self.auth_port, "user": nsd_user, "d": d, "zone": self.zone})
        with open(os.path.join(d, "unbound.conf"), "w") as f:
            f.write("""# written by the drbook sandbox launcher
server:
  interface: 127.0.0.1
  port: %(port)d
  do-ip6: no
  do-daemonize: no
  num-threads: 1
  username: "%(user)s"
  chroot: ""
  directory: "%(d)s"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  do-not-query-localhost: no
  qname-minimisation: no
  prefetch: no
  serve-expired: no
  cache-min-ttl: 0
  # Unbound picks the source port of each query itself, anywhere from 1024 up by default:
  # kept to the kernel's ephemeral range, it never takes a port of a test's range
  # (free_port, DRB_SANDBOX_PORTS) between that test's pick and its bind
  outgoing-port-avoid: 0-%(avoid)d
  # nothing leaves this machine: every name outside the sandbox zone is refused
  local-zone: "." refuse
  local-zone: "%(zone)s" transparent
stub-zone:
  name: "%(zone)s"
  stub-addr: 127.0.0.1@%(auth)d
remote-control:
  control-enable: no
""" % {"port": self.resolver_port, "user": self._user("unbound"), "d": d,
                "zone": self.zone, "auth": self.auth_port,
                "avoid": max(1023, ephemeral_low() - 1)})

    # ------------------------------------------------------------------ zone feed
    def _render(self):
        backend = self.glue._r53_backend()
        zone = next((z for z in list(backend.zones.values())
                     if _fqdn(z.name) == self.zone), None)
        if zone is None:
            raise SandboxError("hosted zone %s not found in moto" % self.zone)
        return render_zone(self.zone, list(zone.rrsets), self.glue.health_check_healthy,
                           0)

    def _write_zone(self, body):
        self.serial = max(self.serial + 1, int(time.time()))
        text = body.replace(" 0 60 30 3600 ", " %d 60 30 3600 " % self.serial, 1)
        path = os.path.join(str(self.dir), "zone.db")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)

    def refresh(self):
        """Regenerate the zone; reload NSD when what it should answer changed."""
        with self._lock:
            body = self._render()
            if body == self.text:
                return False
            self._write_zone(body)
            if "nsd" in self.procs:
                p = subprocess.run([_need("nsd-control", "nsd"), "-c",
                                    os.path.join(str(self.dir), "nsd.conf"), "reload",
                                    self.zone], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, timeout=20)
                if p.returncode != 0 or "error" in p.stdout:
                    raise SandboxError("nsd-control reload: %s" % p.stdout.strip())
                self.reloads += 1
            self.text = body
            return True

    def _feed(self):
        while not self._stop.wait(FEED_INTERVAL):
            try:
                self.refresh()
            except RuntimeError:
                continue        # moto's records changed while we read them: next round
            except Exception as e:
                self.errors.append(str(e))
                self.log("dns feed: %s" % e)

    # ------------------------------------------------------------------ processes
    def _spawn(self, name, argv):
        logf = open(os.path.join(str(self.dir), name + ".out"), "ab")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                 stderr=subprocess.STDOUT, close_fds=True)
        finally:
            logf.close()
        self.procs[name] = p
        return p

    def _wait_answering(self, name, port, qname, timeout=20):
        dig = _need("dig", "bind9-dnsutils")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            p = self.procs[name]
            if p.poll() is not None:
                out = ""
                try:
                    out = open(os.path.join(str(self.dir), name + ".out")).read()[-2000:]
                except OSError:
                    pass
                raise SandboxError("%s exited with %s: %s" % (name, p.returncode, out))
            r = subprocess.run([dig, "@127.0.0.1", "-p", str(port), qname, "SOA", "+short",
                                "+time=1", "+tries=1"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, timeout=10)
            if r.returncode == 0 and r.stdout.strip():
                return
            time.sleep(0.2)
        raise SandboxError("%s does not answer on 127.0.0.1:%d after %ss"
                           % (name, port, timeout))

    def start(self):
        nsd = _need("nsd", "nsd")
        unbound = _need("unbound", "unbound")
        _need("nsd-control", "nsd")
        self._write_configs()
        self.refresh()
        d = str(self.dir)
        self._spawn("nsd", [nsd, "-d", "-c", os.path.join(d, "nsd.conf")])
        self._wait_answering("nsd", self.auth_port, self.zone)
        self._spawn("unbound", [unbound, "-d", "-c", os.path.join(d, "unbound.conf")])
        self._wait_answering("unbound", self.resolver_port, self.zone)
        self._thread = threading.Thread(target=self._feed, name="dns-feed", daemon=True)
        self._thread.start()
        self.log("dns: NSD (authoritative) on 127.0.0.1:%d, Unbound (resolver) on "
                 "127.0.0.1:%d, zone %s" % (self.auth_port, self.resolver_port, self.zone))

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for name, p in list(self.procs.items()):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        # NSD's own server processes follow their parent; wait until the ports are free
        end = time.monotonic() + 10
        while time.monotonic() < end and any(self._tcp_in_use(p) for p in
                                             (self.auth_port, self.resolver_port)):
            time.sleep(0.1)

    @staticmethod
    def _tcp_in_use(port):
        with socket.socket() as s:
            s.settimeout(0.3)
            return s.connect_ex(("127.0.0.1", port)) == 0

    def status(self):
        return {"authoritative_port": self.auth_port, "resolver_port": self.resolver_port,
                "zone": self.zone, "serial": self.serial, "reloads": self.reloads,
                "running": {n: p.poll() is None for n, p in self.procs.items()},
                "errors": self.errors[-5:]}
