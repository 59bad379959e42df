"""Endpoints that misbehave below HTTP: one answers bytes that are not HTTP, one accepts the
connection and never answers. A garbage answer fails the step (exit 1, not a refusal); a hung
endpoint costs the step its timeout once, not once per attempt of the AWS call."""
import subprocess

from drbtest import check, events, main

# A raw TCP server on a free loopback port (printed first): "garbage" answers every
# connection with bytes that are not HTTP, "hang" reads and never answers.
RAW_SERVER = r"""
import socket, sys, threading, time
mode = sys.argv[1]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
threading.Timer(60, lambda: __import__("os")._exit(0)).start()
held = []
def serve(c):
    c.settimeout(60)
    try:
        c.recv(65536)
        if mode == "garbage":
            c.sendall(b"THIS IS NOT HTTP\r\n\x00\xff\xfe garbage\r\n\r\n")
            c.close()
        else:
            held.append(c)
    except OSError:
        pass
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def start_raw_server(mode):
    server = subprocess.Popen(["python3", "-c", RAW_SERVER, mode], stdout=subprocess.PIPE,
                              text=True)
    try:
        return server, int(server.stdout.readline())
    except Exception:
        server.kill()
        server.wait()
        raise


def aws_env(c, port):
    return {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-example",
            "AWS_CONFIG_FILE": c.path("none"), "AWS_SHARED_CREDENTIALS_FILE": c.path("none"),
            "AWS_PROFILE": ""}


def test_garbage_http_request_fails_the_step(c):
    server, port = start_raw_server("garbage")
    try:
        rb = c.write("g.yaml", f"""
            version: 1
            name: garbage-http
            steps:
              - id: get
                action: http.request
                with: {{ url: "http://127.0.0.1:{port}/" }}
        """)
        r = c.drbook("run", rb, "--audit", "run.jsonl")
        check(r.code == 1, "a garbage answer fails the run (exit 1, not a refusal)", r)
        end = events(c.log(), "step.end", "get")[0]["data"]
        check(end["status"] == "failed", f"the step failed: {end}")
        run_end = events(c.log(), "run.end")[0]["data"]
        check(run_end["status"] != "refused", f"not a refusal: {run_end}")
    finally:
        server.kill()
        server.wait()


def test_garbage_aws_answer_fails_the_step(c):
    server, port = start_raw_server("garbage")
    try:
        rb = c.write("a.yaml", """
            version: 1
            name: garbage-aws
            steps:
              - id: who
                action: aws.sts.get_caller_identity
        """)
        r = c.drbook("run", rb, "--audit", "run.jsonl", env=aws_env(c, port))
        check(r.code == 1, "a garbage answer fails the run (exit 1, not a refusal)", r)
        end = events(c.log(), "step.end", "who")[0]["data"]
        check(end["status"] == "failed", f"the step failed: {end}")
    finally:
        server.kill()
        server.wait()


def test_hung_aws_endpoint_costs_the_step_timeout_once(c):
    # 4 attempts of the AWS call share the step's 3 s, not 3 s (or 30 s) each
    server, port = start_raw_server("hang")
    try:
        rb = c.write("h.yaml", """
            version: 1
            name: hung-aws
            steps:
              - id: who
                action: aws.sts.get_caller_identity
                timeout: 3s
        """)
        r = c.drbook("run", rb, "--audit", "run.jsonl", env=aws_env(c, port), timeout=60)
        check(r.code == 1, "a hung endpoint fails the run", r)
        end = events(c.log(), "step.end", "who")[0]["data"]
        check(end["status"] == "failed" and end["code"] == "timeout", f"timed out: {end}")
        check(end["duration_ms"] < 3500, f"within the step's 3 s: {end['duration_ms']} ms", r)
        check(r.elapsed < 6, f"the run ended in {r.elapsed:.1f} s", r)
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main(globals())
