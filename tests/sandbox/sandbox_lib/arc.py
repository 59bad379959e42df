# The sandbox's Route 53 Application Recovery Controller cluster: the data-plane API of
# botocore's route53-recovery-cluster model (JSON 1.0, X-Amz-Target ToggleCustomerAPI.*,
# SigV4 service route53-recovery-cluster), served on five endpoints like a real cluster. A
# routing control's state is what a Route 53 RECOVERY_CONTROL health check reports (On =
# healthy), so flipping one flips what the sandbox's DNS answers (see glue and dns).
import datetime
import hmac
import json
import re
import secrets
import threading
import uuid

from .faultproxy import credential_scope

SERVICE = "route53-recovery-cluster"
TARGET_PREFIX = "ToggleCustomerAPI."
# the five regions of a real cluster's endpoints (DescribeCluster lists one per region)
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2"]
_ARN = re.compile(r"^[A-Za-z0-9:./_-]{1,255}$")
STATES = ("On", "Off")
MAX_SKEW = datetime.timedelta(minutes=15)


class ArcError(Exception):
    """An error answer: HTTP status, the model's exception name, and its members."""

    def __init__(self, status, code, message, **members):
        super().__init__(message)
        self.status, self.code, self.message, self.members = status, code, message, members


def _validation(message, reason="fieldValidationFailed", field=None):
    extra = {"reason": reason}
    if field:
        extra["fields"] = [{"name": field, "message": message}]
    return ArcError(400, "ValidationException", message, **extra)


def _bad_signature(message):
    return ArcError(403, "InvalidSignatureException", message)


