#!/usr/bin/env python3
"""drbook's AWS credential chain cross-checked with botocore, source by source.

For each configuration (environment, shared files, /dev/null files, assume-role profiles with
source_profile chains and credential_source, web identity from the environment and from a
profile, credential_process, the container endpoint, IMDSv2 and its IMDSv1 fallback, SSO with
and without sso_session), both clients resolve credentials from the same environment and
files in a fresh process each:
  drbook   $BUILD/tests/aws_creds_tool creds (access key, SHA-256 of secret and token)
  botocore botocore.session.get_session().get_credentials() (the same, hashed)
and both sign sts:GetCallerIdentity with what they found: drbook through
$BUILD/tests/aws_action_tool aws.sts.get_caller_identity, botocore with an STS client. The
signed request must succeed for both against moto with signature checking on, and name the
same identity. Where a source hands out fixed keys (environment, files, process, container,
IMDS, SSO) the keys must be equal; where STS mints new ones (assume-role, web identity), the
AssumeRole* requests both sent (moto records RoleArn, RoleSessionName, ExternalId,
DurationSeconds, signing region, signed or not) must be equal, and so must the assumed
identity. Refusals (a source_profile loop, a container URL that is not allowed, a missing role
ARN) must be refusals for both; mfa_serial is refused by drbook (it cannot prompt). The regional
STS endpoint table is compared too (AWS_STS_REGIONAL_ENDPOINTS, AWS_ENDPOINT_URL[_STS]).
No secret may appear in drbook's output.

Servers: moto (a child process, free loopback port; AssumeRoleWithWebIdentity is exempt from
signature checks, as on AWS, where it is an unsigned call) and tests/tools/aws_cred_server.py
(IMDS, container endpoint, SSO portal). Both are stopped at the end, also on failure.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("SRC") or os.path.abspath(os.path.join(HERE, "..", ".."))
REGION = "eu-west-1"
ACCOUNT = "123456789012"


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest() if s is not None else None


# ---- moto in a child process ------------------------------------------------------------

def serve_moto():
    """Child mode: moto with an STS request log; prints the port; exits when stdin closes."""
    os.environ.setdefault("INITIAL_NO_AUTH_ACTION_COUNT", "1000000")
    from moto.core import authorization
    from moto.moto_server import threaded_moto_server as tms
    from moto.sts import responses as stsr

    log_path = os.environ["MOTO_STS_LOG"]
    lock = threading.Lock()
    orig_auth = authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action

    def auth(self, cls, resource="*"):
        # AWS does not authenticate AssumeRoleWithWebIdentity (the token is the proof).
        if self._get_action() == "AssumeRoleWithWebIdentity":
            return None
        return orig_auth(self, cls, resource)

    authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action = auth

    def logged(name):
        orig = getattr(stsr.TokenResponse, name)

        def wrapper(self):
            authz = self.headers.get("Authorization") or ""
            scope = authz.split("Credential=")[1].split(",")[0].split("/") if authz else []
            rec = {"action": self._get_action(), "RoleArn": self._get_param("RoleArn"),
                   "RoleSessionName": self._get_param("RoleSessionName"),
                   "ExternalId": self._get_param("ExternalId"),
                   "DurationSeconds": self._get_param("DurationSeconds"),
                   "token_sha256": sha(self._get_param("WebIdentityToken")),
                   "signed": bool(authz),
                   "signing_region": scope[2] if len(scope) > 2 else None,
                   "key": scope[0] if scope else None}
            with lock, open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            return orig(self)
        setattr(stsr.TokenResponse, name, wrapper)

    logged("assume_role")
    logged("assume_role_with_web_identity")
    server = tms.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


class Child:
    """A server in a child process that prints its port and exits when stdin closes."""

    def __init__(self, argv, env, what, errlog):
        self.what = what
        self.errlog = errlog
        with open(errlog, "w") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, env=env, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            with open(errlog) as f:
                raise RuntimeError(f"{what} did not start: {line!r}\n{f.read()[-3000:]}")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()


def http_json(url, data=None):
    req = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None
                                 else None, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def find(name):
    build = os.environ.get("BUILD")
    p = os.path.join(build, "tests", name) if build else None
    if not p or not os.access(p, os.X_OK):
        sys.exit(f"{name} not found (BUILD={build!r}): build it first; this test does not skip")
    return p


# ---- botocore in a child process ----------------------------------------------------------

BOTO = r"""
import hashlib, json, os, sys
import botocore.credentials, botocore.session, botocore.tokens

