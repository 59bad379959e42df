"""libpq, ldns and libxml2 are not linked into drbook: each is opened the first time an
action needs it (docs/performance.md, "Start-up"). A validate or a lua step never loads them;
a pg.*, dns.resolve or XML-protocol AWS action does; and when one cannot be loaded the step
fails with a message naming the action, the library and the Debian package to install."""
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from drbtest import DRBOOK, EXAMPLES, check, events, main

LAZY = ("libpq.so", "libldns.so", "libxml2.so")

PG = """
    version: 1
    name: lazy-pg
    connections:
      db: { kind: postgres, dsn_env: LAZY_DSN }
    steps:
      - id: q
        action: pg.query
        with: { connection: db, sql: "select 1" }
"""

DNS = """
    version: 1
    name: lazy-dns
    steps:
      - id: r
        action: dns.resolve
        with: { name: example.test, servers: ["127.0.0.1:9"], timeout: 1s }
"""

STS = """
    version: 1
    name: lazy-xml
    steps:
      - id: whoami
        action: aws.sts.get_caller_identity
"""

LUA = """
    version: 1
    name: lazy-lua
    steps:
      - id: one
        action: lua
        read_only: true
        script: return { i = 1 }
"""

STS_ANSWER = b"""<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/lazy</Arn>
<UserId>AIDALAZY</UserId><Account>123456789012</Account></GetCallerIdentityResult>
<ResponseMetadata><RequestId>lazy-1</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"""


class StsHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(STS_ANSWER)))
        self.end_headers()
        self.wfile.write(STS_ANSWER)

    def log_message(self, *a):
        pass


class Sts:
    """A local endpoint answering every request with one GetCallerIdentity answer (XML)."""

    def __enter__(self):
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), StsHandler)
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()
        return self

    def env(self):
        return {"AWS_ENDPOINT_URL": "http://127.0.0.1:%d" % self.srv.server_address[1],
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1", "AWS_SESSION_TOKEN": "",
                "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}

    def __exit__(self, *exc):
        self.srv.shutdown()
        self.srv.server_close()
        self.t.join()


def loaded(stderr):
    """The lazy libraries LD_DEBUG=files saw opened."""
    return [lib for lib in LAZY if ("file=" + lib) in stderr]


def broken(c, soname):
    """A folder whose `soname` is not a library: dlopen of it fails, as a missing one does."""
    d = c.path("libs")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, soname), "w").close()
    return {"LD_LIBRARY_PATH": d}


def step_error(c, step):
    end = events(c.log(), "step.end", step)
    check(len(end) == 1, f"one step.end for {step}: {end}")
    return end[0]["data"]


def test_the_binary_does_not_need_them(c):
    p = subprocess.run(["readelf", "-d", DRBOOK], capture_output=True, text=True, check=True)
    needed = [l for l in p.stdout.splitlines() if "(NEEDED)" in l]
    check(needed, "readelf lists the binary's NEEDED entries:\n" + p.stdout)
    for lib in LAZY:
        check(not any(lib in l for l in needed), f"{lib} is not NEEDED:\n" + "\n".join(needed))


def test_validate_and_a_lua_run_load_none(c):
    env = {"LD_DEBUG": "files"}
    r = c.drbook("validate", os.path.join(EXAMPLES, "hello.yaml"), env=env)
    check(r.code == 0, "hello.yaml is valid", r)
    check("file=libcurl.so" in r.err, "LD_DEBUG=files shows what is loaded", r)
    check(loaded(r.err) == [], f"validate loads none of {LAZY}: {loaded(r.err)}")
    rb = c.write("lua.yaml", LUA)
    r = c.drbook("run", rb, "--audit", "run.jsonl", env=env)
    check(r.code == 0, "the lua run succeeds", r)
    check(loaded(r.err) == [], f"a lua run loads none of {LAZY}: {loaded(r.err)}")


def test_pg_opens_libpq_at_its_first_call(c):
    rb = c.write("pg.yaml", PG)
    env = {"LD_DEBUG": "files", "LAZY_DSN": "host=127.0.0.1 port=9 dbname=x user=x"}
    r = c.drbook("run", rb, "--audit", "run.jsonl", env=env)
    check(r.code == 1, "nothing listens on port 9: the step fails", r)
    check(loaded(r.err) == ["libpq.so"], f"libpq, and only it, was opened: {loaded(r.err)}", r)
    err = step_error(c, "q")["error"]
    check("cannot connect" in err, f"libpq itself answered: {err}")


