"""One standalone moto server for a test: `with MotoServer() as moto:` starts moto's threaded
server on a free loopback port in a child process and stops it on exit, also when the test
fails. moto.url is its endpoint, moto.env() the environment a drbook or AWS CLI call needs
(no other AWS configuration leaks in), moto.client(SERVICE) a boto3 client on it.

serialise_dynamodb=True makes moto's DynamoDB decide writes one item at a time as the real
service does (moto's threaded server does not lock its backend, so two conditional writes could
interleave); the lease tests need it.

elasticache_modify=True adds ElastiCache ModifyReplicationGroup, which moto does not implement
(it answers 500): with ApplyImmediately the given settings take effect at once (moto changes
nothing gradually), without it they are left for the maintenance window, i.e. unchanged, as
AWS does. An unknown group is moto's own ReplicationGroupNotFoundFault.

Run as a program (`python3 motoserver.py PORT [--serialise-dynamodb] [--elasticache-modify]`) it is the child: it prints
"ready" once serving and stops when its stdin closes."""
import os
import subprocess
import sys
import threading

REGION = "us-east-1"


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox"))
from sandbox_lib.common import free_port  # noqa: E402  (inside $DRB_SANDBOX_PORTS when set)


class MotoServer:
    def __init__(self, serialise_dynamodb=False, region=REGION, elasticache_modify=False):
        self.port = free_port()
        self.region = region
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, os.path.abspath(__file__), str(self.port)]
        if serialise_dynamodb:
            args.append("--serialise-dynamodb")
        if elasticache_modify:
            args.append("--elasticache-modify")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("moto did not start (is moto[server] installed?)")

    def env(self, base=None, **extra):
        """base (default os.environ) with this moto as the only AWS endpoint and credentials."""
        env = dict(os.environ if base is None else base)
        env.update({"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": self.region,
                    "AWS_DEFAULT_REGION": self.region, "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
        env.pop("AWS_SESSION_TOKEN", None)
        env.pop("AWS_PROFILE", None)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def client(self, service, region=None):
        import boto3
        return boto3.client(service, endpoint_url=self.url, region_name=region or self.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _serialise_dynamodb():
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    for name in ("update_item", "put_item", "delete_item", "get_item"):
        orig = getattr(DynamoDBBackend, name)

        def wrapped(self, *a, __orig=orig, **k):
            with lock:
                return __orig(self, *a, **k)

        setattr(DynamoDBBackend, name, wrapped)


def _elasticache_modify():
    from moto.core.responses import ActionResult
    from moto.elasticache.responses import ElastiCacheResponse

    def modify_replication_group(self):
        group = self.elasticache_backend.describe_replication_groups(
            replication_group_id=self._get_param("ReplicationGroupId"))[0]
        if self._get_bool_param("ApplyImmediately"):
            for param, attr in (("ReplicationGroupDescription", "description"),
                                ("CacheNodeType", "cache_node_type"),
                                ("EngineVersion", "engine_version"),
                                ("CacheParameterGroupName", "cache_parameter_group_name"),
                                ("SecurityGroupIds", "security_group_ids"),
                                ("PrimaryClusterId", "primary_cluster_id")):
                if self._get_param(param) is not None:
                    setattr(group, attr, self._get_param(param))
            if self._get_int_param("SnapshotRetentionLimit") is not None:
                group.snapshot_retention_limit = self._get_int_param("SnapshotRetentionLimit")
            for param, attr in (("AutomaticFailoverEnabled", "automatic_failover"),
                                ("MultiAZEnabled", "multi_az")):
                if self._get_bool_param(param) is not None:
                    setattr(group, attr,
                            "enabled" if self._get_bool_param(param) else "disabled")
        return ActionResult({"ReplicationGroup": group})

    ElastiCacheResponse.modify_replication_group = modify_replication_group


def _serve(port, serialise_dynamodb, elasticache_modify=False):
    from moto.server import ThreadedMotoServer

    if serialise_dynamodb:
        _serialise_dynamodb()
    if elasticache_modify:
        _elasticache_modify()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), "--serialise-dynamodb" in sys.argv[2:],
           "--elasticache-modify" in sys.argv[2:])
