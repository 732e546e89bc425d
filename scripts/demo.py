#!/usr/bin/python3
"""demo.py - postern end to end in a throw-away sandbox.

    /usr/bin/python3 scripts/demo.py BINDIR      (what `make demo` runs)

Makes a test CA and a certificate for "localhost" with openssl, starts the
test smarthost (test/smarthost.py) with STARTTLS on a free port of
127.0.0.1, writes a main.cf that relays to it with postern's default TLS
level (verify: the certificate must chain to the CA and name the host),
runs `postern check` against it, starts `posternd -f`, sends one message
with `sendmail -t`, waits for the smarthost to receive it, prints the
daemon's log and the message as the smarthost got it (and the TLS it came
over), and removes everything it made. Nothing outside the temporary
directory is touched.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMARTHOST = os.path.join(REPO, "test", "smarthost.py")
sys.path.insert(0, os.path.join(REPO, "test", "integ"))
import tlscerts  # noqa: E402  (test/integ/tlscerts.py: openssl CLI only)
TIMEOUT = 30

MESSAGE = """\
To: You <you@example.com>
Subject: Hello from postern

This message went through sendmail, the spool and posternd, and was
relayed over SMTP with STARTTLS (certificate verified) to the demo
smarthost on 127.0.0.1.
"""


def heading(text):
    print("\n== %s %s" % (text, "=" * max(3, 66 - len(text))))


def wait_for(pred, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return pred()


def stop(proc, group=False):
    if proc is None or proc.poll() is not None:
        return
    try:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        proc.wait(10)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
        except ProcessLookupError:
            pass
        proc.wait(10)


def run(bindir, tmp):
    for prog in ("sendmail", "posternd", "postern"):
        if not os.access(os.path.join(bindir, prog), os.X_OK):
            sys.exit("demo: %s/%s is missing: run `make` first" %
                     (bindir, prog))
    conf = os.path.join(tmp, "etc")
    spool = os.path.join(tmp, "spool")
    received = os.path.join(tmp, "received")
    log = os.path.join(tmp, "posternd.log")
    os.makedirs(conf)
    sh = daemon = None
    try:
        heading("test certificates (openssl)")
        certs = tlscerts.make_certs(os.path.join(tmp, "certs"))
        print("CA %s, server certificate for localhost %s" %
              (certs.ca, certs.good.cert))

        heading("smarthost")
        sh = subprocess.Popen([sys.executable, SMARTHOST, "--port", "0",
                               "--dir", received,
                               "--tls-cert", certs.good.cert,
                               "--tls-key", certs.good.key],
                              stdout=subprocess.PIPE, text=True)
        line = sh.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            sys.exit("demo: the smarthost did not start")
        port = int(line[1])
        print("test smarthost (aiosmtpd) listening on 127.0.0.1:%d, "
              "offering STARTTLS" % port)

        heading("main.cf")
        maincf = ("queue_directory = %s\n"
                  "relayhost = [localhost]:%d\n"
                  "# TLS: postern's default level is verify. Trust the\n"
                  "# demo CA (a real relay is checked against the system's\n"
                  "# CA store).\n"
                  "smtp_tls_CAfile = %s\n"
                  "myhostname = client.demo.example\n"
                  "alias_maps =\n"
                  "# The demo's daemon runs as you (an installed one\n"
                  "# gives up root for the postern user).\n"
                  "mail_owner = %s\n" % (spool, port, certs.ca,
                                         pwd.getpwuid(os.geteuid()).pw_name))
        with open(os.path.join(conf, "main.cf"), "w") as f:
            f.write(maincf)
        print(maincf, end="")

        heading("postern check")
        cp = subprocess.run([os.path.join(bindir, "postern"), "-C", conf,
                             "check"])
        if cp.returncode != 0:
            sys.exit("demo: postern check exited %d" % cp.returncode)

        heading("posternd -f")
        with open(log, "wb") as lf:
            daemon = subprocess.Popen(
                [os.path.join(bindir, "posternd"), "-f", "-C", conf],
                stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                start_new_session=True)
        sock = os.path.join(spool, "public", "control")
        if not wait_for(lambda: os.path.exists(sock)
                        or daemon.poll() is not None) or \
                daemon.poll() is not None:
            print(open(log, errors="replace").read())
            sys.exit("demo: posternd did not start")
        print("posternd running, pid %d" % daemon.pid)

        heading("sendmail -t")
        print(MESSAGE, end="")
        cp = subprocess.run([os.path.join(bindir, "sendmail"), "-C", conf,
                             "-t", "-i", "-F", "Demo User", "-f", "demo"],
                            input=MESSAGE.encode())
        if cp.returncode != 0:
            sys.exit("demo: sendmail exited %d" % cp.returncode)
        print("(sendmail exited 0: the message is safe in the spool)")

        meta = os.path.join(received, "0001.json")
        ok = wait_for(lambda: os.path.exists(meta) and
                      "removed" in open(log, errors="replace").read())

        heading("posternd log")
        print(open(log, errors="replace").read(), end="")
        if not ok:
            sys.exit("demo: the message was not delivered within %ds" %
                     TIMEOUT)

        heading("received by the smarthost")
        with open(meta) as f:
            env = json.load(f)
        if env.get("tls"):
            print("(over %s, cipher %s)" % (env["tls"]["version"],
                                            env["tls"]["cipher"]))
        print("MAIL FROM:<%s> %s" % (env["mail_from"],
                                     " ".join(env["mail_options"])))
        for r in env["rcpt_tos"]:
            print("RCPT TO:<%s>" % r)
        print("DATA")
        with open(os.path.join(received, "0001.eml"), "rb") as f:
            sys.stdout.write(f.read().replace(b"\r\n", b"\n")
                             .decode(errors="replace"))
        print(".")
        heading("done")
        print("one message queued, relayed over verified TLS and removed "
              "from the queue")
        return 0
    finally:
        stop(daemon, group=True)
        stop(sh)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: demo.py BINDIR")
    tmp = tempfile.mkdtemp(prefix="postern-demo.")
    try:
        return run(os.path.abspath(sys.argv[1]), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
