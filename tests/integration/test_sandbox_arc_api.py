#!/usr/bin/env python3
# The sandbox's ARC cluster emulator on its own (no moto, no PostgreSQL: it runs in parallel
# with other tests): botocore's route53-recovery-cluster client gets, updates and lists
# routing controls through any of the five endpoints; bad signatures, keys, scopes, targets
# and arguments get the error shapes of AWS's model; a failed endpoint refuses, hangs or
# answers 503; every request is recorded with its region, service and operation.
import json
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox"))

import boto3  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError  # noqa: E402
from sandbox_lib.arc import REGIONS, ArcCluster  # noqa: E402
from sandbox_lib.common import free_port  # noqa: E402
from sandbox_lib.faultproxy import Faults, Front, RequestLog  # noqa: E402
from sandbox_lib.testkit import Checks  # noqa: E402

AKID, SECRET = "AKIASANDBOXTEST00001", "s3cr3t/sandbox+key0000000000000000000000"


def error_of(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"], e
    return None, None, None


def raw(url, region, target, body, service="route53-recovery-cluster", secret=SECRET,
        sign=True):
    """One hand-made request (botocore's client cannot send a wrong target or scope)."""
    req = AWSRequest(method="POST", url=url + "/", data=json.dumps(body).encode(), headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target})
    if sign:
        SigV4Auth(Credentials(AKID, secret), service, region).add_auth(req)
    prepared = req.prepare()
    r = urllib.request.Request(prepared.url, data=prepared.body, method="POST",
                               headers=dict(prepared.headers.items()))
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main():
    c = Checks()
    tmp = tempfile.mkdtemp(prefix="drb-arc-")
    logs = []
    arc = ArcCluster("123456789012", {AKID: SECRET}.get, logs.append)
    us, eu = arc.add_control("cell-us-east-1"), arc.add_control("cell-eu-west-1")
    faults, reqlog = Faults(), RequestLog(os.path.join(tmp, "requests.jsonl"))
    fronts = [Front("arc-%d" % i, free_port(), arc.backend(r), faults, reqlog, region=r)
              for i, r in enumerate(REGIONS)]
    try:
        for f in fronts:
            f.start()

        def client(i, region=None, secret=SECRET, key=AKID, **cfg):
            return boto3.client("route53-recovery-cluster", region_name=region or REGIONS[i],
                                endpoint_url=fronts[i].url, aws_access_key_id=key,
                                aws_secret_access_key=secret,
                                config=Config(retries={"max_attempts": 1}, **cfg))

        # --- the API through botocore, state shared by the five endpoints
        r = client(0).get_routing_control_state(RoutingControlArn=us)
        c.eq((r["RoutingControlState"], r["RoutingControlName"]), ("On", "cell-us-east-1"),
             "GetRoutingControlState: On, with its name")
        client(1).update_routing_control_state(RoutingControlArn=us, RoutingControlState="Off")
        c.eq(client(2).get_routing_control_state(RoutingControlArn=us)["RoutingControlState"],
             "Off", "an update through endpoint 1 is seen through endpoint 2 (one cluster)")
        client(3).update_routing_control_states(UpdateRoutingControlStateEntries=[
            {"RoutingControlArn": us, "RoutingControlState": "On"},
            {"RoutingControlArn": eu, "RoutingControlState": "Off"}])
        c.eq((arc.state(us), arc.state(eu)), ("On", "Off"), "UpdateRoutingControlStates")
        lst = client(4).list_routing_controls()["RoutingControls"]
        c.eq([(x["RoutingControlName"], x["RoutingControlState"], x["ControlPanelArn"])
              for x in lst], [("cell-us-east-1", "On", arc.panel_arn),
                              ("cell-eu-west-1", "Off", arc.panel_arn)],
             "ListRoutingControls lists both with their states and control panel")
        p1 = client(0).list_routing_controls(ControlPanelArn=arc.panel_arn, MaxResults=1)
        p2 = client(0).list_routing_controls(MaxResults=1, NextToken=p1["NextToken"])
        c.ok(len(p1["RoutingControls"]) == 1 and "NextToken" not in p2 and
             p2["RoutingControls"][0]["RoutingControlArn"] == eu, "ListRoutingControls pages")
        pages = client(0).get_paginator("list_routing_controls").paginate(
            PaginationConfig={"PageSize": 1})
        c.eq(sum(len(p["RoutingControls"]) for p in pages), 2, "botocore's paginator")

        # --- refusals, in the model's shapes
        st, code, e = error_of(lambda: client(0).get_routing_control_state(
            RoutingControlArn=us + "x"))
        c.ok((st, code) == (404, "ResourceNotFoundException") and
             e.response.get("resourceId") == us + "x" and
             e.response.get("resourceType") == "RoutingControl",
             "unknown ARN: 404 ResourceNotFoundException with resourceId and resourceType "
             "(%s %s)" % (st, code))
        st, code, e = error_of(lambda: client(0).update_routing_control_state(
            RoutingControlArn=us, RoutingControlState="Maybe"))
        c.ok((st, code) == (400, "ValidationException") and
             e.response.get("reason") == "fieldValidationFailed" and
             e.response.get("fields", [{}])[0].get("name") == "RoutingControlState",
             "bad state: 400 ValidationException fieldValidationFailed naming the field")
        c.eq(arc.state(us), "On", "a refused update changes nothing")
        st, code, _ = error_of(lambda: client(0).update_routing_control_states(
            UpdateRoutingControlStateEntries=[
                {"RoutingControlArn": eu, "RoutingControlState": "On"},
                {"RoutingControlArn": us + "nope", "RoutingControlState": "Off"}]))
        c.ok(code == "ResourceNotFoundException" and arc.state(eu) == "Off",
             "a batch with one unknown ARN changes nothing")
        st, code, _ = error_of(lambda: client(0, secret=SECRET[:-1] + "X")
                               .get_routing_control_state(RoutingControlArn=us))
        c.eq((st, code), (403, "InvalidSignatureException"), "wrong secret")
        st, code, _ = error_of(lambda: client(0, key="AKIAUNKNOWN000000000")
                               .get_routing_control_state(RoutingControlArn=us))
        c.eq((st, code), (403, "UnrecognizedClientException"), "unknown access key")
        st, code, e = error_of(lambda: client(2, region="us-west-2")
                               .get_routing_control_state(RoutingControlArn=us))
        c.ok((st, code) == (403, "InvalidSignatureException") and "region" in str(e),
             "signed for another region than the endpoint's: refused")
        st, body = raw(fronts[0].url, "us-east-1", "ToggleCustomerAPI.GetRoutingControlState",
                       {"RoutingControlArn": us}, service="route53")
        c.ok(st == 403 and body.get("__type") == "InvalidSignatureException" and
             "route53-recovery-cluster" in body.get("message", ""),
             "signed for service route53: InvalidSignatureException naming the right service")
        st, body = raw(fronts[0].url, "us-east-1", "ToggleCustomerAPI.GetRoutingControlState",
                       {"RoutingControlArn": us}, sign=False)
        c.eq((st, body.get("__type")), (403, "MissingAuthenticationTokenException"),
             "unsigned request")
        st, body = raw(fronts[0].url, "us-east-1", "ToggleCustomerAPI.DeleteEverything", {})
        c.ok(st == 400 and body.get("__type") == "ValidationException" and
             body.get("reason") == "unknownOperation", "unknown target: ValidationException "
             "reason unknownOperation (%s %s)" % (st, body))
        st, body = raw(fronts[0].url, "us-east-1", "Other.GetRoutingControlState",
                       {"RoutingControlArn": us})
        c.eq((st, body.get("reason")), (400, "unknownOperation"), "wrong target prefix")
        st, body = raw(fronts[0].url, "us-east-1", "ToggleCustomerAPI.GetRoutingControlState",
                       {"RoutingControlArn": us}, secret="wrong")
        c.eq((st, body.get("__type")), (403, "InvalidSignatureException"),
             "raw request with a wrong secret")

        # --- a failed endpoint; the client moves on to the next one
        faults.set_endpoint("arc-0", "refused")
        fronts[0].close_listener()
        with socket.socket() as s:
            refused = s.connect_ex(("127.0.0.1", fronts[0].port)) != 0
        c.ok(refused, "refused: the endpoint's port refuses connections")
        try:
            client(0).get_routing_control_state(RoutingControlArn=us)
            c.ok(False, "refused endpoint answered")
        except EndpointConnectionError:
            c.ok(True, "refused: botocore gets EndpointConnectionError")
        faults.set_endpoint("arc-1", "5xx")
        st, code, _ = error_of(lambda: client(1).get_routing_control_state(
            RoutingControlArn=us))
        c.eq((st, code), (503, "ServiceUnavailable"), "5xx: HTTP 503")
        faults.set_endpoint("arc-2", "timeout", hang_s=30)
        t0 = time.monotonic()
        try:
            client(2, read_timeout=1).get_routing_control_state(RoutingControlArn=us)
            c.ok(False, "hanging endpoint answered")
        except ReadTimeoutError:
            c.ok(time.monotonic() - t0 < 10, "timeout: no answer until the client gives up")
        c.eq(client(3).get_routing_control_state(RoutingControlArn=us)["RoutingControlState"],
             "On", "the other endpoints still answer")

        # --- the request log
        time.sleep(0.5)
        recs = [json.loads(x) for x in open(reqlog.path)]
        ops = {(r["endpoint"], r["region"], r["service"], r["operation"], r["fault"])
               for r in recs}
        c.ok(("arc-1", "us-west-2", "route53-recovery-cluster", "UpdateRoutingControlState",
              None) in ops, "log: the update through endpoint 1 (us-west-2)")
        c.ok(("arc-4", "ap-southeast-2", "route53-recovery-cluster", "ListRoutingControls",
              None) in ops, "log: the list through endpoint 4")
        c.ok(("arc-1", "us-west-2", "route53-recovery-cluster", "GetRoutingControlState",
              "5xx") in ops and ("arc-2", "eu-west-1", "route53-recovery-cluster",
                                 "GetRoutingControlState", "timeout") in ops,
             "log: the faults, per endpoint")
        c.ok(all(r["seq"] == i + 1 for i, r in enumerate(recs)), "log: seq counts from 1")
        c.ok(not any(AKID in x or SECRET in x for x in open(reqlog.path)),
             "log: no key or secret")
    finally:
        for f in fronts:
            f.stop()
    busy = [f.port for f in fronts if socket.socket().connect_ex(("127.0.0.1", f.port)) == 0]
    c.eq(busy, [], "every endpoint stopped")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