class ArcCluster:
    def __init__(self, account, secret_of, log):
        """secret_of(access_key_id) -> the secret or None (the IAM users' keys in moto)."""
        self.account = account
        self.secret_of = secret_of
        self.log = log
        self.lock = threading.Lock()
        self.cluster_arn = "arn:aws:route53-recovery-control::%s:cluster/%s" % (
            account, uuid.uuid4())
        self.panel_name = "drbook-sandbox"
        self.panel_arn = "arn:aws:route53-recovery-control::%s:controlpanel/%s" % (
            account, secrets.token_hex(16))
        self.controls = {}      # routing control ARN -> {"name", "state"}, insertion ordered
        self.history = []       # (time, arn, old, new): every state change, for status

    def add_control(self, name, state="On"):
        arn = "%s/routingcontrol/%s" % (self.panel_arn, secrets.token_hex(8))
        with self.lock:
            self.controls[arn] = {"name": name, "state": state}
        return arn

    def state(self, arn):
        with self.lock:
            c = self.controls.get(arn)
            return c["state"] if c else None

    def status(self):
        with self.lock:
            return {"cluster_arn": self.cluster_arn, "control_panel_arn": self.panel_arn,
                    "routing_controls": {a: dict(c) for a, c in self.controls.items()},
                    "history": [list(h) for h in self.history]}

    # ------------------------------------------------------------------ the wire
    def backend(self, region):
        """The answering function of the cluster endpoint in `region` (a faultproxy backend)."""
        def answer(method, path, headers, body, info):
            rid = str(uuid.uuid4())
            try:
                out = self._handle(region, method, path, headers, body, info)
                status, doc = 200, out
            except ArcError as e:
                status = e.status
                doc = dict(e.members, __type=e.code, message=e.message)
            return status, [("Content-Type", "application/x-amz-json-1.0"),
                            ("x-amzn-RequestId", rid)], json.dumps(doc).encode()
        return answer

    def _handle(self, region, method, path, headers, body, info):
        self._authenticate(region, method, path, headers, body, info)
        target = headers.get("X-Amz-Target") or ""
        op = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else None
        fn = {"GetRoutingControlState": self._get, "UpdateRoutingControlState": self._update,
              "UpdateRoutingControlStates": self._update_many,
              "ListRoutingControls": self._list}.get(op) if method == "POST" else None
        if fn is None:
            raise _validation("Unknown operation %r" % (target or method + " " + path),
                              reason="unknownOperation")
        try:
            req = json.loads(body.decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError):
            raise _validation("Could not parse the request body as JSON", reason="cannotParse")
        if not isinstance(req, dict):
            raise _validation("The request body must be a JSON object", reason="cannotParse")
        return fn(req)

    def _authenticate(self, region, method, path, headers, body, info):
        """SigV4 as AWS checks it: a known key, the right service and region in the scope,
        a fresh date, and the signature recomputed with the key's secret."""
        auth = headers.get("Authorization") or ""
        scope = info.get("scope") or credential_scope(headers, {})
        if not auth.startswith("AWS4-HMAC-SHA256 ") or not scope:
            raise ArcError(403, "MissingAuthenticationTokenException",
                           "Missing Authentication Token")
        akid, date, sregion, service = scope
        secret = self.secret_of(akid)
        if secret is None:
            raise ArcError(403, "UnrecognizedClientException",
                           "The security token included in the request is invalid.")
        if service != SERVICE:
            raise _bad_signature("Credential should be scoped to correct service: '%s'. "
                                 % SERVICE)
        if sregion != region:
            # a cluster endpoint answers requests signed for its own region only
            raise _bad_signature("Credential should be scoped to a valid region. ")
        stamp = headers.get("X-Amz-Date") or ""
        try:
            ts = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            raise _bad_signature("Authorization header requires existence of either a "
                                 "'X-Amz-Date' or a 'Date' header.")
        now = datetime.datetime.now(datetime.timezone.utc)
        if abs(now - ts) > MAX_SKEW or stamp[:8] != date:
            raise _bad_signature("Signature expired: %s is now earlier than %s" % (
                stamp, (now - MAX_SKEW).strftime("%Y%m%dT%H%M%SZ")))
        m = re.search(r"SignedHeaders=([^,\s]+)", auth)
        s = re.search(r"Signature=([0-9a-f]+)", auth)
        if not m or not s:
            raise _bad_signature("Authorization header is malformed.")
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        signed = m.group(1).split(";")
        hdrs = {k: v for k, v in headers.items() if k.lower() in signed}
        req = AWSRequest(method=method, url="http://%s%s" % (headers.get("Host", ""), path),
                         data=body, headers=hdrs)
        req.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(akid, secret), service, sregion)
        want = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
        if not hmac.compare_digest(want, s.group(1)):
            raise _bad_signature("The request signature we calculated does not match the "
                                 "signature you provided. Check your AWS Secret Access Key and "
                                 "signing method. Consult the service documentation for "
                                 "details.")

    # ------------------------------------------------------------------ operations
    @staticmethod
    def _arn(req, field, container=None):
        v = (container if container is not None else req).get(field)
        if v is None:
            raise _validation("%s is required" % field, field=field)
        if not isinstance(v, str) or not _ARN.match(v):
            raise _validation("%s must match ^[A-Za-z0-9:.\\/_-]*$ and be 1 to 255 "
                              "characters" % field, field=field)
        return v

    def _control(self, arn):
        c = self.controls.get(arn)
        if c is None:
            raise ArcError(404, "ResourceNotFoundException",
                           "Routing control %s not found" % arn, resourceId=arn,
                           resourceType="RoutingControl")
        return c

    @staticmethod
    def _state(v, field="RoutingControlState"):
        if v not in STATES:
            raise _validation("%s must be one of On, Off" % field, field=field)
        return v

    @staticmethod
    def _overrides(req):
        v = req.get("SafetyRulesToOverride", [])
        if not isinstance(v, list) or not all(isinstance(a, str) and _ARN.match(a)
                                               for a in v):
            raise _validation("SafetyRulesToOverride must be a list of ARNs",
                              field="SafetyRulesToOverride")

    def _get(self, req):
        arn = self._arn(req, "RoutingControlArn")
        with self.lock:
            c = self._control(arn)
            return {"RoutingControlArn": arn, "RoutingControlState": c["state"],
                    "RoutingControlName": c["name"]}

    def _set(self, pairs):
        with self.lock:
            for arn, _ in pairs:
                self._control(arn)      # all or nothing: check every ARN first
            for arn, state in pairs:
                old = self.controls[arn]["state"]
                self.controls[arn]["state"] = state
                if old != state:
                    self.history.append((datetime.datetime.now(datetime.timezone.utc)
                                         .isoformat(), arn, old, state))
                    self.log("ARC routing control %s: %s -> %s" % (
                        self.controls[arn]["name"], old, state))
        return {}

    def _update(self, req):
        arn = self._arn(req, "RoutingControlArn")
        state = self._state(req.get("RoutingControlState"))
        self._overrides(req)
        return self._set([(arn, state)])

    def _update_many(self, req):
        entries = req.get("UpdateRoutingControlStateEntries")
        if not isinstance(entries, list):
            raise _validation("UpdateRoutingControlStateEntries is required",
                              field="UpdateRoutingControlStateEntries")
        pairs = []
        for e in entries:
            if not isinstance(e, dict):
                raise _validation("each entry must be an object",
                                  field="UpdateRoutingControlStateEntries")
            pairs.append((self._arn(req, "RoutingControlArn", e), self._state(
                e.get("RoutingControlState"))))
        self._overrides(req)
        return self._set(pairs)

    def _list(self, req):
        panel = req.get("ControlPanelArn")
        if panel is not None:
            self._arn(req, "ControlPanelArn")
            if panel != self.panel_arn:
                raise ArcError(404, "ResourceNotFoundException",
                               "Control panel %s not found" % panel, resourceId=panel,
                               resourceType="ControlPanel")
        n = req.get("MaxResults", 500)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise _validation("MaxResults must be an integer >= 1", field="MaxResults")
        tok = req.get("NextToken")
        start = 0
        if tok is not None:
            if not isinstance(tok, str) or not tok.isdigit():
                raise _validation("NextToken is not valid", field="NextToken")
            start = int(tok)
        with self.lock:
            items = [{"ControlPanelArn": self.panel_arn, "ControlPanelName": self.panel_name,
                      "RoutingControlArn": a, "RoutingControlName": c["name"],
                      "RoutingControlState": c["state"], "Owner": self.account}
                     for a, c in self.controls.items()]
        out = {"RoutingControls": items[start:start + n]}
        if start + n < len(items):
            out["NextToken"] = str(start + n)
        return out
