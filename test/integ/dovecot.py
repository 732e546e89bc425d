"""dovecot.py - a private Dovecot submission server for postern's SASL
tests: SCRAM-SHA-1 and SCRAM-SHA-256 checked by an independent, real
server implementation (Dovecot's auth service), not by code of ours.

Debian 12's dovecot-core + dovecot-submissiond (2.3.19, installed by
scripts/install-deps) run as a private instance: its own config file in a
fresh directory under /tmp, its own base_dir, state_dir and log file,
listening on 127.0.0.1 only; /etc/dovecot and any system Dovecot are
never read or touched (`dovecot -F -c CONF`, and every path in CONF is
ours). It starts in about a second.

    dv = Dovecot(relay=smarthost, cert=tls_certs.good.cert,
                 key=tls_certs.good.key, users={"alice": "pw1"}).start()
    ... relayhost = [localhost]:<dv.port>, smtp_tls_CAfile = test CA ...
    dv.stop()

What it serves:
  port       submission with STARTTLS (RFC 3207). ssl = required: no
             AUTH of any kind before TLS (Dovecot still lists the
             mechanisms in the clear EHLO reply, but refuses AUTH).
  tls_port   submissions, TLS from the first byte (RFC 8314, port 465).
  AUTH       the mechanisms given (default PLAIN LOGIN SCRAM-SHA-1
             SCRAM-SHA-256, advertised in this order; .mechanisms). Dovecot
             2.3 has no channel binding: SCRAM-*-PLUS is not offered, a
             client that tries it gets "504 5.5.4 Unsupported
             authentication mechanism.", and a client-first message with
             gs2 flag "p" is refused; flags "n" and "y" are accepted.
             Success is "235 2.7.0 Logged in.", a wrong password "535
             5.7.8 Authentication failed." (auth_failure_delay = 0: no
             2-second wait).
  users      {user: password}, in a passwd-file. scheme "PLAIN" (default)
             stores them as {PLAIN}: every mechanism works. "SCRAM-SHA-256"
             or "SCRAM-SHA-1" stores only that SCRAM verifier, made by
             `doveadm pw` (iteration count 4096): the server then never
             knows the password, and only that SCRAM mechanism (and
             PLAIN/LOGIN, checked against it) can succeed.
  relay      Dovecot's submission service does not store mail: once a
             client authenticated it connects to submission_relay_host =
             the given Smarthost (clear text, no AUTH, no XCLIENT) and
             relays every message there. The smarthost must be running
             before a client authenticates (else Dovecot says 451 and
             hangs up). Dovecot adds "Received: from <helo> ([127.0.0.1])
             by dovecot.test.example with ESMTPSA id <ID> ...".

Who authenticated, from Dovecot's own log (log_text(); auth_verbose):
  logins()    [{"user", "method", "session", "tls"}] from
              "submission-login: Info: Login: user=<alice>,
              method=SCRAM-SHA-256, rip=..., TLS, session=<...>"
  failures()  [{"user", "mechanism", "why"}] from "auth: Info:
              scram-sha-256(alice,127.0.0.1,<...>): Password mismatch"
              (and "unknown user"), plus the "Authenticate ... failed"
              lines of unsupported mechanisms (user None)
  relayed()   [{"user", "id", "from", "session", "method"}] from
              "submission(alice)<pid><session>: Info: Successfully relayed
              message: from=<...>, size=N, id=<ID>, ..."
  auth_of(msg) {"user", "method"} for a Message the relay received, found
              through the Received header's id; None when not found.

Running as root (CI does): Dovecot refuses to start as root unless
default_internal_user (dovecot) and default_login_user (dovenull) exist;
dovecot-core's postinst creates both. Its auth process runs as dovecot,
so the instance directory is made world-readable under /tmp (a pytest
tmp_path is not), and it is removed by stop().
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

__all__ = ["Dovecot", "DovecotMissing", "DOVECOT", "DOVEADM"]

DOVECOT = os.environ.get("DOVECOT", "/usr/sbin/dovecot")
DOVEADM = os.environ.get("DOVEADM", "/usr/bin/doveadm")
DEFAULT_MECHANISMS = ("PLAIN", "LOGIN", "SCRAM-SHA-1", "SCRAM-SHA-256")

_CONF = """\
# Private Dovecot instance for postern's tests (test/integ/dovecot.py).
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = postern-test-{port}
log_path = {dir}/dovecot.log
protocols = submission
listen = 127.0.0.1
hostname = dovecot.test.example
ssl = required
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = {mechanisms}
auth_verbose = yes
auth_failure_delay = 0
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
mail_location = maildir:{dir}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={dir}/home
}}
submission_relay_host = 127.0.0.1
submission_relay_port = {relay_port}
submission_relay_trusted = no
submission_relay_ssl = no
service submission-login {{
  inet_listener submission {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener submissions {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
"""


class DovecotMissing(Exception):
    """The dovecot binaries are not installed."""


def _free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (free when asked)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _listening(port, greeting=True):
    """Whether 127.0.0.1:port accepts (and says 220, when greeting)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            if not greeting:
                return True
            s.settimeout(5)
            return s.recv(512).startswith(b"220")
    except OSError:
        return False


def missing():
    """None when dovecot can run here, else why not (a message)."""
    for path in (DOVECOT, DOVEADM,
                 "/usr/lib/dovecot/submission",
                 "/usr/lib/dovecot/submission-login"):
        if not os.access(path, os.X_OK):
            return ("%s is missing: install dovecot-core and "
                    "dovecot-submissiond (scripts/install-deps does)" % path)
    return None


class Dovecot:
    """A private Dovecot submission server (see the module docstring)."""

    def __init__(self, relay, cert, key, users, *,
                 mechanisms=DEFAULT_MECHANISMS, scheme="PLAIN"):
        self.relay = relay
        self.cert = cert
        self.key = key
        self.users = dict(users)
        self.mechanisms = [m.upper() for m in mechanisms]
        self.scheme = scheme.upper()
        self.dir = None
        self.port = None
        self.tls_port = None
        self.proc = None

    # ---- life cycle ---------------------------------------------------
    def start(self, timeout=20):
        """Start (about a second); retried with other ports when one was
        taken between choosing it and Dovecot's bind."""
        why = missing()
        if why:
            raise DovecotMissing(why)
        if self.proc is not None:
            return self
        for attempt in range(3):
            try:
                return self._start(timeout)
            except RuntimeError as e:
                if attempt == 2 or "in use" not in str(e):
                    raise
        return self

    def _start(self, timeout):
        self.dir = tempfile.mkdtemp(prefix="postern-dovecot-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        for sub in ("run", "state", "home", "mail"):
            os.mkdir(os.path.join(self.dir, sub))
        shutil.copyfile(self.cert, os.path.join(self.dir, "cert.pem"))
        shutil.copyfile(self.key, os.path.join(self.dir, "key.pem"))
        os.chmod(os.path.join(self.dir, "key.pem"), 0o600)
        self.port, self.tls_port = _free_ports(2)
        conf = self.conf_path = os.path.join(self.dir, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(_CONF.format(dir=self.dir, port=self.port,
                                 tls_port=self.tls_port,
                                 relay_port=self.relay.port,
                                 mechanisms=" ".join(
                                     m.lower() for m in self.mechanisms)))
        self._write_passwd()
        out = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", conf], stdin=subprocess.DEVNULL,
            stdout=out, stderr=out, start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                status = self.proc.returncode
                text = self.log_text() + self._stderr()
                self.stop()
                raise RuntimeError("dovecot exited (status %s) at start:\n%s"
                                   % (status, text))
            if _listening(self.port) and _listening(self.tls_port, False):
                return self
            if time.monotonic() > deadline:
                text = self.log_text() + self._stderr()
                self.stop()
                raise RuntimeError("dovecot did not listen on 127.0.0.1:%d "
                                   "and :%d within %ss:\n%s" % (
                                       self.port, self.tls_port, timeout,
                                       text))
            time.sleep(0.1)

    def _write_passwd(self):
        lines = []
        for user, password in self.users.items():
            if ":" in user or "\n" in user + password:
                raise ValueError("user %r: no ':' or newline in a "
                                 "passwd-file" % user)
            if self.scheme == "PLAIN":
                # {PLAIN} is taken literally up to the next ':'.
                if ":" in password:
                    raise ValueError("password of %r: no ':' in a "
                                     "{PLAIN} passwd-file entry" % user)
                stored = "{PLAIN}" + password
            else:
                stored = self.hash(password, self.scheme)
            lines.append("%s:%s::::::\n" % (user, stored))
        path = os.path.join(self.dir, "passwd")
        with open(path, "w") as f:
            f.writelines(lines)
        os.chmod(path, 0o644)

    @staticmethod
    def hash(password, scheme="SCRAM-SHA-256"):
        """`doveadm pw -s scheme`, without any config: "{SCHEME}..."."""
        cp = subprocess.run([DOVEADM, "-O", "pw", "-s", scheme, "-p",
                             password], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, check=False)
        out = cp.stdout.decode().strip()
        if cp.returncode != 0 or not out.startswith("{%s}" % scheme):
            raise RuntimeError("doveadm pw -s %s: exit %d: %s" % (
                scheme, cp.returncode, cp.stderr.decode(errors="replace")))
        return out

    def set_users(self, users):
        """Replace the users (passwd-file is read again on each login)."""
        self.users = dict(users)
        self._write_passwd()

    def stop(self):
        """SIGTERM, wait (then SIGKILL the group); remove the directory."""
        p, self.proc = self.proc, None
        if p is not None:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self.dir is not None:
            self._last_log = self.log_text()
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    close = stop

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- observation --------------------------------------------------
    def log_text(self):
        """Dovecot's log (kept after stop())."""
        if self.dir is None:
            return getattr(self, "_last_log", "")
        try:
            with open(os.path.join(self.dir, "dovecot.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _stderr(self):
        try:
            with open(os.path.join(self.dir, "stderr.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except (FileNotFoundError, TypeError):
            return ""

    _LOGIN = re.compile(r"submission-login: Info: Login: user=<([^>]*)>, "
                        r"method=([A-Z0-9-]+),.*?(, TLS)?, "
                        r"session=<([^>]+)>")
    _FAIL = re.compile(r"auth: Info: ([a-z0-9-]+)\(([^,]*),[^)]*\): (.*)$")
    _UNSUPPORTED = re.compile(r"submission-login: Info: Authenticate "
                              r"(\S+) failed: (.*?): user=<([^>]*)>")
    _RELAYED = re.compile(r"submission\(([^)]*)\)<\d+><([^>]+)>: Info: "
                          r"Successfully relayed message: from=<([^>]*)>, "
                          r".*?id=(\S+?),")

    def logins(self):
        out = []
        for line in self.log_text().splitlines():
            m = self._LOGIN.search(line)
            if m:
                out.append({"user": m.group(1), "method": m.group(2),
                            "tls": bool(m.group(3)),
                            "session": m.group(4)})
        return out

    def failures(self):
        out = []
        for line in self.log_text().splitlines():
            m = self._FAIL.search(line)
            if m:
                out.append({"user": m.group(2),
                            "mechanism": m.group(1).upper(),
                            "why": m.group(3)})
                continue
            m = self._UNSUPPORTED.search(line)
            if m:
                out.append({"user": m.group(3) or None,
                            "mechanism": m.group(1).upper(),
                            "why": m.group(2)})
        return out

    def relayed(self):
        methods = {l["session"]: l["method"] for l in self.logins()}
        out = []
        for line in self.log_text().splitlines():
            m = self._RELAYED.search(line)
            if m:
                out.append({"user": m.group(1), "session": m.group(2),
                            "from": m.group(3), "id": m.group(4),
                            "method": methods.get(m.group(2))})
        return out

    def auth_of(self, msg):
        """{"user", "method"} of the client that submitted msg (a Message
        the relay smarthost accepted), or None."""
        head = msg.data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
        m = re.search(r"(?m)^Received: from .*\n(?:[ \t].*\n)*?[ \t]+id "
                      r"(\S+)", head.replace("\r\n", "\n"))
        if not m:
            return None
        for r in self.relayed():
            if r["id"] == m.group(1):
                return {"user": r["user"], "method": r["method"]}
        return None

    def __repr__(self):
        return "<Dovecot 127.0.0.1:%s/%s relay %s %s>" % (
            self.port, self.tls_port, self.relay.port, self.mechanisms)
