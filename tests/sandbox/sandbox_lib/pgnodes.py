# The sandbox's data plane: real PostgreSQL 15 servers (primary, synchronous standby, async
# replica, restored instances), created with initdb/pg_basebackup and run as the postgres user.
# Every server is recorded in servers.json before it starts so `down` can stop it after a crash.
import os
import shutil
import threading
import time
from pathlib import Path

from .common import (DB_SUPERUSER, as_pg_user, chown_pg, chown_pg_tree, dsn,
                     ensure_dir, pg_tool, psql, psql_value, read_json, run, wait_until,
                     write_json_atomic)

_servers_lock = threading.Lock()


def register_server(paths, node):
    with _servers_lock:
        servers = read_json(paths.servers, {}) or {}
        servers[node.name] = {"datadir": str(node.datadir), "port": node.port}
        write_json_atomic(paths.servers, servers)


class Node:
    """One PostgreSQL server. `name` is also its data dir name and replication app name."""

    def __init__(self, paths, name, port, password):
        self.paths = paths
        self.name = name
        self.port = int(port)
        self.password = password
        self.datadir = paths.pg / name
        self.logfile = paths.pg / (name + ".log")

    # -- connection helpers -------------------------------------------------------------
    def dsn(self, dbname="app"):
        return dsn(self.port, self.password, dbname=dbname)

    def sql(self, text, timeout=20, dbname="app"):
        return psql(self.dsn(dbname), text, timeout=timeout)

    def value(self, text, timeout=20, dbname="app"):
        return psql_value(self.dsn(dbname), text, timeout=timeout)

    def in_recovery(self):
        return self.value("select pg_is_in_recovery()", dbname="postgres") == "t"

    # -- process control ------------------------------------------------------------------
    def postmaster_pid(self):
        try:
            with open(self.datadir / "postmaster.pid") as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def running(self):
        p = run(as_pg_user([pg_tool("pg_ctl"), "-D", str(self.datadir), "status"]),
                check=False, timeout=15)
        return p.returncode == 0

    def start(self, timeout=60):
        register_server(self.paths, self)
        run(as_pg_user([pg_tool("pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
                        "-w", "-t", str(timeout), "start"]), timeout=timeout + 10)

    def stop(self, mode="immediate"):
        """Stop (immediate = the crash a failure injection wants); a no-op when not running."""
        if not self.datadir.exists() or not self.running():
            return
        run(as_pg_user([pg_tool("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w",
                        "-t", "30", "stop"]), timeout=45, check=False)
        wait_until(lambda: not self.running(), 15, what="%s to stop" % self.name)

    def promote(self, timeout=30):
        run(as_pg_user([pg_tool("pg_ctl"), "-D", str(self.datadir), "-w", "-t", str(timeout),
                        "promote"]), timeout=timeout + 10)
        wait_until(lambda: not self.in_recovery(), timeout, what="%s promotion" % self.name)

    def reload(self):
        self.sql("select pg_reload_conf()", dbname="postgres")

    # -- configuration --------------------------------------------------------------------
    def write_config(self, sync_standbys="", archive=True, primary_conninfo=None,
                     recovery=None):
        """Our own postgresql.conf and pg_hba.conf: the ones a base backup copies belong to
        the source server (its port, its sync settings) and must not leak into this one."""
        lines = [
            "listen_addresses = '127.0.0.1'",
            "port = %d" % self.port,
            "unix_socket_directories = '%s'" % self.paths.sock,
            "max_connections = 30",
            "shared_buffers = 16MB",
            "fsync = off",              # no OS crash in a sandbox; the page cache survives kills
            "full_page_writes = on",
            "wal_level = replica",
            "max_wal_senders = 10",
            "max_replication_slots = 10",
            "wal_keep_size = 64MB",
            "min_wal_size = 4MB",
            "max_wal_size = 64MB",
            "hot_standby = on",
            "wal_receiver_status_interval = 1s",
            "wal_retrieve_retry_interval = 1s",
            "timezone = 'UTC'",
            "log_timezone = 'UTC'",
            "log_line_prefix = '%m [%p] '",
            "synchronous_standby_names = '%s'" % sync_standbys,
        ]
        if archive:
            arch = self.paths.archive
            lines += ["archive_mode = on",
                      "archive_command = 'test ! -f %s/%%f && cp %%p %s/%%f'" % (arch, arch),
                      "archive_timeout = 10s"]
        else:
            lines += ["archive_mode = off"]
        if recovery:
            lines += ["restore_command = 'cp %s/%%f %%p'" % self.paths.archive,
                      "recovery_target_timeline = 'latest'"]
            if recovery.get("target_time"):
                lines += ["recovery_target_time = '%s'" % recovery["target_time"],
                          "recovery_target_action = 'promote'"]
        self._write(self.datadir / "postgresql.conf", "\n".join(lines) + "\n")
        hba = ["local all all scram-sha-256",
               "host all all 127.0.0.1/32 scram-sha-256",
               "host replication all 127.0.0.1/32 scram-sha-256"]
        self._write(self.datadir / "pg_hba.conf", "\n".join(hba) + "\n")
        auto = ["# written by the drbook sandbox"]
        if primary_conninfo:
            auto.append("primary_conninfo = '%s'" % primary_conninfo)
        self._write(self.datadir / "postgresql.auto.conf", "\n".join(auto) + "\n")

    def _write(self, path, text):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        chown_pg(path)

    def replication_conninfo(self, upstream_port):
        return ("host=127.0.0.1 port=%d user=%s password=%s application_name=%s "
                "connect_timeout=5" % (int(upstream_port), DB_SUPERUSER, self.password,
                                       self.name.replace("-", "_")))

    # -- creation ------------------------------------------------------------------------
    def initdb(self):
        pwfile = self.paths.pg / (".pw-" + self.name)
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        os.chmod(pwfile, 0o600)
        chown_pg(pwfile)
        try:
            # 1 MB WAL segments keep the archive and each restore small and quick
            run(as_pg_user([pg_tool("initdb"), "-D", str(self.datadir), "-U", DB_SUPERUSER,
                            "--pwfile", str(pwfile), "--auth=scram-sha-256", "-E", "UTF8",
                            "--locale=C", "--wal-segsize=1", "--no-sync", "--no-instructions"]),
                timeout=120)
        finally:
            pwfile.unlink()

    def clone_from(self, upstream_port):
        """pg_basebackup of the upstream into our data dir (a fresh standby)."""
        if self.datadir.exists():
            shutil.rmtree(self.datadir)
        run(as_pg_user([pg_tool("pg_basebackup"), "-h", "127.0.0.1", "-p", str(upstream_port),
                        "-U", DB_SUPERUSER, "-D", str(self.datadir), "-X", "stream", "-c",
                        "fast", "--no-sync", "-R"]),
            env={"PGPASSWORD": self.password}, timeout=180)

    def make_standby(self, upstream_port, archive):
        self.clone_from(upstream_port)
        self.write_config(archive=archive,
                          primary_conninfo=self.replication_conninfo(upstream_port))
        (self.datadir / "standby.signal").touch()
        chown_pg(self.datadir / "standby.signal")

    def restore_from_base_backup(self, target_time):
        """Copy the base backup, point recovery at the WAL archive and, when given, stop at
        target_time (RFC 3339) and promote."""
        if self.datadir.exists():
            shutil.rmtree(self.datadir)
        shutil.copytree(self.paths.basebackup, self.datadir, symlinks=True)
        chown_pg_tree(self.datadir)
        os.chmod(self.datadir, 0o700)
        for n in ("standby.signal", "postmaster.pid", "postmaster.opts"):
            p = self.datadir / n
            if p.exists():
                p.unlink()
        self.write_config(archive=False, recovery={"target_time": target_time})
        (self.datadir / "recovery.signal").touch()
        chown_pg(self.datadir / "recovery.signal")


def wait_streaming(primary, names, timeout=30, sync_name=None):
    want = sorted(n.replace("-", "_") for n in names)

    def ok():
        rows = primary.sql("select application_name, state, sync_state from "
                           "pg_stat_replication", dbname="postgres").split()
        seen = {}
        for r in rows:
            app, state, sync = r.split("|")
            seen[app] = (state, sync)
        for n in want:
            if seen.get(n, ("", ""))[0] != "streaming":
                return False
        if sync_name and seen.get(sync_name.replace("-", "_"), ("", ""))[1] != "sync":
            return False
        return True

    wait_until(ok, timeout, what="replication of %s" % ",".join(want))


def switch_and_archive(writer, timeout=20):
    """Make sure everything committed so far (and one commit after `now`) is in the WAL
    archive, so a restore to any time up to now can find a record past its target."""
    writer.sql("select txid_current()")
    seg = writer.value("select pg_walfile_name(pg_switch_wal())", dbname="postgres")
    arch = writer.paths.archive
    wait_until(lambda: (Path(arch) / seg).exists(), timeout, interval=0.1,
               what="WAL segment %s in the archive" % seg)


def take_base_backup(paths, source, password):
    if paths.basebackup.exists():
        shutil.rmtree(paths.basebackup)
    ensure_dir(paths.basebackup, 0o700, pg_owned=True)   # the state dir itself is root's
    run(as_pg_user([pg_tool("pg_basebackup"), "-h", "127.0.0.1", "-p", str(source.port), "-U",
                    DB_SUPERUSER, "-D", str(paths.basebackup), "-X", "stream", "-c", "fast",
                    "--no-sync"]), env={"PGPASSWORD": password}, timeout=180)


def stop_all_recorded(paths, log=print):
    """Stop every server servers.json knows about (also when the launcher is gone)."""
    servers = read_json(paths.servers, {}) or {}
    for name, s in servers.items():
        datadir = s.get("datadir")
        if not datadir or not os.path.exists(os.path.join(datadir, "postmaster.pid")):
            continue
        p = run(as_pg_user([pg_tool("pg_ctl"), "-D", datadir, "-m", "immediate", "-w", "-t",
                            "30", "stop"]), check=False, timeout=45)
        if p.returncode != 0 and os.path.exists(os.path.join(datadir, "postmaster.pid")):
            log("pg_ctl stop %s: %s" % (name, (p.stderr or p.stdout).strip()))
    # verify, and kill what pg_ctl could not stop (a postmaster that ignores signals)
    deadline = time.monotonic() + 15
    for name, s in servers.items():
        pidfile = os.path.join(s.get("datadir", ""), "postmaster.pid")
        while os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.1)
        if os.path.exists(pidfile):
            try:
                with open(pidfile) as f:
                    pid = int(f.readline())
                os.kill(pid, 9)
                log("killed postmaster %d of %s" % (pid, name))
            except (OSError, ValueError):
                pass


def ensure_pg_dirs(paths):
    ensure_dir(paths.pg, 0o755, pg_owned=True)
    ensure_dir(paths.sock, 0o755, pg_owned=True)
    ensure_dir(paths.archive, 0o755, pg_owned=True)