def sha(s):
    return hashlib.sha256(s.encode()).hexdigest() if s is not None else None

def resolve(env, profile):
    os.environ.clear()
    os.environ.update(env)
    # The only settings botocore reads at import time: where `aws sso login` caches tokens.
    cache = os.path.expanduser(os.path.join("~", ".aws", "sso", "cache"))
    botocore.credentials.SSOProvider._SSO_TOKEN_CACHE_DIR = cache
    botocore.tokens.SSOTokenProvider._SSO_TOKEN_CACHE_DIR = cache
    try:
        s = botocore.session.get_session()
        if profile:
            s.set_config_variable("profile", profile)
        c = s.get_credentials()
        if c is None:
            return {"none": True}
        f = c.get_frozen_credentials()
        out = {"access_key": f.access_key, "secret_sha256": sha(f.secret_key),
               "token_sha256": sha(f.token), "method": c.method}
        sts = s.create_client("sts", aws_access_key_id=f.access_key,
                              aws_secret_access_key=f.secret_key, aws_session_token=f.token)
        out["arn"] = sts.get_caller_identity()["Arn"]
        return out
    except Exception as e:
        return {"error": type(e).__name__, "message": str(e)}

# One request per stdin line ({"env": ..., "profile": ...}), a fresh session each: botocore
# is imported once (the test runs dozens of configurations).
for line in sys.stdin:
    req = json.loads(line)
    print(json.dumps(resolve(req["env"], req["profile"])), flush=True)
