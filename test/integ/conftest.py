"""conftest.py - fixtures for postern's integration tests.

The tests run the real programs (sendmail, posternd, postern) from
$POSTERN_BIN, normally the ASan/UBSan builds in test/build that `make integ`
names, against the test smarthost (test/smarthost.py) on 127.0.0.1.

Every test gets a Sandbox: a temporary config directory with main.cf, a
spool under it, a running smarthost on a free port, and helpers to run
the programs. Every process a test starts is killed at the end, even when
the test fails (posternd runs in its own session: its delivery workers
are killed with it). A sanitizer report in any program's stderr fails
the test.

Run with /usr/bin/python3 (Debian's python3-aiosmtpd and python3-pytest).
"""

import email
import email.policy
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from smarthost import Smarthost  # noqa: E402

# ASan builds are slow; every wait is generous and polled.
TIMEOUT = float(os.environ.get("POSTERN_TEST_TIMEOUT", "30"))
TEST_LIMIT = int(os.environ.get("POSTERN_TEST_LIMIT", "150"))

EX_USAGE = 64
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75
EX_CONFIG = 78

SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|"
                       r"SUMMARY: (Address|Undefined)")
QID_RE = re.compile(r"^[0-9A-F]+$")
# The recipient of Sandbox.settle()'s probe messages.
SETTLE_RCPT = "settle-probe@example.com"

SPOOL_MODES = {"incoming/tmp": 0o1730, "incoming/new": 0o1770,
               "public": 0o755}
SPOOL_DIRS = ("incoming/tmp", "incoming/new", "active", "deferred", "hold",
              "corrupt", "state", "public", "pid")


def _bin_dir():
    d = os.environ.get("POSTERN_BIN")
    if not d:
        pytest.fail("POSTERN_BIN is not set: run `make integ`, or "
                    "POSTERN_BIN=$PWD/test/build /usr/bin/python3 -m pytest "
                    "test/integ", pytrace=False)
    return d


@pytest.fixture(scope="session")
def bins():
    """Paths of the three programs; fails loudly when one is missing."""
    d = _bin_dir()
    out = {}
    for name in ("sendmail", "posternd", "postern"):
        p = os.path.join(d, name)
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            pytest.fail("POSTERN_BIN=%s: %s is missing or not executable "
                        "(run `make check-build`)" % (d, name),
                        pytrace=False)
        out[name] = p
    return out


# halt_on_error: a sanitizer report must end the program visibly (the
# test build has -fno-sanitize-recover=all too). Set in this process's
# environment as well, so that the programs a test starts with an
# environment of its own (a shell, unshare, setpriv, an installed copy)
# inherit them.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
os.environ.update(SANITIZER_ENV)


def _env():
    env = dict(os.environ)
    env.pop("POSTERN_CONFIG_DIR", None)
    env.update(SANITIZER_ENV)
    env["LC_ALL"] = "C"
    env["TZ"] = "UTC"
    return env


def check_sanitizer(text, what):
    """Fail when a sanitizer reported something."""
    if SANITIZER.search(text):
        pytest.fail("sanitizer report from %s:\n%s" % (what, text[-6000:]),
                    pytrace=False)


