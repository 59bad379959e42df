# The sandbox's AWS front door: an HTTP proxy in front of moto (and the front of each emulated
# ARC cluster endpoint) that reads every request's region and service from its SigV4
# credential scope, records it (requests.jsonl), and fails it the way a dead region does:
# connection reset, a hang until the client gives up, or a 5xx. One mechanism for every
# endpoint, so a test can see exactly which regions a run touched.
import http.client
import json
import re
import select
import socket
import socketserver
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

from .common import SandboxError, now_utc, rfc3339

MODES = ("refused", "timeout", "5xx")
_SCOPE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")
_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
        "proxy-authorization", "te", "trailers", "transfer-encoding", "upgrade"}
# signing names whose botocore model has another name
_MODEL_NAMES = {"monitoring": "cloudwatch", "email": "ses", "states": "stepfunctions",
                "execute-api": "apigateway"}
_rest_ops = {}
_rest_lock = threading.Lock()


def credential_scope(headers, query):
    """(access key, date, region, service) from the Authorization header or X-Amz-Credential
    (a presigned URL), or None for an unsigned request."""
    m = _SCOPE.search(headers.get("Authorization") or "")
    if m:
        return m.groups()
    cred = (query.get("X-Amz-Credential") or [""])[0]
    parts = cred.split("/")
    if len(parts) == 5 and parts[4] == "aws4_request":
        return tuple(parts[:4])
    return None


def _rest_table(service):
    """[(method, path regex, required query keys, literal length, operation)] from botocore's
    model of a REST service (Route 53, S3): the request's method and path name the operation."""
    with _rest_lock:
        if service in _rest_ops:
            return _rest_ops[service]
        table = []
        try:
            import botocore.session
            model = botocore.session.get_session().get_service_model(
                _MODEL_NAMES.get(service, service))
            for name in model.operation_names:
                http = model.operation_model(name).http
                uri = http.get("requestUri", "/")
                path, _, q = uri.partition("?")
                keys = [k.split("=")[0] for k in q.split("&") if k]
                rx, lit = "", 0
                for piece in re.split(r"(\{[^}]+\})", path.rstrip("/")):
                    if piece.startswith("{"):
                        rx += ".+" if piece.endswith("+}") else "[^/]+"
                    else:
                        rx += re.escape(piece)
                        lit += len(piece)
                table.append((http.get("method", "POST"), re.compile("^" + rx + "/?$"), keys,
                              lit + 10 * len(keys), name))
        except Exception:  # an unknown service: its requests are recorded without operation
            table = []
        _rest_ops[service] = table
        return table


def operation_of(service, method, path, headers, query, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.split(".")[-1]
    action = (query.get("Action") or [None])[0]
    if not action and body and "x-www-form-urlencoded" in (headers.get("Content-Type") or ""):
        try:
            action = (urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action")
                      or [None])[0]
        except ValueError:
            action = None
    if action:
        return action
    best = None
    for m, rx, keys, weight, name in _rest_table(service) if service else []:
        if m == method and rx.match(path) and all(k in query for k in keys):
            if best is None or weight > best[0]:
                best = (weight, name)
    return best[1] if best else None


class Faults:
    """What fails now: regions whose endpoints are down (the control-plane outage) and single
    endpoints (an ARC cluster endpoint), each with its mode. Shared by every front."""

    def __init__(self):
        self._lock = threading.Lock()
        self.regions = {}       # region -> mode
        self.endpoints = {}     # endpoint name -> mode
        self.hang_s = 120.0     # bound of the "timeout" mode's hang

    def set_region(self, region, mode, hang_s=None):
        self._check(mode)
        with self._lock:
            self.regions[region] = mode
            if hang_s is not None:
                self.hang_s = float(hang_s)

    def clear_region(self, region):
        """The region's endpoints answer again; True when they were failing."""
        with self._lock:
            return self.regions.pop(region, None) is not None

    def set_endpoint(self, name, mode, hang_s=None):
        self._check(mode)
        with self._lock:
            self.endpoints[name] = mode
            if hang_s is not None:
                self.hang_s = float(hang_s)

    @staticmethod
    def _check(mode):
        if mode not in MODES:
            raise SandboxError("unknown fault mode %r (%s)" % (mode, "|".join(MODES)))

    def mode_for(self, endpoint, region):
        with self._lock:
            return self.endpoints.get(endpoint) or self.regions.get(region)

    def snapshot(self):
        with self._lock:
            return {"regions": dict(self.regions), "endpoints": dict(self.endpoints),
                    "hang_s": self.hang_s}


class RequestLog:
    """Every request a front saw, one JSON object a line (no credentials, no query)."""

    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()
        self._seq = 0
        open(path, "w").close()

    def add(self, rec):
        with self._lock:
            self._seq += 1
            rec = dict(seq=self._seq, **rec)
            with open(self.path, "a") as f:
                f.write(json.dumps(rec, sort_keys=True) + "\n")
        return rec


def forward_to(port):
    """A backend that sends the request on to 127.0.0.1:port unchanged (moto checks the
    client's signature, so Host and every signed header go through as they came)."""
    def backend(method, path, headers, body, info):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers.items():
                # Expect: 100-continue was answered by this proxy already
                if k.lower() not in _HOP and k.lower() not in ("content-length", "expect"):
                    conn.putheader(k, v)
            if body or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, [(k, v) for k, v in resp.getheaders()], data
        finally:
            conn.close()
    return backend


def error_body(info, status, code, message):
    """An error in the shape the request's protocol parses (JSON, Query/REST XML, S3)."""
    if info.get("json"):
        return ([("Content-Type", "application/x-amz-json-1.1")],
                json.dumps({"__type": code, "message": message}).encode())
    from xml.sax.saxutils import escape
    if info.get("service") == "s3":
        xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s"
               "</Message><RequestId>sandbox</RequestId></Error>" % (escape(code), escape(message)))
    else:
        xml = ("<?xml version=\"1.0\"?>\n<ErrorResponse><Error><Type>%s</Type><Code>%s</Code>"
               "<Message>%s</Message></Error><RequestId>sandbox</RequestId></ErrorResponse>"
               % ("Receiver" if status >= 500 else "Sender", escape(code), escape(message)))
    return [("Content-Type", "text/xml")], xml.encode()


