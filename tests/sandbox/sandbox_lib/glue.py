# Glue between moto's emulated control plane and the real data plane: wraps moto response and
# backend methods (in the launcher process) so RDS calls act on the real PostgreSQL servers,
# ECS services converge after a delay, Route 53 changes go PENDING -> INSYNC and health checks
# reflect injected failures. It also carries out the failure injections.
import datetime
import os
import random
import shutil
import threading
import time
import traceback

from .common import (SandboxError, chown_pg_tree, free_port, now_utc, parse_rfc3339, rfc3339,
                     write_json_atomic)
from .pgnodes import Node, register_server, switch_and_archive, wait_streaming

US, EU, AP = "us-east-1", "eu-west-1", "ap-southeast-1"
PAIR_ID = "prod-db"          # the Multi-AZ instance in us-east-1 (nodes prod-db-a / prod-db-b)
REPLICA_ID = "prod-db-eu"    # the cross-region read replica in eu-west-1
AP_REPLICA_ID = "prod-db-ap"  # the cold standby's cross-region read replica in ap-southeast-1
CLUSTERS = {US: "prod-us", EU: "prod-eu", AP: "prod-ap"}
CHECKER_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-1"]


def _param(resp, *names):
    """moto keeps request parameters under their wire names; accept snake_case too."""
    params = getattr(resp, "params", None) or {}
    for n in names:
        if n in params and params[n] not in (None, ""):
            return params[n]
    for n in names:
        v = resp._get_param(n)
        if v not in (None, ""):
            return v
    return None


def _truthy(v):
    return v is True or str(v).lower() in ("true", "1", "yes")


def _pg_time(ts):
    """recovery_target_time literal: explicit UTC offset, microseconds."""
    return ts.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def _checkpoint_save(node, ckpt):
    """region-state save of a server: its data directory copied to ckpt while it is stopped."""
    node.stop("fast")
    if ckpt.exists():
        shutil.rmtree(ckpt)
    shutil.copytree(node.datadir, ckpt, symlinks=True)
    node.start()


def _checkpoint_restore(node, ckpt):
    """region-state restore of a server: its data directory put back from ckpt."""
    node.stop("immediate")
    shutil.rmtree(node.datadir)
    shutil.copytree(ckpt, node.datadir, symlinks=True)
    chown_pg_tree(node.datadir)
    os.chmod(node.datadir, 0o700)
    for n in ("postmaster.pid", "postmaster.opts"):
        if (node.datadir / n).exists():
            (node.datadir / n).unlink()
    node.start()