class Sandbox:
    """One test's config dir, spool, smarthost and programs."""

    def __init__(self, root, bins, smarthost):
        self.root = str(root)
        self.bins = bins
        self.smarthost = smarthost
        self.confdir = os.path.join(self.root, "etc")
        self.spool = os.path.join(self.root, "spool")
        self.logfile = os.path.join(self.root, "posternd.log")
        os.makedirs(self.confdir)
        self.daemon = None
        self._daemon_logs = []
        self.extra = {}
        self.write_config()

    # ---- configuration ------------------------------------------------
    def base_params(self):
        return {
            "queue_directory": self.spool,
            "relayhost": "[127.0.0.1]:%d" % self.smarthost.port,
            "smtp_tls_security_level": "none",
            "myhostname": "client.test.example",
            # No /etc/aliases lookups in the sandbox.
            "alias_maps": "",
            # The spool belongs to whoever runs the tests, even as root
            # on a machine where a postern user exists.
            "mail_owner": pwd.getpwuid(os.geteuid()).pw_name,
            "minimal_backoff_time": "1h",
            "maximal_backoff_time": "2h",
        }

    def write_config(self, **params):
        """(Re)write main.cf: the sandbox's settings, then params."""
        self.extra.update(params)
        p = self.base_params()
        p.update(self.extra)
        text = "".join("%s = %s\n" % (k, v) for k, v in p.items())
        self.write_main_cf(text)
        return p

    def write_main_cf(self, text):
        path = os.path.join(self.confdir, "main.cf")
        if os.path.isdir(path):
            shutil.rmtree(path)
        with open(path, "w") as f:
            f.write(text)
        return path

    def make_spool(self):
        """Create the spool tree as posternd would (for daemon-less tests)."""
        for d in SPOOL_DIRS:
            path = os.path.join(self.spool, d)
            os.makedirs(path, exist_ok=True)
            os.chmod(path, SPOOL_MODES.get(d, 0o700))

    # ---- programs -----------------------------------------------------
    def run(self, prog, args, input=b"", env=None, timeout=None):
        """Run one program to completion; stdout/stderr as bytes."""
        e = _env()
        if env:
            e.update(env)
        if isinstance(input, str):
            input = input.encode()
        cp = subprocess.run([self.bins[prog]] + list(args), input=input,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=e, timeout=timeout or TIMEOUT * 2)
        check_sanitizer(cp.stderr.decode(errors="replace"),
                        "%s %s" % (prog, " ".join(args)))
        return cp

    def send(self, args, input=b"", env=None, config=True):
        """Run sendmail -C confdir ARGS with input on stdin."""
        pre = ["-C", self.confdir] if config else []
        return self.run("sendmail", pre + list(args), input, env)

    def send_ok(self, args, input=b""):
        """send() that must succeed; returns the new queue ID when one
        new file appeared in incoming/new (None if the daemon took it)."""
        before = set(self.queue_files("incoming/new"))
        cp = self.send(args, input)
        assert cp.returncode == 0, (
            "sendmail %s: exit %d, stderr %r" %
            (args, cp.returncode, cp.stderr.decode(errors="replace")))
        new = set(self.queue_files("incoming/new")) - before
        return new.pop() if len(new) == 1 else None

    def postern(self, args, env=None):
        return self.run("postern", ["-C", self.confdir] + list(args),
                        env=env)

    # ---- the daemon ---------------------------------------------------
    def start_daemon(self, wait_ready=True):
        """posternd -f -C confdir, in its own session, stderr to logfile."""
        assert self.daemon is None or self.daemon.poll() is not None, \
            "daemon already running"
        log = open(self.logfile, "ab")
        self.daemon = subprocess.Popen(
            [self.bins["posternd"], "-f", "-C", self.confdir],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=_env(),
            start_new_session=True)
        log.close()
        if wait_ready:
            sock = os.path.join(self.spool, "public", "control")
            ok = wait_for(lambda: os.path.exists(sock)
                          or self.daemon.poll() is not None, TIMEOUT)
            if self.daemon.poll() is not None or not ok:
                pytest.fail("posternd did not start (exit %r, no %s); "
                            "log:\n%s" % (self.daemon.poll(), sock,
                                          self.log_text()), pytrace=False)
        return self.daemon

    def daemon_running(self):
        return self.daemon is not None and self.daemon.poll() is None

    def stop_daemon(self, timeout=None):
        """SIGTERM and wait; kill the process group if it does not stop."""
        if self.daemon is None:
            return None
        p = self.daemon
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout or TIMEOUT)
            except subprocess.TimeoutExpired:
                self._killpg(p, signal.SIGKILL)
                p.wait(10)
                pytest.fail("posternd ignored SIGTERM for %ss" %
                            (timeout or TIMEOUT), pytrace=False)
        # Workers of a stopped daemon must not linger.
        self._reap_group(p)
        self.daemon = None
        return p.returncode

    def kill_daemon(self, sig=signal.SIGKILL, group=True):
        """Send sig to posternd (and its workers when group) and reap it."""
        p = self.daemon
        assert p is not None and p.poll() is None, "daemon not running"
        if group:
            self._killpg(p, sig)
        else:
            p.send_signal(sig)
        p.wait(TIMEOUT)
        if group:
            self._reap_group(p)
        self.daemon = None
        return p.returncode

    @staticmethod
    def _killpg(p, sig):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass

    def _reap_group(self, p):
        # The session leader is gone; wait for its group to empty, then
        # kill what is left (a worker that outlived its parent).
        def gone():
            try:
                os.killpg(p.pid, 0)
                return False
            except ProcessLookupError:
                return True
        if not wait_for(gone, 10):
            self._killpg(p, signal.SIGKILL)
            wait_for(gone, 10)

    def cleanup(self):
        if self.daemon is not None:
            self._killpg(self.daemon, signal.SIGKILL)
            try:
                self.daemon.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self._reap_group(self.daemon)
            self.daemon = None

    def settle(self):
        """Wait, instead of sleeping, until the running daemon has acted on
        everything that was due when this was called: send a probe message
        to SETTLE_RCPT and wait for its "sent" line. The daemon picks the
        probe up in a later round than anything already due (a flush, a
        release), so mail that was to go out has left its queue directory
        by then: the test checks the spool and the relay. The relay counts
        the probe in .probes, not in .messages (Smarthost.probe_rcpt)."""
        rx = status_re(SETTLE_RCPT, "sent")
        n = len(self.log_lines(rx))
        self.smarthost.probe_rcpt = SETTLE_RCPT
        cp = self.send(["-i", SETTLE_RCPT], b"Subject: settle\n\nprobe\n")
        assert cp.returncode == 0, cp.stderr.decode(errors="replace")
        self.wait_log(rx, count=n + 1)

    # ---- observation --------------------------------------------------
    def log_text(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, pattern=None):
        """posternd's log lines, those matching the regex pattern if given."""
        lines = self.log_text().splitlines()
        if pattern is None:
            return lines
        rx = re.compile(pattern)
        return [l for l in lines if rx.search(l)]

    def wait(self, predicate, timeout=None, what=None):
        """wait_for(predicate) that fails at once when posternd, started
        and not stopped by the test, has died; returns the value."""
        def pred():
            v = predicate()
            if v:
                return v
            if self.daemon is not None and self.daemon.poll() is not None:
                pytest.fail("posternd died (status %r) while waiting for %s;"
                            " log:\n%s" % (self.daemon.returncode,
                                           what or "a condition",
                                           self.log_text()[-6000:]),
                            pytrace=False)
            return v
        v = wait_for(pred, timeout)
        if not v:
            pytest.fail("timed out after %ss waiting for %s; spool %r; "
                        "smarthost %r; log:\n%s" %
                        (timeout or TIMEOUT, what or "a condition",
                         self.all_queued(), self.smarthost.messages,
                         self.log_text()[-6000:]), pytrace=False)
        return v

    def wait_log(self, pattern, count=1, timeout=None):
        """Wait for count log lines matching pattern; return them."""
        ok = self.wait(lambda: len(self.log_lines(pattern)) >= count,
                       timeout, "log line %r" % pattern)
        if not ok:
            pytest.fail("no %d log line(s) matching %r within %ss; log:\n%s"
                        % (count, pattern, timeout or TIMEOUT,
                           self.log_text()[-6000:]), pytrace=False)
        return self.log_lines(pattern)

    def queue_files(self, dirname):
        """Names in spool/dirname (sorted; [] when it does not exist)."""
        try:
            return sorted(os.listdir(os.path.join(self.spool, dirname)))
        except FileNotFoundError:
            return []

    def all_queued(self):
        """{dir: [names]} for every spool dir holding messages."""
        out = {}
        for d in ("incoming/tmp", "incoming/new", "active", "deferred",
                  "hold", "corrupt"):
            names = self.queue_files(d)
            if names:
                out[d] = names
        return out

    def find_qid(self, qid):
        """The spool dirs that hold a file named qid."""
        return [d for d, names in self.all_queued().items() if qid in names]