def test_a_missing_libpq_is_named_with_its_package(c):
    rb = c.write("pg.yaml", PG)
    env = dict(broken(c, "libpq.so.5"), LAZY_DSN="host=127.0.0.1 port=9 dbname=x user=x")
    r = c.drbook("run", rb, "--audit", "run.jsonl", env=env)
    check(r.code == 1, "the step fails, the run fails", r)
    err = step_error(c, "q")["error"]
    check("pg.query: libpq.so.5 (the PostgreSQL client library) cannot be loaded: " in err, f"the action and the library are named: {err}")
    check(err.endswith("install the Debian package libpq5"), f"and the package: {err}")


PG_LUA = """
    version: 1
    name: lazy-pg-lua
    connections:
      db: { kind: postgres, dsn_env: LAZY_DSN }
    steps:
      - id: q
        action: lua
        read_only: true
        script: return pg.query("db", "select 1")
"""


def test_a_missing_libpq_in_a_lua_step_names_the_action_once(c):
    rb = c.write("pg.yaml", PG_LUA)
    env = dict(broken(c, "libpq.so.5"), LAZY_DSN="host=127.0.0.1 port=9 dbname=x user=x")
    r = c.drbook("run", rb, "--audit", "run.jsonl", env=env)
    check(r.code == 1, "the script's call fails, the run fails", r)
    err = step_error(c, "q")["error"]
    check("pg.query: libpq.so.5 (the PostgreSQL client library) cannot be loaded: " in err,
          f"the action and the library are named: {err}")
    check("pg.query: pg.query" not in err, f"the action is named once: {err}")


def test_dns_opens_ldns_at_its_first_call(c):
    rb = c.write("dns.yaml", DNS)
    r = c.drbook("run", rb, "--audit", "run.jsonl", env={"LD_DEBUG": "files"})
    check(r.code == 1, "nothing answers on 127.0.0.1:9: the step fails", r)
    check(loaded(r.err) == ["libldns.so"], f"ldns, and only it, was opened: {loaded(r.err)}", r)
    err = step_error(c, "r")["error"]
    check("no answer" in err, f"ldns itself sent the query: {err}")


def test_a_missing_ldns_is_named_with_its_package(c):
    rb = c.write("dns.yaml", DNS)
    r = c.drbook("run", rb, "--audit", "run.jsonl", env=broken(c, "libldns.so.3"))
    check(r.code == 1, "the step fails, the run fails", r)
    err = step_error(c, "r")["error"]
    check("dns.resolve: libldns.so.3 (the ldns DNS library) cannot be loaded: " in err, f"the action and the library are named: {err}")
    check(err.endswith("install the Debian package libldns3"), f"and the package: {err}")


def test_an_xml_answer_opens_libxml2(c):
    rb = c.write("sts.yaml", STS)
    with Sts() as sts:
        r = c.drbook("run", rb, "--audit", "run.jsonl", env=dict(sts.env(), LD_DEBUG="files"))
    check(r.code == 0, "the call is answered", r)
    check(loaded(r.err) == ["libxml2.so"], f"libxml2, and only it, was opened: {loaded(r.err)}",
          r)
    end = step_error(c, "whoami")
    check(end["result"]["account"] == "123456789012", f"the XML answer was read: {end}")


def test_a_missing_libxml2_is_named_with_its_package(c):
    rb = c.write("sts.yaml", STS)
    with Sts() as sts:
        r = c.drbook("run", rb, "--audit", "run.jsonl",
                     env=dict(sts.env(), **broken(c, "libxml2.so.2")))
    check(r.code == 1, "the answer cannot be read: the run fails", r)
    err = step_error(c, "whoami")["error"]
    check("reading an AWS XML answer: libxml2.so.2 (the XML library) cannot be loaded: "
          in err, f"what needed it and the library are named: {err}")
    check("install the Debian package libxml2" in err, f"and the package: {err}")


if __name__ == "__main__":
    main(globals())
