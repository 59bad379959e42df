#!/usr/bin/env python3
"""A local emulator of the three credential endpoints AWS SDKs read, for drbook's credential
tests and the botocore cross-checks. Listens on 127.0.0.1 on a free port and prints the port
as its first stdout line. Each follows the documented protocol:

  EC2 instance metadata (IMDSv2):
    PUT /latest/api/token  with X-aws-ec2-metadata-token-ttl-seconds (1..21600) -> a token
    GET /latest/meta-data/iam/security-credentials/        -> the role name
    GET /latest/meta-data/iam/security-credentials/ROLE    -> {Code, LastUpdated, Type,
                                                               AccessKeyId, SecretAccessKey,
                                                               Token, Expiration}
    GETs need X-aws-ec2-metadata-token = a token handed out, unless the mode allows IMDSv1.
  Container endpoint (ECS task role, EKS Pod Identity):
    GET /container/creds (any path under /container/) -> {AccessKeyId, SecretAccessKey,
        Token, Expiration, RoleArn}; with an authorization token configured, the request's
        Authorization header must equal it (else 401).
  IAM Identity Center OIDC (an sso_session token's renewal):
    POST /token {grantType: refresh_token, clientId, clientSecret, refreshToken} -> a new
        {accessToken, expiresIn: 3600, refreshToken, tokenType}; the new access token becomes
        the only one the portal accepts, the new refresh token the only one /token accepts.
  IAM Identity Center portal:
    GET /federation/credentials?account_id=A&role_name=R with x-amz-sso_bearer_token = the
        configured access token -> {"roleCredentials": {accessKeyId, secretAccessKey,
        sessionToken, expiration (ms)}}; an unknown token is 401 UnauthorizedException.

Credentials are deterministic, "ASIA<KIND><generation>", so that two clients reading the same
configuration get the same key, and a rotation (POST /_ctl {"rotate": true}) is visible.

Control (test side only):
  POST /_ctl   JSON: expires_in (seconds from now for new answers), fail (bool: answer 500),
               creds ({AccessKeyId, SecretAccessKey, Token}: hand out these instead, e.g.
               keys moto knows, so that a request signed with them verifies),
               imds ("v2" default: token required; "v1": token PUT answers 404 and GETs work
               without one; "v2-only-token": like v2), auth_token (container), sso_token,
               rotate (bool: next generation)
  GET  /_count  {"imds": n, "container": n, "sso": n, "token": n}: answers that carried
               credentials (token: IMDS tokens handed out)
  GET  /_last   the headers of the last credential request per kind (names only, plus the
               IMDS TTL header value), so a test can check what was sent
Options: --watch-stdin exits when stdin reaches end of file (the parent died or closed it).
It always exits by itself after 300 s, a safety net for a test that forgot it.
"""
import datetime
import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LIFETIME_S = 300
ROLE = "drbook-instance-role"
lock = threading.Lock()
state = {"expires_in": 6 * 3600, "fail": False, "imds": "v2", "auth_token": None,
         "sso_token": "sso-access-token-for-tests", "generation": 1, "creds": None,
         "client_id": "client-1", "client_secret": "client-secret-SECRET",
         "refresh_token": "refresh-SECRET-0", "renewals": 0}
tokens = set()
counts = {"imds": 0, "container": 0, "sso": 0, "token": 0, "oidc": 0}
last = {}