def wait_for(predicate, timeout=None, interval=0.05):
    """Poll predicate until it is true (returns its value) or timeout."""
    deadline = time.monotonic() + (timeout or TIMEOUT)
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


def parse_msg(data):
    """The received DATA bytes as an email.message.EmailMessage."""
    return email.message_from_bytes(data.replace(b"\r\n", b"\n"),
                                    policy=email.policy.compat32)


def decoded_body(data):
    """The body of a single-part message, transfer-decoded, LF line ends."""
    msg = parse_msg(data)
    assert not msg.is_multipart()
    body = msg.get_payload(decode=True)
    return body.replace(b"\r\n", b"\n")


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def time_limit():
    """No test may hang the suite: SIGALRM after TEST_LIMIT seconds."""
    def alarm(signum, frame):
        raise TestTimeout("test ran over %ds" % TEST_LIMIT)
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TEST_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def smarthost(tmp_path):
    sh = Smarthost(str(tmp_path / "received")).start()
    yield sh
    sh.close()


@pytest.fixture
def sandbox(tmp_path, bins, smarthost, request):
    sb = Sandbox(tmp_path / "sb", bins, smarthost)
    try:
        yield sb
    finally:
        # A daemon the test did not stop or kill must still be running.
        died = sb.daemon is not None and sb.daemon.poll() is not None
        status = sb.daemon.returncode if died else None
        sb.cleanup()
        text = sb.log_text()
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed and text:
            sys.stderr.write("\n--- posternd log (%s) ---\n%s\n" %
                             (request.node.name, text[-8000:]))
        check_sanitizer(text, "posternd")
        if died:
            pytest.fail("posternd exited by itself during the test "
                        "(status %r); log:\n%s" % (status, text[-6000:]),
                        pytrace=False)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Lets the sandbox fixture see whether the test body failed.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


