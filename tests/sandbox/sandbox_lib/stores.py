# The data stores and the region-level AWS behaviour moto does not play by itself: S3
# cross-region replication (an object put into a bucket with an enabled replication rule is
# copied to the destination bucket after DRB_SANDBOX_S3_REPLICATION_DELAY, not while the
# source region is down; HeadObject answers x-amz-replication-status PENDING/COMPLETED on the
# source and REPLICA on the copy), and ElastiCache replication groups that take time (a new
# group is `creating`, a modified one `modifying`, for DRB_SANDBOX_CACHE_DELAY before they are
# `available`; moto 5.2 has no ModifyReplicationGroup, it is added here).
import threading
import time


class Stores:
    def __init__(self, glue, log, replication_delay=1.0, cache_delay=3.0):
        self.glue = glue                    # for down_regions, the lock and _fail
        self.log = log
        self.replication_delay = replication_delay
        self.cache_delay = cache_delay
        self.pending = []                   # [due, source key, source bucket, dest bucket]
        self.cache_due = {}                 # (region, group id) -> (due, node type or None)
        self.replicated = 0
        self.stalled = False                # inject s3-replication-stall: nothing is copied
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    # ------------------------------------------------------------------ installation
    def install(self):
        self._install_s3()
        self._install_elasticache()
        self._thread = threading.Thread(target=self._loop, name="stores", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _install_s3(self):
        from moto.s3.models import FakeKey, S3Backend
        stores = self
        orig_put = S3Backend.put_object
        orig_headers = FakeKey.response_dict.fget

        def put_object(backend, bucket_name, key_name, value, *a, **kw):
            key = orig_put(backend, bucket_name, key_name, value, *a, **kw)
            try:
                stores._on_put(backend, bucket_name, key)
            except Exception as e:      # never fail the client's put for the emulation
                stores.glue._fail("S3 replication of %s/%s" % (bucket_name, key_name), e)
            return key

        def response_dict(key):
            res = orig_headers(key)
            status = getattr(key, "_drb_replication_status", None)
            if status:
                res["x-amz-replication-status"] = status
            return res

        S3Backend.put_object = put_object
        FakeKey.response_dict = property(response_dict)
        self._orig_put = orig_put

    def _install_elasticache(self):
        from moto.core.responses import ActionResult
        from moto.elasticache.models import ElastiCacheBackend
        from moto.elasticache.responses import ElastiCacheResponse
        stores = self
        orig_create = ElastiCacheBackend.create_replication_group

        def create_replication_group(backend, replication_group_id, *a, **kw):
            group = orig_create(backend, replication_group_id, *a, **kw)
            group.status = "creating"
            stores._cache_later(backend.region_name, group.replication_group_id, None)
            return group

        def modify_replication_group(resp):
            backend = resp.elasticache_backend
            group = backend.describe_replication_groups(
                replication_group_id=resp._get_param("ReplicationGroupId"))[0]
            if group.status != "available":
                from moto.elasticache.exceptions import ElastiCacheException
                raise ElastiCacheException(
                    "InvalidReplicationGroupState",
                    "Replication group must be in available state to modify.")
            node_type = None
            if resp._get_bool_param("ApplyImmediately"):
                node_type = resp._get_param("CacheNodeType")
                for param, attr in (("ReplicationGroupDescription", "description"),
                                    ("EngineVersion", "engine_version"),
                                    ("CacheParameterGroupName", "cache_parameter_group_name"),
                                    ("SecurityGroupIds", "security_group_ids")):
                    if resp._get_param(param) is not None:
                        setattr(group, attr, resp._get_param(param))
                for param, attr in (("AutomaticFailoverEnabled", "automatic_failover"),
                                    ("MultiAZEnabled", "multi_az")):
                    if resp._get_bool_param(param) is not None:
                        setattr(group, attr,
                                "enabled" if resp._get_bool_param(param) else "disabled")
            if node_type and node_type != group.cache_node_type:
                # a node type change takes a while; the group answers `modifying` until then
                group.status = "modifying"
                stores._cache_later(backend.region_name, group.replication_group_id,
                                    node_type)
            return ActionResult({"ReplicationGroup": group})

        ElastiCacheBackend.create_replication_group = create_replication_group
        ElastiCacheResponse.modify_replication_group = modify_replication_group

    # ------------------------------------------------------------------ S3 replication
    @staticmethod
    def _rules_to(bucket, key_name):
        """Destination bucket names of the bucket's enabled rules that match the key."""
        cfg = getattr(bucket, "replication", None) or {}
        out = []
        for rule in cfg.get("Rule") or []:
            if rule.get("Status") != "Enabled":
                continue
            prefix = rule.get("Prefix")
            filt = rule.get("Filter")
            if prefix is None and isinstance(filt, dict):
                prefix = filt.get("Prefix")
            if prefix and not key_name.startswith(prefix):
                continue
            dest = (rule.get("Destination") or {}).get("Bucket") or ""
            if dest:
                out.append(dest.split(":::")[-1])
        return out

    def _on_put(self, backend, bucket_name, key):
        if getattr(key, "_drb_replication_status", None) == "REPLICA":
            return
        bucket = backend.get_bucket(bucket_name)
        dests = self._rules_to(bucket, key.name)
        if not dests:
            return
        key._drb_replication_status = "PENDING"
        with self._lock:
            for dest in dests:
                self.pending.append([time.monotonic() + self.replication_delay, key,
                                     bucket_name, dest])

    def _replicate_due(self):
        from moto.s3.models import s3_backends
        backend = s3_backends[self.glue.account]["global"]
        now = time.monotonic()
        with self._lock:
            due = [p for p in self.pending if p[0] <= now]
        for item in due:
            if self.stalled:
                break
            _, key, src_name, dest = item
            try:
                src = backend.get_bucket(src_name)
            except Exception:
                src = None
            if src is not None and src.region_name in self.glue.down_regions:
                continue                     # the source region is down: it waits there
            with self._lock:
                if item in self.pending:
                    self.pending.remove(item)
            try:
                copy = self._orig_put(backend, dest, key.name, key.value)
                copy.set_metadata(dict(key.metadata), replace=True)
                copy._drb_replication_status = "REPLICA"
                key._drb_replication_status = "COMPLETED"
                self.replicated += 1
            except Exception as e:
                key._drb_replication_status = "FAILED"
                self.glue._fail("S3 replication %s/%s -> %s" % (src_name, key.name, dest), e)

    # ------------------------------------------------------------------ ElastiCache
    def _cache_later(self, region, group_id, node_type):
        with self._lock:
            self.cache_due[(region, group_id)] = (time.monotonic() + self.cache_delay,
                                                  node_type)

    def settle(self):
        """Finishes every pending cache change now: what the seed made is there, available,
        when the sandbox is up (a test takes its before-state right after)."""
        with self._lock:
            for k, (_, node_type) in list(self.cache_due.items()):
                self.cache_due[k] = (0.0, node_type)
        self._cache_due()

    def _cache_due(self):
        from moto.elasticache.models import elasticache_backends
        now = time.monotonic()
        with self._lock:
            due = [(k, v) for k, v in self.cache_due.items() if v[0] <= now]
            for k, _ in due:
                self.cache_due.pop(k, None)
        for (region, group_id), (_, node_type) in due:
            group = elasticache_backends[self.glue.account][region].replication_groups.get(
                group_id)
            if group is None:
                continue
            if node_type:
                group.cache_node_type = node_type
            group.status = "available"
            self.log("elasticache %s/%s available%s" % (
                region, group_id, " as " + node_type if node_type else ""))

    def _loop(self):
        while not self._stop.wait(0.2):
            try:
                self._replicate_due()
                self._cache_due()
            except Exception as e:
                self.glue._fail("stores", e)

    # ------------------------------------------------------------------ region drill state
    # `sandbox region-state save|restore` (glue.region_state) also resets what the region
    # drill changes here: the eu-west-1 scalable targets' bounds and the cache groups it
    # created or scaled.
    def save_region(self, region):
        from moto.applicationautoscaling.models import applicationautoscaling_backends
        from moto.elasticache.models import elasticache_backends
        aas = applicationautoscaling_backends[self.glue.account][region]
        groups = elasticache_backends[self.glue.account][region].replication_groups
        return {"targets": {(dim, rid): (t.min_capacity, t.max_capacity)
                            for dim, rid, t in self._targets(aas)},
                "caches": {gid: g.cache_node_type for gid, g in groups.items()}}

    def restore_region(self, region, saved):
        from moto.applicationautoscaling.models import applicationautoscaling_backends
        from moto.elasticache.models import elasticache_backends
        aas = applicationautoscaling_backends[self.glue.account][region]
        for dim, rid, t in self._targets(aas):
            bounds = saved["targets"].get((dim, rid))
            if bounds:
                t.min_capacity, t.max_capacity = bounds
        groups = elasticache_backends[self.glue.account][region].replication_groups
        with self._lock:
            for gid in list(groups):
                self.cache_due.pop((region, gid), None)
                if gid not in saved["caches"]:
                    del groups[gid]
                else:
                    groups[gid].cache_node_type = saved["caches"][gid]
                    groups[gid].status = "available"

    @staticmethod
    def _targets(aas):
        for dim, by_rid in aas.targets.items():
            for rid, t in by_rid.items():
                yield dim, rid, t

    def stall(self, args):
        """S3 replication stops (what a broken replication role or a throttled destination
        looks like): objects put from now on stay PENDING until `down`."""
        self.stalled = True
        with self._lock:
            return {"s3_replication": "stalled", "pending": len(self.pending)}

    def status(self):
        with self._lock:
            return {"s3_replication_pending": len(self.pending),
                    "s3_replication_stalled": self.stalled,
                    "s3_replicated": self.replicated,
                    "elasticache_changing": sorted("%s/%s" % k for k in self.cache_due)}