class _Aborted(Exception):
    """The client closed the connection before sending the whole body."""


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.resets = set()             # sockets to end with RST
        self.resets_lock = threading.Lock()

    def shutdown_request(self, request):
        # a "refused"/"timeout" fault ends with RST, not FIN: what a dead endpoint gives
        with self.resets_lock:
            reset = request in self.resets
            self.resets.discard(request)
        if reset:
            try:
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.close_request(request)
            return
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "drbook-sandbox"

    def log_message(self, fmt, *args):
        pass

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            # the client went away mid-body (killed while uploading): AWS stores nothing of
            # such a request, so it is not forwarded (moto would store the short body)
            raise _Aborted("%d of %d body bytes" % (len(data), n))
        return data

    def _handle(self):
        front = self.server.front
        t0 = time.monotonic()
        try:
            body = self._read_body()
        except _Aborted as e:
            self.close_connection = True
            u = urllib.parse.urlsplit(self.path)
            scope = credential_scope(self.headers, urllib.parse.parse_qs(u.query)) or \
                (None, None, front.region, None)
            front.log.add({"endpoint": front.name, "region": scope[2], "service": scope[3],
                           "operation": None, "method": self.command, "path": u.path,
                           "ts": rfc3339(now_utc()), "fault": "client-aborted: %s" % e,
                           "status": None, "ms": int((time.monotonic() - t0) * 1000)})
            return
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        scope = credential_scope(self.headers, query)
        region = scope[2] if scope else None
        service = scope[3] if scope else None
        info = {"endpoint": front.name, "region": region, "service": service,
                "operation": operation_of(service, self.command, url.path, self.headers,
                                          query, body),
                "method": self.command, "path": url.path,
                "json": bool(self.headers.get("X-Amz-Target")), "scope": scope}
        mode = front.faults.mode_for(front.name, front.region or region)
        status = None
        try:
            if mode == "refused":
                self._reset()
            elif mode == "timeout":
                self._hang(front)
                self._reset()
            elif mode == "5xx":
                status = 503
                hdrs, data = error_body(info, 503, "ServiceUnavailable",
                                        "Service unavailable (%s outage injected by the "
                                        "drbook sandbox)" % (front.region or region))
                self._send(status, hdrs, data)
            else:
                try:
                    status, hdrs, data = front.backend(self.command, self.path, self.headers,
                                                       body, info)
                except OSError as e:    # moto itself gone: say so rather than hang up
                    status = 502
                    hdrs, data = error_body(info, 502, "BadGateway",
                                            "the sandbox could not reach moto: %s" % e)
                self._send(status, hdrs, data)
        finally:
            rec = {k: info[k] for k in ("endpoint", "region", "service", "operation",
                                        "method", "path")}
            rec.update(ts=rfc3339(now_utc()), fault=mode, status=status,
                       ms=int((time.monotonic() - t0) * 1000))
            front.log.add(rec)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

    def _send(self, status, headers, data):
        self.send_response(status)
        length = None
        for k, v in headers:
            lk = k.lower()
            if lk in _HOP or lk in ("server", "date"):
                continue
            if lk == "content-length":
                length = v
                continue
            self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", length or "0")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    def _reset(self):
        self.close_connection = True
        with self.server.resets_lock:
            self.server.resets.add(self.connection)

    def _hang(self, front):
        """Answer nothing until the client gives up (closes), the bound passes or we stop."""
        end = time.monotonic() + front.faults.hang_s
        sock = self.connection
        while time.monotonic() < end and not front.stopping.is_set():
            r, _, _ = select.select([sock], [], [], 0.25)
            if r:
                try:
                    if not sock.recv(65536):
                        return
                except OSError:
                    return


class Front:
    """One listening endpoint: name (for faults and the log), fixed region (an ARC cluster
    endpoint lives in one region) or None (the shared AWS endpoint: the region comes from
    each request's credential scope), and the backend that answers what is not failed."""

    def __init__(self, name, port, backend, faults, reqlog, region=None):
        self.name = name
        self.port = int(port)
        self.backend = backend
        self.faults = faults
        self.log = reqlog
        self.region = region
        self.stopping = threading.Event()
        self._server = None
        self._lock = threading.Lock()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def listening(self):
        return self._server is not None

    def start(self):
        with self._lock:
            if self._server is not None:
                return
            srv = _Server(("127.0.0.1", self.port), _Handler)
            srv.front = self
            self._server = srv
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                             name="front-" + self.name, daemon=True).start()

    def close_listener(self):
        """Connections to the port are refused from now on (a dead endpoint, not a slow one)."""
        with self._lock:
            srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()

    def stop(self):
        self.stopping.set()
        self.close_listener()