# ---- skips: none unnoticed, none in CI that CI should not have -------
#
# CI (CI=true, set by .ci/run) runs as root, may make user, mount,
# network and PID namespaces, and has every package scripts/install-deps
# installs (dovecot, pflogsumm, groff, shellcheck, util-linux, systemd's
# systemd-analyze...). A skip there hides a test that should have run, so
# under CI=true every skip is turned into a failure, except those whose
# reason matches OPTIONAL_SKIPS: what a clean clone legitimately lacks.
# Without CI=true skips stay skips; either way the summary counts them.
OPTIONAL_SKIPS = (
    # test_soho: ../shared/examples is beside the developers' working
    # copies only; a clone has test/soho-examples (compared when present).
    re.compile(r"is not beside this clone"),
)


def in_ci():
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def _skip_reason(rep):
    """The reason of a skipped report ("Skipped: " removed)."""
    lr = rep.longrepr
    reason = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
    return reason[len("Skipped: "):] if reason.startswith("Skipped: ") \
        else reason


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.skipped or hasattr(rep, "wasxfail"):
        return
    reason = _skip_reason(rep)
    if in_ci() and not any(rx.search(reason) for rx in OPTIONAL_SKIPS):
        rep.outcome = "failed"
        rep.ci_skip = reason
        rep.longrepr = ("CI=true and this test was skipped: %s\nCI must "
                        "provide this (root, namespaces, the packages of "
                        "scripts/install-deps); fix the runner, or list the "
                        "reason in OPTIONAL_SKIPS in conftest.py if a clean "
                        "clone legitimately lacks it." % reason)


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    counts = {}
    for rep in skipped:
        reason = _skip_reason(rep)
        counts[reason] = counts.get(reason, 0) + 1
    unexpected = [rep for key in ("failed", "error")
                  for rep in terminalreporter.stats.get(key, [])
                  if getattr(rep, "ci_skip", None) is not None]
    terminalreporter.write_line(
        "postern: %d test(s) skipped%s" %
        (len(skipped), "; CI=true: %d unexpected skip(s), failed" %
         len(unexpected) if in_ci() else ""))
    for reason, n in sorted(counts.items()):
        terminalreporter.write_line("  %d skipped: %s" % (n, reason))
    for rep in unexpected:
        terminalreporter.write_line("  unexpected skip, failed: %s: %s" %
                                    (rep.nodeid, rep.ci_skip))


def status_re(addr, status, port=None):
    """Regex for posternd's per-recipient line; group 1 is the queue ID."""
    relay = r"127\.0\.0\.1\[127\.0\.0\.1\]:%d" % port if port else r"\S+"
    return (r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ postern/smtp\[\d+\]: "
            r"([0-9A-F]+): to=<%s>, (?:orig_to=<[^>]*>, )?relay=%s, "
            r"delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, "
            r"dsn=\d\.\d{1,3}\.\d{1,3}, status=%s \(" %
            (re.escape(addr), relay, status))


def removed_re(qid):
    return r"postern/qmgr\[\d+\]: %s: removed$" % qid


def check_wire(raw):
    """The exact DATA bytes a correct client sends: CRLF lines, no bare
    CR or LF, stuffed dots, lines within 998 octets, final '.'."""
    assert raw.endswith(b"\r\n.\r\n"), raw[-40:]
    assert b"\r\r" not in raw, "doubled CR on the wire"
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"" and lines[-2] == b"."
    for i, line in enumerate(lines[:-2]):
        assert b"\n" not in line, "bare LF on the wire in line %d" % i
        assert b"\r" not in line, "bare CR on the wire in line %d" % i
        assert line != b".", "unstuffed lone dot in line %d" % i
        body = line[1:] if line.startswith(b"..") else line
        assert len(body) <= 998, "line %d is %d octets" % (i, len(body))


# ---- more smarthosts and sandboxes; TLS -----------------------------
#
# Tests that need a smarthost built differently (TLS, ...) or more than
# one sandbox use these factories instead of `smarthost` and `sandbox`.
# A sandbox made here gets the same end-of-test checks as `sandbox`.