class Glue:
    def __init__(self, paths, password, log, start_delay=1.5, replace_delay=10.0,
                 change_delay=1.0):
        self.paths = paths
        self.password = password
        self.log = log
        self.lock = threading.RLock()       # ECS models + glue state, shared with request threads
        self.start_delay = start_delay      # new tasks reach RUNNING this long after a change
        self.replace_delay = replace_delay  # a stopped task is replaced after this long
        self.change_delay = change_delay    # a Route 53 change stays PENDING this long
        self.account = "123456789012"
        self.nodes = {}                     # name -> Node (every server the launcher runs)
        self.writer = None                  # name of the node behind the writer endpoint
        self.standby = None                 # name of the sync standby (None while rebuilding)
        self.replica = None                 # name of the eu-west-1 replica node
        self.ap_replica = None              # name of the ap-southeast-1 replica node
        self.live = False                   # the servers are up: RDS calls act on them
        self.proxy = None
        self.faults = None                  # faultproxy.Faults shared by every AWS front
        self.on_faults = None               # called after a fault changes (ARC endpoints)
        self.arc = None                     # arc.ArcCluster (routing controls)
        self.stores = None                  # stores.Stores (S3 replication, ElastiCache)
        self.down_regions = set()
        self.health_checks = {}             # health check id -> region it watches
        self.changes = {}                   # Route 53 change id -> monotonic submit time
        self.snapshot_times = {}            # snapshot id -> datetime it stands for
        self.base_backup_time = None
        self.ecs_due = {}                   # (region, cluster, service) -> monotonic due time
        self.ecs_force = {}                 # same key -> task ARNs a forced deployment replaces
        self.restores = {}                  # instance id -> node name
        self.staging_app_security_group = None  # the group the staging application runs in
        self.errors = []                    # background failures, shown by `status`
        self._stop = threading.Event()
        self._threads = []
        self._spawned = []          # _spawn's threads, joined by stop

    # ------------------------------------------------------------------ installation
    def install(self):
        from moto.moto_api import state_manager
        from moto.rds.models import DBInstance
        from moto.rds.responses import RDSResponse
        from moto.route53.responses import Route53
        from moto.ecs.models import EC2ContainerServiceBackend

        # tasks keep the state the glue gives them (moto would walk them to STOPPED on read)
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**12})
        self._fix_moto_signature_of_bodyless_requests()
        self._fix_moto_auth_error_shapes()
        DBInstance.address = property(lambda _self: "127.0.0.1")

        def wrap_resp(cls, name, handler):
            orig = getattr(cls, name)

            def wrapper(resp):
                return handler(resp, lambda: orig(resp))
            wrapper.__name__ = name
            setattr(cls, name, wrapper)

        wrap_resp(RDSResponse, "promote_read_replica", self._rds_promote)
        wrap_resp(RDSResponse, "reboot_db_instance", self._rds_reboot)
        wrap_resp(RDSResponse, "restore_db_instance_to_point_in_time", self._rds_restore_pitr)
        wrap_resp(RDSResponse, "restore_db_instance_from_db_snapshot", self._rds_restore_snap)
        wrap_resp(RDSResponse, "create_db_snapshot", self._rds_create_snapshot)
        wrap_resp(RDSResponse, "delete_db_instance", self._rds_delete)
        wrap_resp(RDSResponse, "create_db_instance_read_replica", self._rds_create_replica)
        wrap_resp(RDSResponse, "describe_events", self._rds_describe_events)
        wrap_resp(Route53, "change_resource_record_sets", self._r53_change)
        wrap_resp(Route53, "get_change", self._r53_get_change)
        wrap_resp(Route53, "get_health_check_status", self._r53_health_status)
        wrap_resp(Route53, "create_health_check", self._r53_create_health_check)
        self._fix_moto_recovery_control_health_checks()

        glue = self
        B = EC2ContainerServiceBackend
        orig_update, orig_stop = B.update_service, B.stop_task
        orig_list, orig_create = B.list_tasks, B.create_service
        orig_describe = B.describe_services

        def update_service(backend, props):
            props = dict(props)
            key = (backend.region_name, props.get("cluster", "default").split("/")[-1],
                   props.get("service", "").split("/")[-1])
            with glue.lock:
                svc = orig_update(backend, dict(props))
                if _truthy(props.get("force_new_deployment")):
                    glue.ecs_force[key] = set(t.task_arn for t in glue._service_tasks(
                        backend, svc))
                glue._schedule(key, glue.start_delay, earliest=True)
                glue._recount(backend, svc)
                return svc

        def stop_task(backend, cluster_str, task_str, reason):
            with glue.lock:
                task = orig_stop(backend, cluster_str, task_str, reason)
                if task.group.startswith("service:"):
                    key = (backend.region_name, task.cluster_arn.split("/")[-1],
                           task.group[len("service:"):])
                    glue._schedule(key, glue.replace_delay, earliest=False)
                    svc = glue._find_service(backend, key[1], key[2])
                    if svc:
                        glue._recount(backend, svc)
                return task

        def list_tasks(backend, cluster_str=None, container_instance=None, family=None,
                       started_by=None, service_name=None, desiredStatus=None):
            with glue.lock:
                # the real API lists RUNNING tasks unless asked otherwise, per service
                tasks = orig_list(backend, cluster_str, container_instance, family, started_by,
                                  None, desiredStatus or "RUNNING")
                if service_name:
                    want = "service:" + service_name.split("/")[-1]
                    tasks = [t for t in tasks if t.group == want]
                return tasks

        def create_service(backend, cluster_str, service_name, desired_count, *a, **kw):
            with glue.lock:
                svc = orig_create(backend, cluster_str, service_name, desired_count, *a, **kw)
                glue._schedule((backend.region_name, svc.cluster_name, svc.name),
                               glue.start_delay, earliest=True)
                glue._recount(backend, svc)
                return svc

        def describe_services(backend, *a, **kw):
            with glue.lock:
                return orig_describe(backend, *a, **kw)

        B.update_service, B.stop_task, B.list_tasks = update_service, stop_task, list_tasks
        B.create_service, B.describe_services = create_service, describe_services

        t = threading.Thread(target=self._ecs_loop, name="ecs-scheduler", daemon=True)
        t.start()
        self._threads.append(t)

    @staticmethod
    def _fix_moto_signature_of_bodyless_requests():
        """moto 5 recomputes a SigV4 signature over `body or data`; for REST services such
        as Route 53 `data` holds the request headers, so every signed GET/DELETE (empty
        body) fails with SignatureDoesNotMatch. Sign the empty body as the client did."""
        from botocore.awsrequest import AWSRequest
        from moto.iam.access_control import IAMRequestBase

        orig = IAMRequestBase._create_aws_request

        def create_aws_request(req):
            if req._body or req._method not in ("GET", "HEAD", "DELETE"):
                return orig(req)
            signed = IAMRequestBase._get_string_between(
                "SignedHeaders=", ",", req._headers["Authorization"]).split(";")
            headers = IAMRequestBase._create_headers_for_aws_request(signed, req._headers)
            request = AWSRequest(method=req._method, url=req._path, data=b"",
                                 headers=headers)
            request.context["timestamp"] = headers["X-Amz-Date"]
            return request
        IAMRequestBase._create_aws_request = create_aws_request

    @staticmethod
    def _fix_moto_auth_error_shapes():
        """moto answers every authentication failure in the Query-XML shape. Real AWS answers
        JSON services (ECS) with {"__type": "InvalidSignatureException", ...} and Route 53
        with <ErrorResponse><Error>...; clients parse those, so the sandbox does too."""
        from moto.core.exceptions import JsonRESTError, _RESTError
        from moto.core.responses import BaseResponse
        from moto.route53.responses import Route53
        from werkzeug.exceptions import HTTPException
        from xml.sax.saxutils import escape

        json_codes = {"SignatureDoesNotMatch": "InvalidSignatureException",
                      "InvalidClientTokenId": "UnrecognizedClientException",
                      "AccessDenied": "AccessDeniedException"}
        orig = BaseResponse._authenticate_and_authorize_normal_action

        def auth(resp, resource="*"):
            try:
                return orig(resp, resource)
            except HTTPException as e:
                etype, msg = getattr(e, "error_type", None), getattr(e, "message", "")
                if not etype:
                    raise
                if resp.headers.get("X-Amz-Target"):
                    err = JsonRESTError(json_codes.get(etype, etype), msg)
                    err.code = 400
                    raise err from e
                if isinstance(resp, Route53):
                    err = _RESTError(etype, msg)
                    err.code = e.code
                    err.description = (
                        '<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.'
                        'amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>%s'
                        '</Code><Message>%s</Message></Error><RequestId>sandbox</RequestId>'
                        '</ErrorResponse>' % (escape(etype), escape(msg)))
                    raise err from e
                raise
        BaseResponse._authenticate_and_authorize_normal_action = auth

    @staticmethod
    def _fix_moto_recovery_control_health_checks():
        """moto drops a RECOVERY_CONTROL health check's RoutingControlArn and reports an IP
        check's fields for it; keep the ARN (set by _r53_create_health_check) and answer the
        shape Route 53 gives."""
        from moto.route53.models import HealthCheck
        orig = HealthCheck.health_check_config.fget

        def config(hc):
            cfg = orig(hc)
            if hc.type_ == "RECOVERY_CONTROL":
                for k in ("IPAddress", "Port", "RequestInterval", "FailureThreshold",
                          "MeasureLatency", "ResourcePath", "FullyQualifiedDomainName",
                          "SearchString", "EnableSNI"):
                    cfg.pop(k, None)
                cfg["RoutingControlArn"] = getattr(hc, "routing_control_arn", None)
            return cfg
        HealthCheck.health_check_config = property(config)

    def stop(self):
        """Stops the loops, and waits for the work handed to threads (a deleted instance's
        server stopping): `sandbox down` then finds its port free."""
        self._stop.set()
        for t in self._threads:
            t.join(5)
        end = time.monotonic() + 60
        for t in self._spawned:
            t.join(max(0.0, end - time.monotonic()))

    def _fail(self, what, exc):
        msg = "%s: %s" % (what, exc)
        self.errors.append({"at": rfc3339(now_utc()), "error": msg})
        self.log(msg + "\n" + traceback.format_exc())

    def _spawn(self, name, fn, *args):
        t = threading.Thread(target=fn, args=args, name=name, daemon=True)
        t.start()
        with self.lock:
            self._spawned = [x for x in self._spawned if x.is_alive()] + [t]

    # ------------------------------------------------------------------ RDS
    def _rds_backend(self, region):
        from moto.rds.models import rds_backends
        return rds_backends[self.account][region]

    def _rds_error(self, code, msg):
        from moto.rds.exceptions import RDSClientError
        return RDSClientError(code, msg)

    def _writer_node(self):
        return self.nodes.get(self.writer)

    def _replica_node(self, region, ident):
        """The name of the real server behind a cross-region read replica, or None."""
        if region == EU and ident == REPLICA_ID:
            return self.replica
        if region == AP and ident == AP_REPLICA_ID:
            return self.ap_replica
        return None

    def _db_of(self, ref):
        """An RDS instance model by id or ARN (an ARN names its region; an id is us-east-1's)."""
        ref = str(ref or "")
        region, ident = US, ref
        if ref.startswith("arn:"):
            parts = ref.split(":")
            region, ident = parts[3], parts[-1]
        try:
            return self._rds_backend(region).databases.get(ident)
        except KeyError:
            return None

    def _rds_promote(self, resp, call):
        ident = _param(resp, "DBInstanceIdentifier", "db_instance_identifier")
        if resp.region == EU and ident in self.restores:
            return self._promote_made_replica(resp, call, ident)
        name = self._replica_node(resp.region, ident)
        if resp.region == US and ident == PAIR_ID and self.live and self.writer:
            name = self.writer          # a read replica only after a fail-back rebuilt it
        if not name:
            return call()
        db = self._rds_backend(resp.region).describe_db_instances(ident)[0]
        if not db.is_replica:
            raise self._rds_error("InvalidDBInstanceState",
                                  "DB Instance %s is not a read replica." % ident)
        if db.status != "available":
            raise self._rds_error("InvalidDBInstanceState",
                                  "DB Instance %s is %s." % (ident, db.status))
        source = db.source_db_instance_identifier
        result = call()
        db.is_replica = True          # still a replica (and reported so) until promoted
        db.status = "modifying"
        self._spawn("promote-replica", self._do_promote, db, source, name)
        return result

    def _promote_made_replica(self, resp, call, ident):
        """A read replica made by create_db_instance_read_replica (a shadow drill's copy of
        prod-db-eu) is promoted like the seed's own."""
        db = self._rds_backend(EU).describe_db_instances(ident)[0]
        if not db.is_replica:
            raise self._rds_error("InvalidDBInstanceState",
                                  "DB Instance %s is not a read replica." % ident)
        if db.status != "available":
            raise self._rds_error("InvalidDBInstanceState",
                                  "DB Instance %s is %s." % (ident, db.status))
        source = db.source_db_instance_identifier
        result = call()
        db.is_replica = True
        db.status = "modifying"
        self._spawn("promote-" + ident, self._do_promote, db, source, self.restores[ident])
        return result

    def _rds_read_replica(self, resp, call):
        """A new read replica of prod-db in eu-west-1 is a real streaming standby of the
        writer (its own server), deleted with the instance."""
        target = _param(resp, "DBInstanceIdentifier", "db_instance_identifier")
        source = str(_param(resp, "SourceDBInstanceIdentifier",
                            "source_db_instance_identifier") or "")
        if not (resp.region == EU and source.split(":")[-1] == PAIR_ID and self.writer):
            return call()
        writer = self._writer_node()
        if writer is None or not writer.running() or US in self.down_regions:
            raise self._rds_error("InvalidDBInstanceState", "%s is not available" % PAIR_ID)
        port = free_port()
        result = call()
        db = self._rds_backend(EU).databases[target]
        db.port = port
        db.status = "creating"
        db.multi_az = False
        name = "replica-" + target
        self.restores[target] = name
        self._spawn(name, self._do_read_replica, db, name, port, writer.port)
        return result

    def _do_read_replica(self, db, name, port, upstream):
        node = Node(self.paths, name, port, self.password)
        try:
            node.make_standby(upstream, archive=False)
            register_server(self.paths, node)
            node.start(timeout=90)
            self.nodes[name] = node
            db.status = "available"
            self.log("read replica %s of %s on port %d" % (db.db_instance_identifier,
                                                           PAIR_ID, port))
        except Exception as e:
            db.status = "failed"
            self._fail("read replica %s" % db.db_instance_identifier, e)

    def _do_promote(self, db, source, name):
        node = self.nodes[name]
        try:
            time.sleep(0.5)           # a visible "modifying" phase, as on RDS
            node.promote()
            db.is_replica = False
            db.source_db_instance_identifier = None
            primary = self._db_of(source) if source else None
            if primary is None:
                primary = self._rds_backend(US).databases.get(PAIR_ID)
            if primary is not None and db.db_instance_arn in primary.replicas:
                primary.replicas.remove(db.db_instance_arn)
            db.status = "available"
            self.log("promoted %s (source was %s)" % (node.name, source))
            if db.region == US and db.db_instance_identifier == PAIR_ID:
                self._failback_promoted(db, node)
        except Exception as e:
            db.status = "failed"
            self._fail("PromoteReadReplica %s" % db.db_instance_identifier, e)

    def _rds_reboot(self, resp, call):
        ident = _param(resp, "DBInstanceIdentifier", "db_instance_identifier")
        force = _truthy(_param(resp, "ForceFailover", "force_failover"))
        if resp.region == US and ident == PAIR_ID and self.writer:
            db = self._rds_backend(US).describe_db_instances(ident)[0]
            if US in self.down_regions:
                raise self._rds_error("InvalidDBInstanceState",
                                      "%s: region %s is unavailable" % (ident, US))
            if db.status != "available":
                raise self._rds_error("InvalidDBInstanceState",
                                      "DB Instance %s is %s." % (ident, db.status))
            if force:
                sb = self.nodes.get(self.standby) if self.standby else None
                if sb is None or not sb.running():
                    raise self._rds_error("InvalidDBInstanceState",
                                          "%s has no standby ready for a failover" % ident)
            result = call()
            db.status = "rebooting"
            self._spawn("reboot", self._do_reboot, db, force)
            return result
        if resp.region in (US, EU) and ident in self.restores:
            db = self._rds_backend(resp.region).describe_db_instances(ident)[0]
            if force and not db.multi_az:
                raise self._rds_error("InvalidParameterCombination",
                                      "%s is not a Multi-AZ instance" % ident)
            result = call()
            node = self.nodes[self.restores[ident]]
            db.status = "rebooting"
            self._spawn("reboot", self._do_simple_reboot, db, node, force)
            return result
        return call()

    def _do_simple_reboot(self, db, node, force=False):
        try:
            node.stop("fast")
            node.start()
            saz = getattr(db, "_drb_secondary_az", None)
            if force and saz:         # the restored copy's "failover": same server, other AZ
                db.availability_zone, db._drb_secondary_az = saz, db.availability_zone
            db.status = "available"
        except Exception as e:
            db.status = "failed"
            self._fail("RebootDBInstance %s" % db.db_instance_identifier, e)

    def _do_reboot(self, db, force):
        old = self.nodes[self.writer]
        try:
            if not force:
                old.stop("fast")
                old.start()
                self.proxy.move_to(old.port)        # reboot drops connections too
                self._rds_event(db, ["availability"], "DB instance restarted")
                db.status = "available"
                return
            self._rds_event(db, ["failover"], "Multi-AZ instance failover started.")
            # fast shutdown streams the last WAL to the standby: a planned failover loses
            # nothing; if the writer already crashed this is a no-op
            new = self._fail_over(db, old, "fast")
            self._rds_event(db, ["availability"], "DB instance restarted")
            self._rds_event(db, ["failover"], "Multi-AZ instance failover completed.")
        except Exception as e:
            db.status = "failed"
            self._fail("RebootDBInstance %s" % db.db_instance_identifier, e)
            return
        self._rebuild_standby(old, new)

    def _fail_over(self, db, old, stop_mode):
        """The writer's standby takes over: old stops, the standby is promoted, the writer
        endpoint (proxy and DNS name) moves, the AZs swap. Returns the new writer."""
        new = self.nodes[self.standby]
        old.stop(stop_mode)
        new.promote()
        self.proxy.move_to(new.port)
        self.writer, self.standby = new.name, None
        self._writer_dns_follow()
        az, saz = db.availability_zone, getattr(db, "_drb_secondary_az", None)
        if saz:
            db.availability_zone, db._drb_secondary_az = saz, az
        db.status = "available"
        self.log("failover: %s -> %s" % (old.name, new.name))
        return new

    def _rebuild_standby(self, old, new):
        # Multi-AZ rebuilds a standby in the other AZ after a failover; so do we, so that a
        # second drill finds a pair again
        try:
            old.make_standby(new.port, archive=True)
            old.start()
            new.sql("alter system set synchronous_standby_names = '%s'" %
                    old.name.replace("-", "_"), dbname="postgres")
            new.reload()
            self.standby = old.name
            self.log("standby %s rebuilt from %s" % (old.name, new.name))
        except Exception as e:
            self._fail("rebuilding standby %s" % old.name, e)

    def _rds_delete(self, resp, call):
        """Deleting a restored instance stops and removes its server; the platform's own
        instances are refused, their servers are the sandbox itself."""
        ident = _param(resp, "DBInstanceIdentifier", "db_instance_identifier")
        if resp.region == AP and ident == AP_REPLICA_ID and self.live:
            return self._rds_delete_ap_replica(resp, call)
        if resp.region == EU and ident == REPLICA_ID and self.live:
            return self._rds_delete_seeded_replica(resp, call, EU, REPLICA_ID, self.replica)
        if resp.region == US and ident == PAIR_ID and self.live and self._promoted_elsewhere():
            return self._rds_delete_old_primary(resp, call)
        if ident in (PAIR_ID, REPLICA_ID):
            raise self._rds_error("InvalidParameterCombination",
                                  "the sandbox does not delete %s (use sandbox down)" % ident)
        arn = None
        if ident in self.restores:
            try:
                arn = self._rds_backend(resp.region).describe_db_instances(ident)[0].db_instance_arn
            except Exception:       # not there: moto's own answer follows
                arn = None
        result = call()
        # moto does not take a cross-region replica off its source's list when it is deleted
        primary = self._rds_backend(US).databases.get(PAIR_ID)
        if arn and primary is not None:
            primary.replicas[:] = [r for r in primary.replicas if r != arn]
        name = self.restores.pop(ident, None)
        node = self.nodes.pop(name, None) if name else None
        if node is not None:
            self._spawn("delete-" + ident, node.stop, "fast")
        return result

    def _check_restore_time(self, ts):
        if ts > now_utc():
            raise self._rds_error("InvalidRestoreFault", "restore time is in the future")
        if self.base_backup_time and ts < self.base_backup_time:
            raise self._rds_error("InvalidRestoreFault",
                                  "restore time is before the earliest restorable time %s"
                                  % rfc3339(self.base_backup_time))

    def _rds_restore_pitr(self, resp, call):
        source = _param(resp, "SourceDBInstanceIdentifier", "source_db_instance_identifier")
        target = _param(resp, "TargetDBInstanceIdentifier", "target_db_instance_identifier")
        if not (resp.region == US and source == PAIR_ID):
            raise self._rds_error("InvalidParameterCombination",
                                  "the sandbox restores only %s in %s" % (PAIR_ID, US))
        latest = _truthy(_param(resp, "UseLatestRestorableTime", "use_latest_restorable_time"))
        rt = _param(resp, "RestoreTime", "restore_time")
        if latest == bool(rt):
            raise self._rds_error("InvalidParameterCombination",
                                  "give exactly one of RestoreTime and UseLatestRestorableTime")
        ts = None
        if rt:
            ts = rt if hasattr(rt, "tzinfo") else parse_rfc3339(str(rt))
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=datetime.timezone.utc)
            self._check_restore_time(ts)
        return self._start_restore(resp, call, target, ts)

    def _rds_create_snapshot(self, resp, call):
        ident = _param(resp, "DBInstanceIdentifier", "db_instance_identifier")
        snap = _param(resp, "DBSnapshotIdentifier", "db_snapshot_identifier")
        if not (resp.region == US and ident == PAIR_ID):
            return call()
        writer = self._writer_node()
        if writer is None or not writer.running():
            raise self._rds_error("InvalidDBInstanceState", "%s is not available" % ident)
        ts = now_utc()
        switch_and_archive(writer)   # a commit after ts, archived: the snapshot is restorable
        result = call()
        self.snapshot_times[snap] = ts
        return result

    def _rds_restore_snap(self, resp, call):
        snap = _param(resp, "DBSnapshotIdentifier", "db_snapshot_identifier")
        target = _param(resp, "DBInstanceIdentifier", "db_instance_identifier")
        snap_id = str(snap).split(":")[-1]
        if not (resp.region == US and snap_id in self.snapshot_times):
            raise self._rds_error("InvalidParameterCombination",
                                  "the sandbox restores only snapshots of %s in %s" %
                                  (PAIR_ID, US))
        return self._start_restore(resp, call, target, self.snapshot_times[snap_id])

    def _start_restore(self, resp, call, target, ts):
        port = free_port()
        multi_az = _truthy(_param(resp, "MultiAZ", "multi_az"))
        result = call()
        db = self._rds_backend(US).databases[target]
        self._restore_settings_as_aws(resp, db)
        db.port = port
        db.status = "creating"
        # Multi-AZ when asked (a shadow drill's copy of prod-db): one server, whose forced
        # reboot moves the instance to its other AZ (_rds_reboot), as a failover would
        db.multi_az = multi_az
        if multi_az:
            db.availability_zone = US + "a"
            db._drb_secondary_az = US + "b"
        db.is_replica = False
        db.replicas = []
        db.source_db_instance_identifier = None
        name = "restore-" + target
        self.restores[target] = name
        self._spawn("restore-" + target, self._do_restore, db, name, port, ts)
        return result

    def _restore_settings_as_aws(self, resp, db):
        """moto copies the source's security groups, parameter group and tags into a
        point-in-time restore; RDS does not: what the request does not give is RDS's default
        (the default VPC's default security group, no subnet group, the default parameter
        group, no tags), which is how a restore lands where the application cannot reach it."""
        if not _param(resp, "VpcSecurityGroupIds", "vpc_security_group_ids"):
            from moto.ec2.models import ec2_backends
            ec2 = ec2_backends[self.account][US]
            db.vpc_security_group_ids = [ec2.get_default_security_group(ec2.default_vpc.id).id]
        if not _param(resp, "DBSubnetGroupName", "db_subnet_group_name"):
            db.db_subnet_group_name = None
            db.db_subnet_group = None
        if not _param(resp, "DBParameterGroupName", "db_parameter_group_name"):
            db.db_parameter_group_name = None
        if not _param(resp, "Tags", "tags"):
            db.tags = []

    def _do_restore(self, db, name, port, ts):
        node = Node(self.paths, name, port, self.password)
        try:
            writer = self._writer_node()
            if writer is not None and US not in self.down_regions:
                try:
                    switch_and_archive(writer)
                except Exception as e:   # writer down: restore from what the archive holds
                    self.log("restore %s: could not flush WAL from the writer: %s" % (name, e))
            self._build_restored(node, ts)
            self.nodes[name] = node
            db.status = "available"
            self.log("restored %s to %s on port %d" % (db.db_instance_identifier,
                                                       rfc3339(ts) if ts else "latest", port))
        except Exception as e:
            db.status = "failed"
            self._fail("restore %s" % db.db_instance_identifier, e)

    def _build_restored(self, node, ts):
        target = _pg_time(ts) if ts else None
        node.restore_from_base_backup(target)
        register_server(self.paths, node)
        try:
            node.start(timeout=90)
            self._wait_promoted(node, 90)
            return
        except Exception as e:
            log_text = node.logfile.read_text() if node.logfile.exists() else ""
            if not target or "before configured recovery target was reached" not in log_text:
                raise
            self.log("restore %s: the archive ends before %s; restoring to its end (%s)"
                     % (node.name, target, e))
        # Every archived transaction committed before the target: replaying the whole
        # archive gives exactly the state at the target time.
        node.stop()
        node.restore_from_base_backup(None)
        node.start(timeout=90)
        self._wait_promoted(node, 90)

    def _wait_promoted(self, node, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if not node.in_recovery():
                    return
            except SandboxError:
                if not node.running():
                    raise SandboxError("restored server %s stopped during recovery" %
                                       node.name)
            time.sleep(0.2)
        raise SandboxError("restored server %s still in recovery after %ss" %
                           (node.name, timeout))

    # ------------------------------------------------------------------ ap-southeast-1 replica
    # The cold standby's cross-region read replica (prod-db-ap, node prod-db-ap). As on RDS
    # it cannot be re-pointed at another source: a failover to eu-west-1 deletes it and
    # creates a new read replica of the promoted instance, and the glue rebuilds the real
    # server from that instance's server (pg_basebackup) on the same port.
    def _rds_delete_ap_replica(self, resp, call):
        return self._rds_delete_seeded_replica(resp, call, AP, AP_REPLICA_ID, self.ap_replica)

    def _rds_delete_seeded_replica(self, resp, call, region, ident, name):
        """Deleting a seeded cross-region replica (prod-db-eu, prod-db-ap) stops its server;
        its node stays, to be rebuilt on the same port by a new read replica of that id."""
        db = self._rds_backend(region).databases.get(ident)
        if db is not None and db.status in ("creating", "modifying"):
            raise self._rds_error("InvalidDBInstanceState",
                                  "DB Instance %s is %s." % (ident, db.status))
        if db is not None and db.is_replica:
            # moto keeps a cross-region replica as its ARN in the source's list but removes
            # it by id: hand it the id, so the delete finds it
            src = self._db_of(db.source_db_instance_identifier)
            if src is not None:
                if db.db_instance_arn in src.replicas:
                    src.replicas.remove(db.db_instance_arn)
                if ident not in src.replicas:
                    src.replicas.append(ident)
            else:
                db.is_replica = False   # its source is gone already: nothing to detach from
        result = call()
        node = self.nodes.get(name) if name else None
        if node is not None:
            self._spawn("delete-" + ident, node.stop, "fast")
        return result

    def _rds_create_replica(self, resp, call):
        """A new read replica: of prod-db in eu-west-1, a real standby of its own (a shadow
        drill's copy, _rds_read_replica); prod-db-ap, rebuilt from the source's server."""
        ident = _param(resp, "DBInstanceIdentifier", "db_instance_identifier")
        source = _param(resp, "SourceDBInstanceIdentifier", "source_db_instance_identifier")
        if self.live and resp.region == US and ident == PAIR_ID:
            return self._rds_failback_replica(resp, call, source)
        seeded = {(EU, REPLICA_ID): self.replica, (AP, AP_REPLICA_ID): self.ap_replica}
        src = self._db_of(source)
        if self.live and seeded.get((resp.region, ident)) and src is not None and \
                src.region == US and src.db_instance_identifier in self.restores:
            return self._rds_replica_of_restored(resp, call, ident,
                                                 seeded[(resp.region, ident)], src)
        rebuilt = self.live and seeded.get((resp.region, ident)) is not None
        if resp.region == EU and str(source or "").split(":")[-1] == PAIR_ID and not rebuilt:
            return self._rds_read_replica(resp, call)
        if not rebuilt:
            return call()
        src = self._db_of(source)
        src_node = self._server_of(src)
        if src is None or src_node is None:
            raise self._rds_error("InvalidParameterCombination",
                                  "the sandbox builds %s only from %s or %s" %
                                  (ident, PAIR_ID, REPLICA_ID if ident == AP_REPLICA_ID
                                   else AP_REPLICA_ID))
        if src.status != "available" or src.is_replica:
            raise self._rds_error("InvalidDBInstanceState",
                                  "source %s is %s%s" % (src.db_instance_identifier, src.status,
                                                        " (a replica)" if src.is_replica
                                                        else ""))
        if self._db_of_region(resp.region, ident) is not None:
            raise self._rds_error("DBInstanceAlreadyExists",
                                  "DB instance %s already exists" % ident)
        node = self.nodes[self._replica_node(resp.region, ident)]
        # a replica of prod-db streams through its writer endpoint (it follows a Multi-AZ
        # failover, as the seed's replicas do); of a promoted replica, from its server
        upstream = self.proxy.port if src.db_instance_identifier == PAIR_ID and \
            src.region == US else src_node.port
        result = call()
        db = self._rds_backend(resp.region).databases[ident]
        db.port, db.multi_az, db.status = node.port, False, "creating"
        self._spawn("rebuild-" + ident, self._do_rebuild_ap, db, node, src_node, True,
                    upstream)
        return result

    def _db_of_region(self, region, ident):
        return self._rds_backend(region).databases.get(ident)

    def _server_of(self, db):
        """The real server an RDS instance stands for (its writer for the Multi-AZ pair)."""
        if db is None:
            return None
        ident, region = db.db_instance_identifier, db.region
        if region == US and ident == PAIR_ID:
            return self._writer_node()
        name = self._replica_node(region, ident)
        return self.nodes.get(name) if name else None

    def _do_rebuild_ap(self, db, node, src_node, archive_fallback=True, upstream=None):
        """Rebuilds a seeded cross-region replica's server (prod-db-ap, or prod-db-eu) on its
        own port."""
        ident = db.db_instance_identifier
        try:
            node.stop("immediate")
            # streams straight from the new primary's server (what a new cross-region replica
            # of that instance does), or through prod-db's writer endpoint (upstream), with the
            # WAL archive as the fallback; not for a restored server: the archive holds
            # production's timelines, not its own
            node.clone_from(src_node.port)
            node.write_config(archive=False,
                              primary_conninfo=node.replication_conninfo(
                                  upstream or src_node.port),
                              recovery={"archive_fallback": True} if archive_fallback else None)
            (node.datadir / "standby.signal").touch()
            from .common import chown_pg
            chown_pg(node.datadir / "standby.signal")
            node.start()
            wait_streaming(src_node, [node.name], timeout=60)
            db.status = "available"
            self.log("rebuilt %s from %s" % (node.name, src_node.name))
        except Exception as e:
            db.status = "failed"
            self._fail("CreateDBInstanceReadReplica %s" % ident, e)

    def _rds_replica_of_restored(self, resp, call, ident, name, src):
        """prod-db-eu or prod-db-ap created again as a read replica of a restored instance
        (the corruption runbook's rebuild): its own server, on its port, cloned from the
        restored server and streaming from it."""
        backend = self._rds_backend(resp.region)
        if ident in backend.databases:
            raise self._rds_error("DBInstanceAlreadyExists",
                                  "DB instance already exists: %s" % ident)
        src_node = self.nodes.get(self.restores[src.db_instance_identifier])
        if src.status != "available" or src.is_replica or src_node is None:
            raise self._rds_error("InvalidDBInstanceState", "source %s is %s" %
                                  (src.db_instance_identifier, src.status))
        node = self.nodes[name]
        result = call()
        db = backend.databases[ident]
        db.port, db.multi_az, db.status = node.port, False, "creating"
        self._spawn("rebuild-" + ident, self._do_rebuild_ap, db, node, src_node, False)
        return result

    # ------------------------------------------------------------------ fail-back (issue 11.9)
    # After a region failover prod-db-eu is the writer and prod-db, once us-east-1 is back
    # (inject region-recover), a stale primary on its own timeline. As on RDS: prod-db is
    # deleted (its servers stop; a final snapshot stays in moto), which frees its name; a new
    # read replica named prod-db of prod-db-eu is a fresh server (pg_basebackup of prod-db-eu's,
    # streaming from it) behind prod-db's endpoint (the writer-endpoint proxy: the endpoint's
    # name comes from the identifier); promoting it makes it the writer, with a new Multi-AZ
    # standby when it was created Multi-AZ. prod-db-eu and prod-db-ap are then rebuilt from it
    # (_rds_delete_seeded_replica, _do_rebuild_ap). runbooks/region-failback.yaml does all this.
    def _promoted_elsewhere(self):
        """A cross-region replica was promoted: prod-db is no longer the only primary."""
        for region, ident in ((EU, REPLICA_ID), (AP, AP_REPLICA_ID)):
            db = self._db_of_region(region, ident)
            if db is not None and not db.is_replica:
                return True
        return False

    def _rds_delete_old_primary(self, resp, call):
        db = self._db_of_region(US, PAIR_ID)
        if db is not None and db.status in ("creating", "modifying"):
            raise self._rds_error("InvalidDBInstanceState",
                                  "DB Instance %s is %s." % (PAIR_ID, db.status))
        if db is not None and db.is_replica:
            src = self._db_of(db.source_db_instance_identifier)
            if src is not None and db.db_instance_arn in src.replicas:
                src.replicas.remove(db.db_instance_arn)
                src.replicas.append(PAIR_ID)    # moto removes it by id (see above)
            elif src is None:
                db.is_replica = False
        result = call()
        old = [n for n in (self.writer, self.standby) if n]
        for name in old:
            node = self.nodes.get(name)
            if node is not None:
                self._spawn("delete-" + name, node.stop, "fast")
        self.writer = self.standby = None
        self.log("deleted %s (servers %s)" % (PAIR_ID, ", ".join(old) or "none"))
        return result

    def _new_node_name(self):
        """prod-db-c, prod-db-d, ...: a server never used before (an old data directory is
        never reused: the stale primary must not rejoin)."""
        for c in "cdefghijklmnopqrstuvwxyz":
            name = "prod-db-" + c
            if name not in self.nodes and not (self.paths.pg / name).exists():
                return name
        raise SandboxError("no free server name left")

    def _rds_failback_replica(self, resp, call, source):
        """CreateDBInstanceReadReplica prod-db in us-east-1 of the promoted prod-db-eu."""
        src = self._db_of(source)
        src_node = self._server_of(src)
        if src is None or src_node is None or src.region == US:
            raise self._rds_error("InvalidParameterCombination",
                                  "the sandbox builds %s in %s only from %s or %s" %
                                  (PAIR_ID, US, REPLICA_ID, AP_REPLICA_ID))
        if src.status != "available" or src.is_replica:
            raise self._rds_error("InvalidDBInstanceState",
                                  "source %s is %s%s" % (src.db_instance_identifier, src.status,
                                                        " (a replica)" if src.is_replica
                                                        else ""))
        if self._db_of_region(US, PAIR_ID) is not None:
            raise self._rds_error("DBInstanceAlreadyExists",
                                  "DB instance %s already exists" % PAIR_ID)
        if US in self.down_regions:
            raise self._rds_error("InvalidDBInstanceState", "region %s is unavailable" % US)
        multi_az = _truthy(_param(resp, "MultiAZ", "multi_az"))
        az = _param(resp, "AvailabilityZone", "availability_zone") or US + "a"
        name, port = self._new_node_name(), free_port()
        self.nodes[name] = Node(self.paths, name, port, self.password)  # reserves the name
        try:
            result = call()
        except Exception:
            self.nodes.pop(name, None)
            raise
        db = self._rds_backend(US).databases[PAIR_ID]
        db.port, db.status, db.multi_az = self.proxy.port, "creating", multi_az
        db.availability_zone = az
        db._drb_secondary_az = (US + ("b" if az != US + "b" else "a")) if multi_az else None
        self._spawn("failback-replica", self._do_failback_replica, db, self.nodes[name],
                    src_node)
        return result

    def _do_failback_replica(self, db, node, src_node):
        try:
            node.make_standby(src_node.port, archive=True)
            node.start(timeout=90)
            wait_streaming(src_node, [node.name], timeout=60)
            self.writer, self.standby = node.name, None
            self.proxy.move_to(node.port)       # prod-db's endpoint names the new instance
            self._add_host_record(node.name)
            self._writer_dns_follow()
            db.status = "available"
            self.log("read replica %s in %s of %s: server %s on port %d" % (
                PAIR_ID, US, src_node.name, node.name, node.port))
        except Exception as e:
            db.status = "failed"
            self._fail("CreateDBInstanceReadReplica %s" % PAIR_ID, e)

    def _failback_promoted(self, db, node):
        """prod-db promoted: the writer endpoint already names it; a Multi-AZ instance gets
        its synchronous standby (a new server) in the background, as RDS builds one."""
        self._writer_dns_follow()
        if not db.multi_az:
            return
        name = self._new_node_name()
        standby = Node(self.paths, name, free_port(), self.password)
        self.nodes[name] = standby
        self._add_host_record(name)
        self._spawn("failback-standby", self._rebuild_standby, standby, node)

    def _add_host_record(self, name):
        w = getattr(self, "writer_dns", None)
        if w:
            self._r53_backend().change_resource_record_sets(w["zone_id"], [{
                "Action": "UPSERT", "ResourceRecordSet": {
                    "Name": "%s.%s" % (name, w["hosts"]), "Type": "A", "TTL": 60,
                    "ResourceRecords": [{"Value": "127.0.0.1"}]}}])

    def _inject_region_recover(self, args):
        """The region is back after region-outage: its endpoints and health check answer, its
        services' tasks are started again, and its database servers start as they were. In
        us-east-1 that is the old Multi-AZ pair: prod-db comes back a writable primary on its
        own timeline, diverged from the promoted prod-db-eu, which does not follow it (nor
        does anything else): a fail-back fences and deletes it and builds a new prod-db."""
        region = args.get("region") or US
        if region not in (US, EU):
            raise SandboxError("only the %s and %s outages are modelled" % (US, EU))
        if region not in self.down_regions:
            raise SandboxError("%s is not down (inject region-outage first)" % region)
        self.down_regions.discard(region)
        if self.faults is not None and self.faults.clear_region(region) and self.on_faults:
            self.on_faults()
        started = []
        for name in ((self.writer, self.standby) if region == US else (self.replica,)):
            node = self.nodes.get(name) if name else None
            if node is not None and not node.running():
                node.start()
                started.append(name)
        backend = self._ecs_backend(region)
        with self.lock:
            for svc in backend.services.values():
                self._schedule((region, svc.cluster_name, svc.name), self.start_delay,
                               earliest=True)
                self._recount(backend, svc)
        return {"region": region, "started_servers": started,
                "stale_writer": self.writer if region == US else None,
                "health_checks_passing": [k for k, v in self.health_checks.items()
                                          if v == region]}

    # ------------------------------------------------------------------ Route 53
    def _r53_change(self, resp, call):
        result = call()
        cid = "/change/C%012X" % random.getrandbits(48)
        info = result.result["ChangeInfo"]
        info["Id"], info["Status"] = cid, "PENDING"
        self.changes[cid] = time.monotonic()
        return result

    def _r53_get_change(self, resp, call):
        result = call()
        info = result.result["ChangeInfo"]
        cid = info["Id"] if str(info["Id"]).startswith("/change/") else "/change/" + info["Id"]
        info["Id"] = cid
        t = self.changes.get(cid)
        if t is not None and time.monotonic() - t < self.change_delay:
            info["Status"] = "PENDING"
        return result

    def region_healthy(self, region):
        return region not in self.down_regions

    def _r53_create_health_check(self, resp, call):
        cfg = _param(resp, "HealthCheckConfig") or {}
        arn = cfg.get("RoutingControlArn")
        if cfg.get("Type") == "RECOVERY_CONTROL":
            if not arn or self.arc is None or self.arc.state(arn) is None:
                from moto.route53.exceptions import InvalidInput
                raise InvalidInput("RoutingControlArn %r is not a routing control of the "
                                   "sandbox's ARC cluster" % (arn,))
        result = call()
        if cfg.get("Type") == "RECOVERY_CONTROL":
            result.result["HealthCheck"].routing_control_arn = arn
        return result

    def _r53_backend(self):
        from moto.route53.models import route53_backends
        return route53_backends[self.account]["aws"]

    def health_check_healthy(self, hc_id, hc=None):
        """What Route 53 concludes about a health check now: an ARC routing-control check is
        healthy iff its routing control is On; the seeded HTTPS checks follow their region's
        injected outage; Inverted and Disabled are honoured (a disabled check is healthy)."""
        if hc is None:
            hc = self._r53_backend().health_checks.get(hc_id)
        if hc is None:
            return True
        if hc.type_ == "RECOVERY_CONTROL":
            healthy = self.arc is not None and self.arc.state(
                getattr(hc, "routing_control_arn", None)) == "On"
        else:
            region = self.health_checks.get(hc_id)
            healthy = region is None or self.region_healthy(region)
        if getattr(hc, "inverted", False):
            healthy = not healthy
        if getattr(hc, "disabled", False):
            healthy = True
        return healthy

    def _r53_health_status(self, resp, call):
        result = call()
        hc_id = _param(resp, "HealthCheckId", "health_check_id")
        hc = resp.backend.get_health_check(hc_id)
        healthy = self.health_check_healthy(hc_id, hc)
        now = now_utc()
        obs = []
        for i, checker in enumerate(CHECKER_REGIONS):
            if hc.type_ == "RECOVERY_CONTROL":
                status = ("Success: The routing control state is %s" %
                          self.arc.state(getattr(hc, "routing_control_arn", None)))
                status = status if healthy else status.replace("Success", "Failure")
            else:
                status = ("Success: HTTP Status Code 200, OK" if healthy else
                          "Failure: Connection timed out. The endpoint or the internet "
                          "connection is down, or requests are being blocked by your "
                          "firewall.")
            obs.append({"Region": checker, "IPAddress": "127.0.%d.1" % (i + 10),
                        "StatusReport": {"Status": status, "CheckedTime": now}})
        result.result["HealthCheckObservations"] = obs
        return result

    # ------------------------------------------------------------------ ECS
    def _ecs_backend(self, region):
        from moto.ecs.models import ecs_backends
        return ecs_backends[self.account][region]

    @staticmethod
    def _find_service(backend, cluster, name):
        return backend.services.get("%s:%s" % (cluster, name))

    @staticmethod
    def _service_tasks(backend, svc, status="RUNNING"):
        tasks = backend.tasks.get(svc.cluster_name, {}).values()
        return [t for t in tasks if t.group == "service:" + svc.name and
                (status is None or t.last_status == status)]

    def _schedule(self, key, delay, earliest):
        due = time.monotonic() + delay
        cur = self.ecs_due.get(key)
        if cur is None or (earliest and due < cur):
            self.ecs_due[key] = due

    def _recount(self, backend, svc):
        running = len(self._service_tasks(backend, svc))
        key = (backend.region_name, svc.cluster_name, svc.name)
        pending = max(0, svc.desired_count - running) if key in self.ecs_due else 0
        svc.running_count, svc.pending_count = running, pending
        if svc.deployments:
            d = svc.deployments[0]
            d["desiredCount"], d["runningCount"], d["pendingCount"] = (svc.desired_count,
                                                                     running, pending)
            done = running == svc.desired_count and key not in self.ecs_due
            d["rolloutState"] = "COMPLETED" if done else "IN_PROGRESS"
            d["rolloutStateReason"] = "ECS deployment %s %s." % (
                d["id"], "completed" if done else "in progress")

    def reconcile_service(self, backend, svc, reason="service scheduler"):
        """Start or stop tasks until RUNNING == desired (caller holds the lock)."""
        key = (backend.region_name, svc.cluster_name, svc.name)
        self.ecs_due.pop(key, None)
        replace = self.ecs_force.pop(key, set())
        running = [t for t in self._service_tasks(backend, svc) if t.task_arn not in replace]
        missing = svc.desired_count - len(running)
        dep = svc.deployments[0]["id"] if svc.deployments else "ecs-svc/sandbox"
        if missing > 0 and svc.task_definition:
            backend.run_task(svc.cluster_name, svc.task_definition, missing, None, dep, [],
                             "FARGATE", svc.network_configuration or None,
                             "service:" + svc.name)
        extra = running[svc.desired_count:] if missing < 0 else []
        for t in list(extra) + [t for t in self._service_tasks(backend, svc)
                                if t.task_arn in replace]:
            # stop directly on the model: these stops are the scheduler's own, not failures
            t.last_status, t.desired_status = "STOPPED", "STOPPED"
            t.stopped_reason = "Scaling activity initiated by (deployment %s)" % dep
        self._recount(backend, svc)

    def reconcile_all_now(self):
        with self.lock:
            for region in CLUSTERS:
                backend = self._ecs_backend(region)
                for svc in list(backend.services.values()):
                    self.reconcile_service(backend, svc)

    def _ecs_loop(self):
        while not self._stop.wait(0.25):
            try:
                with self.lock:
                    now = time.monotonic()
                    for key, due in list(self.ecs_due.items()):
                        region, cluster, name = key
                        if now < due or region in self.down_regions:
                            continue
                        backend = self._ecs_backend(region)
                        svc = self._find_service(backend, cluster, name)
                        if svc is None:
                            self.ecs_due.pop(key, None)
                            continue
                        self.reconcile_service(backend, svc)
                    self._eval_alarms()
            except Exception as e:
                self._fail("ECS scheduler", e)

    # ------------------------------------------------------------------ injections
    def inject(self, scenario, args):
        fn = {"ecs-task": self._inject_ecs_task, "primary": self._inject_primary,
              "region-outage": self._inject_region_outage,
              "corruption": self._inject_corruption,
              "arc-endpoint-down": self._inject_arc_endpoint_down,
              "rds-failover": self._inject_rds_failover,
              "region-recover": self._inject_region_recover,
              "s3-replication-stall": lambda a: self.stores.stall(a)}.get(scenario)
        if fn is None:
            raise SandboxError("unknown scenario %r (ecs-task, primary, region-outage, "
                               "region-recover, corruption, arc-endpoint-down, rds-failover, "
                               "s3-replication-stall)" % scenario)
        return fn(args or {})

    def _inject_ecs_task(self, args):
        service = args.get("service") or "api"
        cluster = args.get("cluster") or CLUSTERS[US]
        region = next((r for r, c in CLUSTERS.items() if c == cluster), EU)
        backend = self._ecs_backend(region)
        with self.lock:
            svc = self._find_service(backend, cluster, service)
            if svc is None:
                raise SandboxError("no service %s in cluster %s" % (service, cluster))
            tasks = self._service_tasks(backend, svc)
            if not tasks:
                raise SandboxError("service %s has no running task to stop" % service)
            task = backend.stop_task(cluster, tasks[0].task_arn,
                                     "Task failed: injected by the drbook sandbox")
            return {"cluster": cluster, "service": service, "task": task.task_arn,
                    "running": svc.running_count, "desired": svc.desired_count,
                    "replaced_after_s": self.replace_delay}

    def _inject_primary(self, args):
        writer = self._writer_node()
        if writer is None:
            raise SandboxError("no writer")
        writer.stop("immediate")
        return {"killed": writer.name, "port": writer.port}

    def _inject_region_outage(self, args):
        region = args.get("region") or US
        if region not in (US, EU):
            raise SandboxError("only the %s and %s outages are modelled" % (US, EU))
        if region == EU and args.get("control_plane"):
            raise SandboxError("the control-plane outage is modelled for %s only" % US)
        self.down_regions.add(region)
        stopped = []
        # eu-west-1 down: its replica's server (the case for failing over to ap-southeast-1)
        for name in ((self.writer, self.standby) if region == US else (self.replica,)):
            node = self.nodes.get(name) if name else None
            if node is not None:
                node.stop("immediate")
                stopped.append(name)
        backend = self._ecs_backend(region)
        with self.lock:
            n = 0
            for svc in backend.services.values():
                for t in self._service_tasks(backend, svc):
                    t.last_status, t.desired_status = "STOPPED", "STOPPED"
                    t.stopped_reason = "Region %s unavailable (injected outage)" % region
                    n += 1
                self._schedule((region, svc.cluster_name, svc.name), self.replace_delay,
                               earliest=False)
                self._recount(backend, svc)
        out = {"region": region, "stopped_servers": stopped, "stopped_tasks": n,
               "health_checks_failing": [k for k, v in self.health_checks.items()
                                         if v == region]}
        if args.get("control_plane"):
            # every endpoint of the region fails too, and with it the global Route 53 and
            # STS control APIs and IAM, which sign for us-east-1 (see faultproxy)
            mode = args.get("mode") or "refused"
            self.faults.set_region(region, mode, args.get("hang_s"))
            if self.on_faults:
                self.on_faults()
            out["control_plane"] = {"mode": mode, "hang_s": self.faults.hang_s}
        return out

    def _inject_arc_endpoint_down(self, args):
        from .arc import REGIONS
        i = args.get("index")
        if not isinstance(i, int) or not 0 <= i < len(REGIONS):
            raise SandboxError("arc-endpoint-down: the endpoint number is 0 to %d"
                               % (len(REGIONS) - 1))
        mode = args.get("mode") or "refused"
        self.faults.set_endpoint("arc-%d" % i, mode, args.get("hang_s"))
        if self.on_faults:
            self.on_faults()
        return {"endpoint": i, "region": REGIONS[i], "mode": mode,
                "hang_s": self.faults.hang_s}

    def _inject_corruption(self, args):
        writer = self._writer_node()
        if writer is None or not writer.running():
            raise SandboxError("the writer is down: nothing to corrupt")
        before_count = int(writer.value("select count(*) from orders"))
        time.sleep(0.05)
        restore_to = now_utc()
        time.sleep(0.05)          # the corrupting commit is strictly later than restore_to
        deleted = int(writer.value(
            "with d as (delete from orders where id % 3 = 0 returning 1) "
            "select count(*) from d"))
        done_at = now_utc()
        info = {"corrupted_at": rfc3339(done_at), "restore_to": rfc3339(restore_to),
                "table": "orders", "rows_deleted": deleted, "orders_before": before_count,
                "orders_after": before_count - deleted, "server": writer.name}
        write_json_atomic(self.paths.corruption, info)
        return info

    # ------------------------------------------------------------------ region drill state
    # A cheap reset for tests that run the region drill many times in one sandbox (the kill
    # sweep): `save` keeps what that drill changes (the eu-west-1 replica's data directory,
    # copied while stopped, and its RDS model; the prod-eu services' counts; the routing
    # controls); `restore` puts exactly that back, in about a second, instead of a new
    # sandbox. Faults, the outage and everything else stay as they are.
    def region_state(self, args):
        action = (args or {}).get("action")
        if action not in ("save", "restore"):
            raise SandboxError("region-state: save or restore")
        node = self.nodes.get(self.replica) if self.replica else None
        if node is None:
            raise SandboxError("region-state: no eu-west-1 replica")
        ckpt = node.datadir.parent / (node.datadir.name + ".region-state")
        db = self._rds_backend(EU).databases.get(REPLICA_ID)
        end = time.monotonic() + 60
        while db is not None and db.status == "modifying" and time.monotonic() < end:
            time.sleep(0.1)     # a promotion in flight finishes first (its thread owns db)
        t0 = time.monotonic()
        if action == "save":
            if db is None or not db.is_replica:
                raise SandboxError("region-state save: %s is not a replica" % REPLICA_ID)
            _checkpoint_save(node, ckpt)
            primary = self._rds_backend(US).databases.get(PAIR_ID)
            with self.lock:
                self._region_saved = {
                    "db": (db.is_replica, db.source_db_instance_identifier, db.status),
                    "in_primary": primary is not None and db.db_instance_arn in
                    primary.replicas,
                    "ecs": {name: svc.desired_count for name, svc in
                            self._ecs_backend(EU).services.items()
                            if svc.cluster_name == CLUSTERS[EU]},
                    "arc": {arn: c["state"] for arn, c in self.arc.status()[
                        "routing_controls"].items()} if self.arc else {},
                    "stores": self.stores.save_region(EU) if self.stores else None}
        else:
            saved = getattr(self, "_region_saved", None)
            if saved is None or not ckpt.exists():
                raise SandboxError("region-state restore: nothing saved (run save first)")
            _checkpoint_restore(node, ckpt)
            db.is_replica, db.source_db_instance_identifier, db.status = saved["db"]
            primary = self._rds_backend(US).databases.get(PAIR_ID)
            if primary is not None and saved["in_primary"] and \
                    db.db_instance_arn not in primary.replicas:
                primary.replicas.append(db.db_instance_arn)
            with self.lock:
                backend = self._ecs_backend(EU)
                for name, count in saved["ecs"].items():
                    svc = backend.services.get(name)
                    if svc is not None:
                        svc.desired_count = count
                        self.ecs_force.pop((EU, svc.cluster_name, svc.name), None)
                        self.reconcile_service(backend, svc)
            for arn, state in saved["arc"].items():
                self.arc._set([(arn, state)])
            if self.stores and saved.get("stores"):
                self.stores.restore_region(EU, saved["stores"])
        self._ap_region_state(action)
        return {"action": action, "took_s": round(time.monotonic() - t0, 2),
                "replica_in_recovery": node.in_recovery()}

    def _ap_region_state(self, action):
        """region-state for the ap-southeast-1 replica, which a drill to eu-west-1 rebuilds:
        its data directory (copied while stopped) and its RDS model, the very object (a
        delete and create replace it) with its source's replica list."""
        node = self.nodes.get(self.ap_replica) if self.ap_replica else None
        if node is None:
            return
        backend = self._rds_backend(AP)
        end = time.monotonic() + 120
        while time.monotonic() < end:    # a rebuild in flight finishes first (its thread)
            cur = backend.databases.get(AP_REPLICA_ID)
            if cur is None or cur.status not in ("creating", "modifying"):
                break
            time.sleep(0.1)
        ckpt = node.datadir.parent / (node.datadir.name + ".region-state")
        if action == "save":
            db = backend.databases.get(AP_REPLICA_ID)
            if db is None or not db.is_replica:
                raise SandboxError("region-state save: %s is not a replica" % AP_REPLICA_ID)
            _checkpoint_save(node, ckpt)
            self._ap_saved = {"db": db, "attrs": (db.is_replica, db.source_db_instance_identifier,
                                                  db.status, db.port)}
            return
        saved = getattr(self, "_ap_saved", None)
        if saved is None or not ckpt.exists():
            raise SandboxError("region-state restore: nothing saved for %s" % AP_REPLICA_ID)
        _checkpoint_restore(node, ckpt)
        db = saved["db"]
        cur = backend.databases.get(AP_REPLICA_ID)
        for src in (self._db_of(cur.source_db_instance_identifier) if cur is not None and
                    cur.source_db_instance_identifier else None,
                    self._rds_backend(EU).databases.get(REPLICA_ID),
                    self._rds_backend(US).databases.get(PAIR_ID)):
            if src is not None:
                src.replicas[:] = [r for r in src.replicas
                                   if r not in (db.db_instance_arn, AP_REPLICA_ID)]
        db.is_replica, db.source_db_instance_identifier, db.status, db.port = saved["attrs"]
        backend.databases[AP_REPLICA_ID] = db
        src = self._db_of(db.source_db_instance_identifier)
        if src is not None:
            src.replicas.append(db.db_instance_arn)

    # ------------------------------------------------------------------ RDS events, automatic
    # failover, the writer endpoint's DNS name, service alarms (issue 11: what the Multi-AZ and
    # ECS runbooks read to tell what happened; docs/sandbox.md)
    def _rds_event(self, db, categories, message):
        """An RDS event about db, as DescribeEvents returns it (moto records none for a
        failover: the glue does, on moto's own event list)."""
        from moto.rds.models import Event
        ev = Event.__new__(Event)
        ev.source_identifier = db.db_instance_identifier
        ev.source_type = "db-instance"
        ev.message = message
        ev.event_categories = list(categories)
        ev.source_arn = db.db_instance_arn
        ev.date = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        backend = self._rds_backend(US if db.db_instance_identifier == PAIR_ID else EU)
        backend.events.append(ev)
        self.log("RDS event %s %s: %s" % (db.db_instance_identifier, categories, message))

    def _rds_describe_events(self, resp, call):
        """moto ignores Duration, StartTime, EndTime and EventCategories: filter as RDS does
        (default: the last hour)."""
        result = call()
        events = result.result.get("Events") or []
        now = datetime.datetime.now(datetime.timezone.utc)

        def when(v):
            if v in (None, ""):
                return None
            t = v if hasattr(v, "tzinfo") else parse_rfc3339(str(v))
            return t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)
        start = when(_param(resp, "StartTime", "start_time"))
        end = when(_param(resp, "EndTime", "end_time")) or now
        duration = _param(resp, "Duration", "duration")
        if start is None:
            start = end - datetime.timedelta(minutes=int(duration or 60))
        cats = _param(resp, "EventCategories", "event_categories") or []
        if isinstance(cats, str):
            cats = [cats]
        if isinstance(cats, dict):          # EventCategories.EventCategory.N
            cats = list(cats.values())
        cats = set(c for c in cats if isinstance(c, str))

        def keep(e):
            t = e.date if e.date.tzinfo else e.date.replace(tzinfo=datetime.timezone.utc)
            return start <= t <= end and (not cats or cats & set(e.event_categories))
        result.result["Events"] = [e for e in events if keep(e)]
        return result

    def _inject_rds_failover(self, args):
        """RDS failed over by itself: the writer's host fails (its server stops at once), the
        synchronous standby is promoted, the writer endpoint and its DNS name move, the
        instance's AZ swaps, and RDS records the failover events. The old writer is rebuilt
        as the standby in the background, as after a forced failover."""
        db = self._rds_backend(US).databases.get(PAIR_ID)
        old = self._writer_node()
        sb = self.nodes.get(self.standby) if self.standby else None
        if db is None or old is None:
            raise SandboxError("no Multi-AZ instance %s" % PAIR_ID)
        if db.status != "available" or sb is None or not sb.running():
            raise SandboxError("%s cannot fail over now (status %s, standby %s)" %
                               (PAIR_ID, db.status, self.standby or "being rebuilt"))
        az_before = db.availability_zone
        self._rds_event(db, ["failover"], "Multi-AZ instance failover started.")
        self._rds_event(db, ["failover"], "The primary host of the RDS Multi-AZ instance "
                        "is unhealthy (injected by the drbook sandbox).")
        new = self._fail_over(db, old, "immediate")
        self._rds_event(db, ["failover"], "Multi-AZ instance failover completed.")
        self._spawn("rebuild-standby", self._rebuild_standby, old, new)
        return {"instance": PAIR_ID, "old_writer": old.name, "new_writer": new.name,
                "az_before": az_before, "az_after": db.availability_zone,
                "writer_dns": self.writer_dns_answer()}

    def setup_watch(self, zone_id, zone_name, endpoint_ttl=5):
        """Called once by the launcher after seeding: the writer endpoint's DNS name (a CNAME
        to the writer's host, one A record per host, as RDS's endpoint) and one CloudWatch
        alarm per ECS service (RunningTaskCount below its desired count)."""
        self.writer_dns = {"zone_id": zone_id, "name": "%s.%s" % (PAIR_ID, zone_name),
                           "hosts": "hosts." + zone_name, "ttl": endpoint_ttl}
        hosts = [{"Action": "UPSERT", "ResourceRecordSet": {
            "Name": "%s.%s" % (n, self.writer_dns["hosts"]), "Type": "A", "TTL": 60,
            "ResourceRecords": [{"Value": "127.0.0.1"}]}} for n in sorted(self.nodes)]
        self._r53_backend().change_resource_record_sets(zone_id, hosts)
        self._writer_dns_follow()
        from moto.cloudwatch.models import cloudwatch_backends
        self.alarms = {}
        with self.lock:
            for region in CLUSTERS:
                cw = cloudwatch_backends[self.account][region]
                for svc in list(self._ecs_backend(region).services.values()):
                    name = "%s-%s-running-tasks" % (svc.cluster_name, svc.name)
                    cw.put_metric_alarm(
                        name=name, namespace="ECS/ContainerInsights",
                        metric_name="RunningTaskCount", metric_data_queries=None,
                        comparison_operator="LessThanThreshold", evaluation_periods=1,
                        datapoints_to_alarm=1, period=60, threshold=float(svc.desired_count),
                        statistic="Minimum", extended_statistic=None,
                        description="%s runs fewer tasks than desired" % svc.name,
                        dimensions=[{"Name": "ClusterName", "Value": svc.cluster_name},
                                    {"Name": "ServiceName", "Value": svc.name}],
                        alarm_actions=[], ok_actions=[], insufficient_data_actions=[],
                        unit=None, actions_enabled=True, treat_missing_data="breaching",
                        evaluate_low_sample_count_percentile=None, threshold_metric_id=None,
                        rule=None, tags=[])
                    self.alarms[name] = (region, svc.cluster_name, svc.name)
            self._eval_alarms()
        return {"writer_dns": self.writer_dns["name"], "alarms": sorted(self.alarms)}

    def writer_dns_answer(self):
        w = getattr(self, "writer_dns", None)
        return "%s.%s" % (self.writer, w["hosts"]) if w and self.writer else None

    def _writer_dns_follow(self):
        """The writer endpoint's CNAME names the writer's host (RDS moves it on failover)."""
        w = getattr(self, "writer_dns", None)
        if not w or not self.writer:
            return
        self._r53_backend().change_resource_record_sets(w["zone_id"], [{
            "Action": "UPSERT", "ResourceRecordSet": {
                "Name": w["name"], "Type": "CNAME", "TTL": w["ttl"],
                "ResourceRecords": [{"Value": self.writer_dns_answer()}]}}])

    def _eval_alarms(self):
        """Each service alarm follows its service: ALARM while it runs fewer tasks than
        desired, OK otherwise (CloudWatch would after its evaluation period; caller holds
        the lock). DescribeAlarms then shows the state and when it last changed."""
        from moto.cloudwatch.models import cloudwatch_backends
        for name, (region, cluster, svc_name) in (getattr(self, "alarms", None) or {}).items():
            svc = self._find_service(self._ecs_backend(region), cluster, svc_name)
            if svc is None:
                continue
            running = len(self._service_tasks(self._ecs_backend(region), svc))
            want = "ALARM" if running < svc.desired_count else "OK"
            cw = cloudwatch_backends[self.account][region]
            alarm = cw.alarms.get(name)
            if alarm is None or alarm.state_value == want:
                continue
            reason = ("Threshold Crossed: 1 datapoint [%d.0] was %s the threshold (%d.0)." %
                      (running, "less than" if want == "ALARM" else "not less than",
                       svc.desired_count))
            cw.set_alarm_state(name, reason, "{}", want)
            self.log("alarm %s -> %s" % (name, want))

    # ------------------------------------------------------------------ status
    def status(self):
        nodes = {}
        for name, n in sorted(self.nodes.items()):
            running = n.running()
            rec = None
            if running:
                try:
                    rec = n.in_recovery()
                except SandboxError:
                    rec = None
            nodes[name] = {"port": n.port, "running": running, "in_recovery": rec}
        ecs = {}
        with self.lock:
            for region in CLUSTERS:
                backend = self._ecs_backend(region)
                for svc in backend.services.values():
                    ecs["%s/%s" % (svc.cluster_name, svc.name)] = {
                        "desired": svc.desired_count, "running": svc.running_count}
        return {"writer": self.writer, "standby": self.standby, "replica": self.replica,
                "writer_endpoint_port": self.proxy.port if self.proxy else None,
                "writer_endpoint_target": self.proxy.target if self.proxy else None,
                "nodes": nodes, "regions_down": sorted(self.down_regions),
                "restores": dict(self.restores), "ecs": ecs, "errors": self.errors[-10:],
                "faults": self.faults.snapshot() if self.faults else None}