"""


class Botocore:
    """A python3 child that resolves credentials with botocore, one configuration a line."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", BOTO], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def resolve(self, env, profile):
        self.proc.stdin.write(json.dumps({"env": env, "profile": profile}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the botocore child died"
        return json.loads(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- the cases ------------------------------------------------------------------------------

class Suite:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def case(self, name, fn, *a):
        t = time.monotonic()
        try:
            fn(*a)
            self.passed += 1
            print(f"ok   {name} ({time.monotonic() - t:.1f} s)", flush=True)
        except Exception:
            self.failed += 1
            print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 1 if self.failed or not self.passed else 0


class World:
    def __init__(self, tmp, moto, emu, seeds, boto):
        self.tmp, self.moto, self.emu, self.s = tmp, moto, emu, seeds
        self.botocore = boto
        self.creds_tool = find("aws_creds_tool")
        self.action_tool = find("aws_action_tool")
        self.secrets = [seeds["sk"], seeds["src"]["SecretAccessKey"],
                        seeds["src"]["SessionToken"], "web-identity-token-SECRET",
                        "container-auth-SECRET", "sso-access-token-SECRET", "refresh-SECRET",
                        "client-secret-SECRET"]
        self.n = 0

    def home(self, files):
        """A fresh HOME with ~/.aws files (name -> text)."""
        self.n += 1
        h = os.path.join(self.tmp, f"home{self.n}")
        os.makedirs(os.path.join(h, ".aws"))
        for name, text in files.items():
            p = os.path.join(h, name)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        return h

    def env(self, home, extra):
        e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        e.update(HOME=home, AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true",
                 AWS_ENDPOINT_URL_STS=self.moto.url)
        for k, v in extra.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v.replace("$HOME", home)
        return e

    def no_secrets(self, *texts):
        for t in texts:
            for s in self.secrets:
                assert s not in t, f"a secret reached drbook's output: ...{s[-6:]}"

    def drbook(self, env, profile=None):
        """drbook's credentials, the STS requests resolving them made, and the identity a
        signed GetCallerIdentity (a second process) gets with them."""
        args = [self.creds_tool, "creds"] + (["--profile", profile] if profile else [])
        p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
        reqs = self.sts_log()
        self.no_secrets(p.stdout, p.stderr)
        if p.returncode != 0:
            return {"error": p.stderr.strip()}, reqs
        out = json.loads(p.stdout)
        calls = os.path.join(self.tmp, f"calls{self.n}.jsonl")
        conns = json.dumps({"c": {"kind": "aws", "profile": profile}}) if profile else None
        a = [self.action_tool] + (["--connections", conns] if conns else []) + \
            ["aws.sts.get_caller_identity", '{"connection": "c"}' if conns else "{}"]
        q = subprocess.run(a, env=dict(env, DRB_AWS_CALLS=calls), capture_output=True,
                           text=True, timeout=60)
        self.sts_log()
        recs = open(calls).read() if os.path.exists(calls) else ""
        self.no_secrets(q.stdout, q.stderr, recs)
        assert q.returncode == 0, f"drbook's signed GetCallerIdentity failed: {q.stderr}"
        out["arn"] = json.loads(q.stdout)["arn"]
        return out, reqs

    def boto(self, env, profile=None):
        return self.botocore.resolve(env, profile)

    def sts_log(self):
        p = os.path.join(self.tmp, "sts.jsonl")
        recs = [json.loads(x) for x in open(p)] if os.path.exists(p) else []
        open(p, "w").close()
        return recs

    def compare(self, files, extra, same_keys=True, profile=None, session=None):
        """Resolves with both; returns (drbook, botocore, their STS requests)."""
        h = self.home(files)
        env = self.env(h, extra)
        self.sts_log()
        d, d_sts = self.drbook(env, profile)
        b = self.boto(env, profile)
        b_sts = self.sts_log()
        assert "error" not in d, d
        assert "error" not in b and "none" not in b, b
        if same_keys:
            for k in ("access_key", "secret_sha256", "token_sha256"):
                assert d[k] == b[k], (k, d, b)
            assert d["arn"] == b["arn"], (d, b)
        else:
            # STS minted different keys: the same requests, the same identity.
            assert len(d_sts) == len(b_sts) and d_sts, (d_sts, b_sts)
            for x, y in zip(d_sts, b_sts):
                for k in ("action", "RoleArn", "ExternalId", "DurationSeconds",
                          "token_sha256", "signed", "signing_region"):
                    assert x[k] == y[k], (k, x, y)
                if x["RoleSessionName"].startswith("drbook-session-"):
                    # Neither was given one: botocore names it botocore-session-<time>.
                    assert y["RoleSessionName"].startswith("botocore-session-"), (x, y)
                else:
                    assert x["RoleSessionName"] == y["RoleSessionName"], (x, y)
            if session:
                assert d_sts[-1]["RoleSessionName"] == session, d_sts
            role = lambda arn: arn.split("/")[1]  # noqa: E731
            assert role(d["arn"]) == role(b["arn"]), (d, b)
            if session:
                assert d["arn"] == b["arn"], (d, b)
        return d, b, d_sts

    def both_refuse(self, files, extra, d_msg, profile=None):
        h = self.home(files)
        env = self.env(h, extra)
        p = subprocess.run([self.creds_tool, "creds"] + (["--profile", profile] if profile
                                                         else []),
                           env=env, capture_output=True, text=True, timeout=60)
        self.no_secrets(p.stdout, p.stderr)
        assert p.returncode == 1 and d_msg in p.stderr, (p.returncode, p.stderr)
        b = self.boto(env, profile)
        assert "error" in b or "none" in b, b
        return p.stderr, b


LOADER = None


def botocore_sts(env, region):
    """(endpoint URL, signing region) of botocore's STS client, read from a request it
    signed (stopped before it is sent), or None when botocore refuses the settings."""
    import botocore.loaders
    import botocore.session
    global LOADER
    if LOADER is None:
        LOADER = botocore.loaders.create_loader()
    saved = dict(os.environ)
    got = {}

    def grab(request, **kw):
        auth = request.headers.get("Authorization")
        auth = auth.decode() if isinstance(auth, bytes) else auth
        got["url"] = request.url.split("?")[0]
        got["region"] = auth.split("Credential=")[1].split("/")[2]
        raise RuntimeError("not sent")
    try:
        os.environ.clear()
        os.environ.update(env)
        session = botocore.session.get_session()
        # A fresh session per configuration, but the service models loaded once.
        session.register_component("data_loader", LOADER)
        c = session.create_client(
            "sts", region_name=region, aws_access_key_id="a", aws_secret_access_key="b")
        c.meta.events.register("before-send", grab)
        try:
            c.get_caller_identity()
        except Exception:
            pass
    except Exception:
        return None
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return (got["url"], got["region"]) if got else None


def seed(moto_url, emu_url):
    """Inside the no-auth window: a user with a key, roles that allow everything."""
    import boto3
    kw = dict(endpoint_url=moto_url, region_name=REGION, aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
              aws_secret_access_key="seed")
    iam = boto3.client("iam", **kw)
    iam.create_user(UserName="drbook")
    allow = json.dumps({"Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    iam.put_user_policy(UserName="drbook", PolicyName="all", PolicyDocument=allow)
    key = iam.create_access_key(UserName="drbook")["AccessKey"]
    # moto compares a trust policy's principal with the caller's exact ARN (assumed-role
    # ARNs carry the session name): trust everyone.
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
    for r in ("dr-operator", "dr-hop", "dr-webid", "dr-source"):
        iam.create_role(RoleName=r, AssumeRolePolicyDocument=trust)
        iam.put_role_policy(RoleName=r, PolicyName="all", PolicyDocument=allow)
    # Temporary credentials moto knows, for the sources that hand out fixed keys
    # (container, IMDS, SSO, credential_process): the signed request must verify.
    sts = boto3.client("sts", endpoint_url=moto_url, region_name=REGION,
                       aws_access_key_id=key["AccessKeyId"],
                       aws_secret_access_key=key["SecretAccessKey"])
    src = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/dr-source",
                          RoleSessionName="fixed-source")["Credentials"]
    http_json(emu_url + "/_ctl", {"creds": {"AccessKeyId": src["AccessKeyId"],
                                            "SecretAccessKey": src["SecretAccessKey"],
                                            "Token": src["SessionToken"]},
                                  "auth_token": None, "sso_token": "sso-access-token-SECRET"})
    return {"ak": key["AccessKeyId"], "sk": key["SecretAccessKey"],
            "src": {"AccessKeyId": src["AccessKeyId"],
                    "SecretAccessKey": src["SecretAccessKey"],
                    "SessionToken": src["SessionToken"]}}


def run_cases(suite, w):
    s = w.s
    ak, sk = s["ak"], s["sk"]
    static = f"[default]\naws_access_key_id = {ak}\naws_secret_access_key = {sk}\n"
    role = lambda r: f"arn:aws:iam::{ACCOUNT}:role/{r}"  # noqa: E731

    def env_keys():
        w.compare({}, {"AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk})
    suite.case("environment keys", env_keys)

    def dev_null():
        # CI's way to say "no configuration": /dev/null is an empty file for both.
        w.compare({}, {"AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk,
                       "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
        w.both_refuse({}, {"AWS_CONFIG_FILE": "/dev/null",
                           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}, "none found")
        # A named file that does not exist is empty too, as botocore reads it.
        w.compare({".aws/credentials": static},
                  {"AWS_CONFIG_FILE": "$HOME/missing/config"})
    suite.case("/dev/null and missing named files are empty", dev_null)

    def shared_files():
        w.compare({".aws/credentials": static.replace("[default]", "[ops]")},
                  {"AWS_PROFILE": "ops"})
        w.compare({".aws/config": static.replace("[default]", "[profile ops]")},
                  {"AWS_PROFILE": "ops"})
        # $VAR in the path is expanded (os.path.expandvars).
        w.compare({"elsewhere/creds": static},
                  {"AWS_SHARED_CREDENTIALS_FILE": "${HOME}/elsewhere/creds"})
    suite.case("shared credentials and config files", shared_files)

    def assume_role():
        cfg = (f"[profile dr]\nrole_arn = {role('dr-operator')}\nsource_profile = base\n"
               f"external_id = ext-42\nduration_seconds = 1800\nrole_session_name = drill-7\n")
        creds = static.replace("[default]", "[base]")
        d, _, reqs = w.compare({".aws/config": cfg, ".aws/credentials": creds},
                               {"AWS_PROFILE": "dr"}, same_keys=False, session="drill-7")
        assert reqs[0]["ExternalId"] == "ext-42", reqs
        assert str(reqs[0]["DurationSeconds"]) == "1800", reqs
        assert reqs[0]["signing_region"] == REGION and reqs[0]["key"] == ak, reqs
        assert d["access_key"].startswith("ASIA") and d["expiration"] > time.time()
        # Without role_session_name both generate one.
        w.compare({".aws/config": cfg.replace("role_session_name = drill-7\n", ""),
                   ".aws/credentials": creds}, {"AWS_PROFILE": "dr"}, same_keys=False)
        # The connection's profile (an explicit profile) as Session(profile=...).
        w.compare({".aws/config": cfg, ".aws/credentials": creds},
                  {"AWS_ACCESS_KEY_ID": "AKIAIGNOREDIGNORED00", "AWS_SECRET_ACCESS_KEY": "x"},
                  same_keys=False, session="drill-7", profile="dr")
    suite.case("assume-role: source_profile, external_id, duration, session name", assume_role)

    def chain():
        cfg = (f"[profile top]\nrole_arn = {role('dr-operator')}\nsource_profile = hop\n"
               f"role_session_name = top\n"
               f"[profile hop]\nrole_arn = {role('dr-hop')}\nsource_profile = base\n"
               f"role_session_name = hop\n"
               f"[profile base]\naws_access_key_id = {ak}\naws_secret_access_key = {sk}\n")
        _, _, reqs = w.compare({".aws/config": cfg}, {"AWS_PROFILE": "top"}, same_keys=False,
                               session="top")
        assert [r["RoleArn"] for r in reqs] == [role("dr-hop"), role("dr-operator")], reqs
        # A profile may source its own static keys.
        selfref = (f"[profile me]\nrole_arn = {role('dr-operator')}\nsource_profile = me\n"
                   f"role_session_name = me\naws_access_key_id = {ak}\n"
                   f"aws_secret_access_key = {sk}\n")
        w.compare({".aws/config": selfref}, {"AWS_PROFILE": "me"}, same_keys=False,
                  session="me")
        loop = (f"[profile a]\nrole_arn = {role('dr-operator')}\nsource_profile = b\n"
                f"[profile b]\nrole_arn = {role('dr-hop')}\nsource_profile = a\n")
        w.both_refuse({".aws/config": loop}, {"AWS_PROFILE": "a"}, "loop")
    suite.case("assume-role chains, self reference, loops", chain)

    def credential_source():
        cfg = (f"[profile dr]\nrole_arn = {role('dr-operator')}\n"
               f"credential_source = Environment\nrole_session_name = from-env\n")
        # With the keys in the environment the env provider wins for both: use an explicit
        # profile (which skips it) so that credential_source is what is exercised.
        _, _, reqs = w.compare({".aws/config": cfg},
                               {"AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk},
                               same_keys=False, session="from-env", profile="dr")
        assert reqs[0]["key"] == ak
        cfg2 = cfg.replace("Environment", "EcsContainer").replace("from-env", "from-ecs")
        _, _, reqs = w.compare({".aws/config": cfg2},
                               {"AWS_CONTAINER_CREDENTIALS_FULL_URI": w.emu.url + "/container/x"},
                               same_keys=False, session="from-ecs", profile="dr")
        assert reqs[0]["key"] == s["src"]["AccessKeyId"], reqs
        cfg3 = cfg.replace("Environment", "Ec2InstanceMetadata").replace("from-env", "from-ec2")
        w.compare({".aws/config": cfg3},
                  {"AWS_EC2_METADATA_DISABLED": None,
                   "AWS_EC2_METADATA_SERVICE_ENDPOINT": w.emu.url},
                  same_keys=False, session="from-ec2", profile="dr")
        bad = cfg.replace("Environment", "Nowhere")
        w.both_refuse({".aws/config": bad}, {}, "not valid", profile="dr")
        mfa = cfg + "mfa_serial = arn:aws:iam::123456789012:mfa/ops\n"
        h = w.home({".aws/config": mfa})
        p = subprocess.run([w.creds_tool, "creds", "--profile", "dr"], env=w.env(h, {}),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and "mfa_serial" in p.stderr and "MFA" in p.stderr, p.stderr
    suite.case("assume-role: credential_source Environment/EcsContainer/Ec2InstanceMetadata; "
               "mfa refused", credential_source)

    def web_identity():
        h_files = {"token": "web-identity-token-SECRET"}
        _, _, reqs = w.compare(h_files, {"AWS_WEB_IDENTITY_TOKEN_FILE": "$HOME/token",
                                         "AWS_ROLE_ARN": role("dr-webid"),
                                         "AWS_ROLE_SESSION_NAME": "pod-1"},
                               same_keys=False, session="pod-1")
        assert reqs[0]["action"] == "AssumeRoleWithWebIdentity" and not reqs[0]["signed"]
        assert reqs[0]["token_sha256"] == sha("web-identity-token-SECRET")
        cfg = (f"[profile eks]\nrole_arn = {role('dr-webid')}\n"
               f"web_identity_token_file = $HOME/token\n")
        # botocore does not expand the path in the profile: give it an absolute one.
        h = w.home(h_files)
        cfg = cfg.replace("$HOME", h)
        w.compare(dict(h_files, **{".aws/config": cfg}), {"AWS_PROFILE": "eks"},
                  same_keys=False)
        w.both_refuse(h_files, {"AWS_WEB_IDENTITY_TOKEN_FILE": "$HOME/token"}, "role ARN")
    suite.case("web identity: environment and profile", web_identity)

    def process():
        c = s["src"]
        out = json.dumps({"Version": 1, "AccessKeyId": c["AccessKeyId"],
                          "SecretAccessKey": c["SecretAccessKey"],
                          "SessionToken": c["SessionToken"],
                          "Expiration": "2099-01-01T00:00:00Z"})
        script = f"import sys\nsys.stdout.write({out!r})\n"
        bindir = os.path.join(w.tmp, "bin dir")
        os.makedirs(bindir, exist_ok=True)
        helper = os.path.join(bindir, "creds helper.py")
        with open(helper, "w") as f:
            f.write(script)
        # Quoting as botocore splits it (shlex, no shell): a path with a space, an
        # argument with one.
        cfg = (f"[profile proc]\ncredential_process = {sys.executable} "
               f"\"{helper}\" --flag 'two words'\n")
        w.compare({".aws/config": cfg}, {"AWS_PROFILE": "proc"})
        fail = "[profile proc]\ncredential_process = sh -c 'echo login expired >&2; exit 3'\n"
        err, _ = w.both_refuse({".aws/config": fail}, {"AWS_PROFILE": "proc"}, "exited with 3")
        assert "login expired" in err
        v2 = script.replace('"Version": 1', '"Version": 2')
        assert v2 != script
        with open(helper, "w") as f:
            f.write(v2)
        w.both_refuse({".aws/config": cfg}, {"AWS_PROFILE": "proc"}, "Version")
    suite.case("credential_process: argv without a shell, JSON Version 1, failures",
               process)

    def container():
        http_json(w.emu.url + "/_ctl", {"auth_token": "container-auth-SECRET"})
        try:
            w.compare({"tok": "container-auth-SECRET"},
                      {"AWS_CONTAINER_CREDENTIALS_FULL_URI": w.emu.url + "/container/creds",
                       "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "$HOME/tok"})
            w.compare({}, {"AWS_CONTAINER_CREDENTIALS_FULL_URI": w.emu.url + "/container/c",
                           "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-auth-SECRET"})
            # localhost is allowed by name; other plain-http hosts are not.
            w.compare({}, {"AWS_CONTAINER_CREDENTIALS_FULL_URI":
                           f"http://localhost:{w.emu.port}/container/c",
                           "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-auth-SECRET"})
            w.both_refuse({}, {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://192.0.2.1/creds"},
                          "unsupported host")
        finally:
            http_json(w.emu.url + "/_ctl", {"auth_token": None})
    suite.case("container endpoint: full URI, token and token file, allowed hosts", container)

    def imds():
        e = {"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": w.emu.url}
        before = http_json(w.emu.url + "/_count")
        w.compare({}, e)
        after = http_json(w.emu.url + "/_count")
        assert after["token"] > before["token"], (before, after)  # IMDSv2 token used
        last = http_json(w.emu.url + "/_last")
        assert last["token"]["ttl"] == "21600", last
        http_json(w.emu.url + "/_ctl", {"imds": "v1"})
        try:
            w.compare({}, e)  # IMDSv1 fallback when the token PUT is not offered
            w.both_refuse({}, dict(e, AWS_EC2_METADATA_V1_DISABLED="true"), "IMDSv1")
        finally:
            http_json(w.emu.url + "/_ctl", {"imds": "v2"})
        # The config file's ec2_metadata_service_endpoint works too.
        w.compare({".aws/config": f"[default]\nec2_metadata_service_endpoint = {w.emu.url}\n"},
                  {"AWS_EC2_METADATA_DISABLED": None})
    suite.case("instance metadata: IMDSv2, v1 fallback, endpoint settings", imds)

    def sso():
        tok = json.dumps({"accessToken": "sso-access-token-SECRET",
                          "expiresAt": "2099-01-01T00:00:00Z", "region": "eu-west-1",
                          "startUrl": "https://corp.awsapps.com/start"})
        legacy = ("[profile sso]\nsso_start_url = https://corp.awsapps.com/start\n"
                  "sso_region = eu-west-1\nsso_account_id = 123456789012\n"
                  "sso_role_name = Admin\n")
        key = hashlib.sha1(b"https://corp.awsapps.com/start").hexdigest()
        e = {"AWS_PROFILE": "sso", "AWS_ENDPOINT_URL_SSO": w.emu.url,
             "AWS_ENDPOINT_URL_SSO_OIDC": w.emu.url}
        w.compare({".aws/config": legacy, f".aws/sso/cache/{key}.json": tok}, e)
        sess = ("[profile sso]\nsso_session = corp\nsso_account_id = 123456789012\n"
                "sso_role_name = Admin\n[sso-session corp]\n"
                "sso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n")
        key2 = hashlib.sha1(b"corp").hexdigest()
        w.compare({".aws/config": sess, f".aws/sso/cache/{key2}.json": tok}, e)
        # An sso_session token close to its end is renewed through SSO-OIDC with its
        # refresh token and written back to the cache; botocore then reads the new one.
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 300))
        http_json(w.emu.url + "/_ctl", {"sso_token": "sso-access-token-SECRET",
                                        "refresh_token": "refresh-SECRET-0"})
        old = json.dumps({"accessToken": "sso-access-token-SECRET", "expiresAt": soon,
                          "region": "eu-west-1", "startUrl": "https://corp.awsapps.com/start",
                          "clientId": "client-1", "clientSecret": "client-secret-SECRET",
                          "registrationExpiresAt": "2099-01-01T00:00:00Z",
                          "refreshToken": "refresh-SECRET-0"})
        files = {".aws/config": sess, f".aws/sso/cache/{key2}.json": old}
        before = http_json(w.emu.url + "/_count")["oidc"]
        h = w.home(files)
        env = w.env(h, e)
        d, _ = w.drbook(env)
        assert "error" not in d, d
        assert http_json(w.emu.url + "/_count")["oidc"] == before + 1
        with open(os.path.join(h, f".aws/sso/cache/{key2}.json")) as f:
            new = json.load(f)
        assert new["accessToken"].startswith("sso-access-token-SECRET-"), "not renewed"
        assert new["refreshToken"].startswith("refresh-SECRET-") and \
            new["refreshToken"] != "refresh-SECRET-0"
        assert new["clientId"] == "client-1" and new["startUrl"].endswith("/start")
        assert os.stat(os.path.join(h, f".aws/sso/cache/{key2}.json")).st_mode & 0o077 == 0
        b = w.boto(env)
        assert b.get("access_key") == d["access_key"], (d, b)
        assert http_json(w.emu.url + "/_count")["oidc"] == before + 1  # no second renewal
        # And botocore renews the same way drbook reads it back.
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 300))
        with open(os.path.join(h, f".aws/sso/cache/{key2}.json"), "w") as f:
            json.dump(dict(new, expiresAt=soon), f)
        b = w.boto(env)
        assert "error" not in b, b
        assert http_json(w.emu.url + "/_count")["oidc"] == before + 2
        d, _ = w.drbook(env)
        assert "error" not in d and d["access_key"] == b["access_key"], (d, b)
        assert http_json(w.emu.url + "/_count")["oidc"] == before + 2
        http_json(w.emu.url + "/_ctl", {"sso_token": "sso-access-token-SECRET"})
        expired = tok.replace("2099", "2001")
        w.both_refuse({".aws/config": legacy, f".aws/sso/cache/{key}.json": expired}, e,
                      "expired")
        w.both_refuse({".aws/config": legacy}, e, "aws sso login")
    suite.case("SSO: legacy profile and sso_session, token cache, renewal through SSO-OIDC, "
               "expired login", sso)

    def precedence():
        # Environment keys beat an assume-role profile named by AWS_PROFILE, for both.
        cfg = f"[profile dr]\nrole_arn = {role('dr-operator')}\nsource_profile = dr\n"
        w.compare({".aws/config": cfg}, {"AWS_PROFILE": "dr", "AWS_ACCESS_KEY_ID": ak,
                                         "AWS_SECRET_ACCESS_KEY": sk})
        # The container endpoint comes before instance metadata.
        d, _, _ = w.compare({}, {"AWS_EC2_METADATA_DISABLED": None,
                                 "AWS_EC2_METADATA_SERVICE_ENDPOINT": w.emu.url + "/nowhere/",
                                 "AWS_CONTAINER_CREDENTIALS_FULL_URI": w.emu.url + "/container/"})
        assert d["source"] == "container endpoint", d
    suite.case("precedence: environment over profiles, container over IMDS", precedence)

    def audit_log_has_no_secret():
        # A whole run through the engine: a connection whose profile assumes a role; the
        # audit log, stdout and stderr hold the identity but no key, secret or token.
        drbook = os.environ.get("DRBOOK") or os.path.join(os.environ.get("BUILD", ""),
                                                          "drbook")
        assert os.access(drbook, os.X_OK), f"drbook not found at {drbook}: build it first"
        cfg = (f"[profile dr]\nrole_arn = {role('dr-operator')}\nsource_profile = base\n"
               f"role_session_name = drill-audit\n")
        h = w.home({".aws/config": cfg, ".aws/credentials": static.replace("[default]",
                                                                           "[base]"),
                    "whoami.yaml": "version: 1\nname: whoami\nconnections:\n"
                                   "  dr: { kind: aws, profile: dr }\nsteps:\n"
                                   "  - id: who\n    action: aws.sts.get_caller_identity\n"
                                   "    with: { connection: dr }\n"
                                   "    assert: result.arn ~= nil\n"})
        audit = os.path.join(h, "run.jsonl")
        env = w.env(h, {"DRBOOK_LOCK_DIR": "$HOME/locks"})
        p = subprocess.run([drbook, "run", os.path.join(h, "whoami.yaml"), "--audit", audit,
                            "--yes"], env=env, cwd=h, capture_output=True, text=True,
                           timeout=120)
        log = open(audit).read() if os.path.exists(audit) else ""
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr, log[-2000:])
        assert "assumed-role/dr-operator/drill-audit" in log, log[-2000:]
        w.no_secrets(p.stdout, p.stderr, log)
        # Nor the temporary keys STS minted for the run.
        ends = [json.loads(x) for x in log.splitlines() if '"step.end"' in x]
        assert ends and ends[0]["data"]["status"] == "ok", ends
        assert not re.search(r"\bASIA[A-Z0-9]{16}\b", log), "a temporary key in the log"
        assert "SessionToken" not in log and "SecretAccessKey" not in log
    suite.case("a drbook run with an assume-role connection: no secret in the audit log",
               audit_log_has_no_secret)

    def regional_sts():
        cases = []
        for mode in (None, "regional", "legacy"):
            for region in ("eu-west-1", "us-east-1", "ap-east-1", "cn-north-1", "aws-global",
                           None):
                for ep in (None, "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"):
                    cases.append((mode, region, ep))
        for mode, region, ep in cases:
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env.update(HOME=w.tmp, AWS_CONFIG_FILE="/dev/null",
                       AWS_SHARED_CREDENTIALS_FILE="/dev/null")
            if mode:
                env["AWS_STS_REGIONAL_ENDPOINTS"] = mode
            if ep:
                env[ep] = "http://127.0.0.1:1"
            p = subprocess.run([w.creds_tool, "endpoint", "sts", "STS", "sts"] +
                               ([region] if region else []), env=env, capture_output=True,
                               text=True, timeout=30)
            assert p.returncode == 0, p.stderr
            d = json.loads(p.stdout)
            b = botocore_sts(env, region)
            if region is None and ep:
                # botocore refuses a configured endpoint without a region (NoRegionError);
                # drbook assumes us-east-1, as it does for every service.
                assert b is None and d["region"] == "us-east-1", (d, b)
                continue
            assert d["url"] == b[0].rstrip("/"), (mode, region, ep, d, b)
            assert d["region"] == b[1], (mode, region, ep, d, b)
    suite.case("regional STS endpoints match botocore (54 configurations)", regional_sts)


def main():
    if "--serve-moto" in sys.argv:
        serve_moto()
        return 0
    suite = Suite()
    tmp = tempfile.mkdtemp(prefix="drbook-creds-")
    moto = emu = boto = None
    try:
        moto = Child([sys.executable, os.path.abspath(__file__), "--serve-moto"],
                     dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="1000000",
                          MOTO_STS_LOG=os.path.join(tmp, "sts.jsonl")),
                     "moto", os.path.join(tmp, "moto.err"))
        emu = Child([sys.executable, os.path.join(SRC, "tests", "tools", "aws_cred_server.py"),
                     "--watch-stdin"], dict(os.environ), "aws_cred_server",
                    os.path.join(tmp, "emu.err"))
        seeds = seed(moto.url, emu.url)
        req = urllib.request.Request(moto.url + "/moto-api/reset-auth", data=b"0",
                                     method="POST", headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(req, timeout=10).read()
        boto = Botocore()
        run_cases(suite, World(tmp, moto, emu, seeds, boto))
    except Exception:
        suite.failed += 1
        print(f"FAIL setup\n{traceback.format_exc()}", flush=True)
    finally:
        for c in (boto, emu, moto):
            if c:
                c.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return suite.finish()


if __name__ == "__main__":
    sys.exit(main())