def finish_sandboxes(sandboxes, request):
    """The `sandbox` fixture's end of test, for every sandbox in the list:
    kill what is left, show the log of a failed test, fail on a sanitizer
    report or a daemon that exited by itself."""
    ends = []
    for sb in sandboxes:
        died = sb.daemon is not None and sb.daemon.poll() is not None
        status = sb.daemon.returncode if died else None
        sb.cleanup()
        ends.append((sb, died, status))
    failed = getattr(request.node, "rep_call", None)
    for sb, died, status in ends:
        text = sb.log_text()
        if failed is not None and failed.failed and text:
            sys.stderr.write("\n--- posternd log (%s, %s) ---\n%s\n" %
                             (request.node.name, sb.root, text[-8000:]))
    for sb, died, status in ends:
        text = sb.log_text()
        check_sanitizer(text, "posternd")
        if died:
            pytest.fail("posternd exited by itself during the test "
                        "(status %r); log:\n%s" % (status, text[-6000:]),
                        pytrace=False)


@pytest.fixture
def smarthost_factory(tmp_path):
    """make(**options) -> a started Smarthost(tmp dir, **options)
    (options: see test/smarthost.py, e.g. tls_context=, implicit_tls=,
    advertise_starttls=); all are closed at the end of the test."""
    made = []

    def make(**options):
        d = tmp_path / ("received%d" % (len(made) + 1))
        sh = Smarthost(str(d), **options).start()
        made.append(sh)
        return sh
    yield make
    for sh in made:
        sh.close()


@pytest.fixture
def sandbox_factory(tmp_path, bins, request, smarthost_factory):
    """make(smarthost=None, **smarthost_options) -> a new Sandbox around
    smarthost, or around a new smarthost_factory(**smarthost_options).
    Each has its own directory; all get the `sandbox` fixture's checks at
    the end (their daemons are killed before the smarthosts close)."""
    made = []

    def make(smarthost=None, **smarthost_options):
        if smarthost is None:
            smarthost = smarthost_factory(**smarthost_options)
        elif smarthost_options:
            raise TypeError("smarthost options without a new smarthost")
        sb = Sandbox(tmp_path / ("sb%d" % (len(made) + 1)), bins, smarthost)
        made.append(sb)
        return sb
    try:
        yield make
    finally:
        finish_sandboxes(made, request)


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory):
    """The test PKI (test/integ/tlscerts.py make_certs), made once per
    session: .ca, .good, .unknown_ca, .expired, .wrong_name, .client..."""
    from tlscerts import make_certs
    return make_certs(str(tmp_path_factory.mktemp("tlscerts")))


# ---- SMTP AUTH: a real Dovecot submission server ----------------------
#
# test/integ/dovecot.py runs a private Dovecot (dovecot-core and
# dovecot-submissiond, installed by scripts/install-deps) on 127.0.0.1 in
# front of a test smarthost: SCRAM-SHA-1 and SCRAM-SHA-256 checked by an
# independent server implementation. The test smarthost itself offers
# AUTH with smarthost_factory(auth={user: secret}, ...) (see
# test/smarthost.py: PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER, and
# SCRAM-* with -PLUS run by Cyrus SASL).

DOVECOT_USERS = {"alice": "dovecot-pw-Alice1", "bob": "dovecot-pw-Bob2"}


@pytest.fixture
def dovecot_factory(tls_certs, smarthost_factory, request):
    """make(users=None, relay=None, **options) -> a started Dovecot
    (test/integ/dovecot.py) serving tls_certs.good for localhost, users
    (default DOVECOT_USERS) and relaying to relay (default: a new
    smarthost_factory() smarthost). options: mechanisms=, scheme=. All are
    stopped at the end; a failed test shows their logs. Fails (never
    skips) when Dovecot is not installed."""
    from dovecot import Dovecot, missing
    why = missing()
    if why:
        pytest.fail("%s; run scripts/install-deps as root" % why,
                    pytrace=False)
    made = []

    def make(users=None, relay=None, **options):
        if relay is None:
            relay = smarthost_factory()
        dv = Dovecot(relay, tls_certs.good.cert, tls_certs.good.key,
                     DOVECOT_USERS if users is None else users, **options)
        made.append(dv)
        return dv.start()
    try:
        yield make
    finally:
        for dv in made:
            dv.stop()
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for dv in made:
                sys.stderr.write("\n--- dovecot log (%s) ---\n%s\n" % (
                    request.node.name, dv.log_text()[-6000:]))


@pytest.fixture
def dovecot(dovecot_factory):
    """A started Dovecot: .port (STARTTLS), .tls_port (implicit TLS),
    .users {user: password}, .relay (the Smarthost it relays to),
    .mechanisms (PLAIN LOGIN SCRAM-SHA-1 SCRAM-SHA-256), .log_text(),
    .logins(), .failures(), .relayed(), .auth_of(msg)."""
    return dovecot_factory()
