"""A key file others on the machine can read gets a warning (issue 9 point 9), however it is
named: --audit-key-file, DRBOOK_AUDIT_KEY_FILE, --sign-key-file, DRBOOK_SIGN_KEY_FILE; the run
goes on. A key file only its owner can read gets none."""
import os
import subprocess

from drbtest import check, main

RB = """
    version: 1
    name: keys
    steps:
      - id: a
        action: sleep
        with: { duration: 0s }
"""


def keys(c, mode):
    hk = c.path("hmac.key")
    with open(hk, "w") as f:
        f.write("a-secret-hmac-key-for-the-test\n")
    sk = c.path("sign.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", sk], check=True,
                   capture_output=True)
    os.chmod(hk, mode)
    os.chmod(sk, mode)
    return hk, sk


def test_loose_key_files_from_options_are_warned(c):
    rb = c.write("rb.yaml", RB)
    hk, sk = keys(c, 0o644)
    r = c.drbook("run", rb, "--quiet", "--audit", "run.jsonl", "--audit-key-file", hk,
                 "--sign-key-file", sk)
    check(r.code == 0, "the run goes on", r)
    check(f"audit key file {hk} is readable or writable by group or others (mode 644): "
          "chmod 600 it" in r.err, "the HMAC key file is warned about", r)
    check(f"signing key file {sk} is readable" in r.err, "the signing key file too", r)
    v = c.drbook("audit", "verify", "run.jsonl", "--key-file", hk)
    check(v.code == 0 and "audit key file" in v.err, "verify warns about its key file too", v)


def test_loose_key_files_from_the_environment_are_warned(c):
    rb = c.write("rb.yaml", RB)
    hk, sk = keys(c, 0o640)
    r = c.drbook("run", rb, "--quiet", "--audit", "run.jsonl",
                 env={"DRBOOK_AUDIT_KEY_FILE": hk, "DRBOOK_SIGN_KEY_FILE": sk})
    check(r.code == 0, "the run goes on", r)
    check(f"audit key file {hk} is readable" in r.err and "(mode 640)" in r.err,
          "DRBOOK_AUDIT_KEY_FILE is warned about", r)
    check(f"signing key file {sk} is readable" in r.err, "DRBOOK_SIGN_KEY_FILE too", r)
    check(any(x["event"] == "head" for x in c.log()), "the signing key was used")


def test_private_key_files_are_not_warned(c):
    rb = c.write("rb.yaml", RB)
    hk, sk = keys(c, 0o600)
    r = c.drbook("run", rb, "--quiet", "--audit", "run.jsonl", "--sign-key-file", sk,
                 env={"DRBOOK_AUDIT_KEY_FILE": hk})
    check(r.code == 0, "the run succeeds", r)
    check("warning" not in r.err, "no warning for mode 600", r)


if __name__ == "__main__":
    main(globals())