def creds(kind):
    with lock:
        g = state["generation"]
        exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
            seconds=state["expires_in"])
    k = kind.upper()[:4]
    out = {"AccessKeyId": f"ASIA{k}{g:012d}", "SecretAccessKey": f"secret-{kind}-{g}",
           "Token": f"token-{kind}-{g}", "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
           "epoch_ms": int(exp.timestamp() * 1000)}
    with lock:
        if state["creds"]:
            out.update(state["creds"])
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body=b"", ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def remember(self, kind):
        with lock:
            last[kind] = {"path": self.path, "headers": sorted(k.lower() for k in self.headers),
                          "ttl": self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")}

    def body_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}") if n else {}

    def failing(self):
        with lock:
            return state["fail"]

    def do_PUT(self):
        if self.path != "/latest/api/token":
            return self.reply(404, {"error": "not found"})
        self.remember("token")
        with lock:
            mode = state["imds"]
        if mode == "v1":
            return self.reply(404, "", "text/plain")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.reply(400, "", "text/plain")
        if self.failing():
            return self.reply(500, "", "text/plain")
        tok = secrets.token_urlsafe(24)
        with lock:
            tokens.add(tok)
            counts["token"] += 1
        self.reply(200, tok, "text/plain")

    def imds_authorized(self):
        with lock:
            mode = state["imds"]
            ok = self.headers.get("X-aws-ec2-metadata-token") in tokens
        return ok or mode == "v1"

    def do_GET(self):
        u = urlparse(self.path)
        if u.path == "/_count":
            with lock:
                return self.reply(200, dict(counts))
        if u.path == "/_last":
            with lock:
                return self.reply(200, dict(last))
        base = "/latest/meta-data/iam/security-credentials/"
        if u.path.startswith(base):
            self.remember("imds")
            if not self.imds_authorized():
                return self.reply(401, "", "text/plain")
            if self.failing():
                return self.reply(500, "", "text/plain")
            role = u.path[len(base):]
            if role == "":
                return self.reply(200, ROLE, "text/plain")
            if role != ROLE:
                return self.reply(404, "", "text/plain")
            c = creds("imds")
            with lock:
                counts["imds"] += 1
            return self.reply(200, {"Code": "Success", "LastUpdated": c["Expiration"],
                                    "Type": "AWS-HMAC", "AccessKeyId": c["AccessKeyId"],
                                    "SecretAccessKey": c["SecretAccessKey"],
                                    "Token": c["Token"], "Expiration": c["Expiration"]})
        if u.path.startswith("/container/"):
            self.remember("container")
            with lock:
                want = state["auth_token"]
            if want is not None and self.headers.get("Authorization") != want:
                return self.reply(401, {"message": "bad authorization"})
            if self.failing():
                return self.reply(500, {"message": "failing on purpose"})
            c = creds("container")
            with lock:
                counts["container"] += 1
            return self.reply(200, {"AccessKeyId": c["AccessKeyId"],
                                    "SecretAccessKey": c["SecretAccessKey"], "Token": c["Token"],
                                    "Expiration": c["Expiration"],
                                    "RoleArn": "arn:aws:iam::123456789012:role/task"})
        if u.path == "/federation/credentials":
            self.remember("sso")
            q = parse_qs(u.query)
            with lock:
                want = state["sso_token"]
            if self.headers.get("x-amz-sso_bearer_token") != want:
                self.send_response(401)
                body = json.dumps({"message": "Session token not found or invalid"}).encode()
                self.send_header("x-amzn-ErrorType", "UnauthorizedException")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if not q.get("account_id") or not q.get("role_name"):
                return self.reply(400, {"message": "account_id and role_name are required"})
            if self.failing():
                return self.reply(500, {"message": "failing on purpose"})
            c = creds("sso")
            with lock:
                counts["sso"] += 1
            return self.reply(200, {"roleCredentials": {
                "accessKeyId": c["AccessKeyId"], "secretAccessKey": c["SecretAccessKey"],
                "sessionToken": c["Token"], "expiration": c["epoch_ms"]}})
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path == "/token":
            self.remember("oidc")
            req = self.body_json()
            with lock:
                ok = (req.get("grantType") == "refresh_token"
                      and req.get("clientId") == state["client_id"]
                      and req.get("clientSecret") == state["client_secret"]
                      and req.get("refreshToken") == state["refresh_token"])
                if ok:
                    state["renewals"] += 1
                    n = state["renewals"]
                    state["sso_token"] = f"sso-access-token-SECRET-{n}"
                    state["refresh_token"] = f"refresh-SECRET-{n}"
                    counts["oidc"] += 1
            if not ok:
                return self.reply(400, {"error": "invalid_grant"})
            return self.reply(200, {"accessToken": f"sso-access-token-SECRET-{n}",
                                    "expiresIn": 3600, "refreshToken": f"refresh-SECRET-{n}",
                                    "tokenType": "Bearer"})
        if self.path != "/_ctl":
            return self.reply(404, {"error": "not found"})
        cmd = self.body_json()
        with lock:
            for k in ("expires_in", "fail", "imds", "auth_token", "sso_token", "creds",
                      "refresh_token"):
                if k in cmd:
                    state[k] = cmd[k]
            if cmd.get("rotate"):
                state["generation"] += 1
        self.reply(200, {"ok": True})


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    threading.Timer(LIFETIME_S, lambda: os._exit(0)).start()
    if "--watch-stdin" in sys.argv[1:]:
        def watch():
            while sys.stdin.buffer.read(4096):
                pass
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
