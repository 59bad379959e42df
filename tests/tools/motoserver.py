"""One standalone moto server for a test: `with MotoServer() as moto:` starts moto's threaded
server on a free loopback port in a child process and stops it on exit, also when the test
fails. moto.url is its endpoint, moto.env() the environment a drbook or AWS CLI call needs
(no other AWS configuration leaks in), moto.client(SERVICE) a boto3 client on it.

serialise_dynamodb=True makes moto's DynamoDB decide writes one item at a time as the real
service does (moto's threaded server does not lock its backend, so two conditional writes could
interleave); the lease tests need it.

Run as a program (`python3 motoserver.py PORT [--serialise-dynamodb]`) it is the child: it prints
"ready" once serving and stops when its stdin closes."""
import os
import socket
import subprocess
import sys
import threading

REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    def __init__(self, serialise_dynamodb=False, region=REGION):
        self.port = free_port()
        self.region = region
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, os.path.abspath(__file__), str(self.port)]
        if serialise_dynamodb:
            args.append("--serialise-dynamodb")
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


def _serve(port, serialise_dynamodb):
    from moto.server import ThreadedMotoServer

    if serialise_dynamodb:
        _serialise_dynamodb()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), "--serialise-dynamodb" in sys.argv[2:])
