"""posternd's log through a real /dev/log.

posternd -f -s without maillog_file logs with syslog(3). As root, in a
private mount namespace, a tmpfs over /dev holds the usual device nodes
(bound back from the real /dev) and, on /dev/log, a Unix datagram socket
this test listens on; posternd runs there, a message goes through it to
the test smarthost. What arrives is glibc's RFC 3164 form,
"<PRI>Mmm dd hh:mm:ss ident[pid]: text", with facility mail, the
programs' idents (postern/pickup, postern/qmgr, postern/smtp) and their
pids, and the text is the same as the lines the same steps write to
maillog_file.
"""

import os
import re
import shutil
import socket
import subprocess

import pytest

from conftest import TIMEOUT, _env, wait_for

LOG_MAIL = 2
LOG_INFO = 6

# The mount namespace: /dev becomes a tmpfs with a few nodes and the
# test's socket on /dev/log; the real /dev stays reachable through a
# bind mount made first. Then the script becomes posternd.
DEV_NS = r"""
set -eu
d=$1
shift
mount --make-rprivate /
mount --bind /dev "$d/realdev"
mount -t tmpfs -o mode=0755,nosuid postern-dev /dev
for n in null zero full random urandom tty; do
	: >"/dev/$n"
	mount --bind "$d/realdev/$n" "/dev/$n"
done
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
: >/dev/log
mount --bind "$d/log.sock" /dev/log
umount "$d/realdev"
exec "$@"
"""

SYSLOG_RE = re.compile(r"^<(\d+)>(\w{3} [ \d]\d \d\d:\d\d:\d\d) "
                       r"(postern/\w+)\[(\d+)\]: (.*)$", re.S)
FILE_RE = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ "
                     r"(postern/\w+)\[(\d+)\]: (.*)$")


class LogSocket:
    """The socket bound where /dev/log will be; keeps what it receives."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.setblocking(False)
        self.datagrams = []

    def drain(self):
        while True:
            try:
                self.datagrams.append(self.sock.recv(65536))
            except BlockingIOError:
                return self.datagrams

    def close(self):
        self.sock.close()


def normalize(text, qid):
    """A log text with what differs between two runs made constant."""
    text = text.replace(qid, "QID")
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    return text


def send_one(sb):
    sb.send_ok(["-i", "-f", "alice", "bob@example.com"],
               b"Subject: syslog\n\nbody\n")
    assert wait_for(lambda: sb.smarthost.delivered_to("bob@example.com"),
                    TIMEOUT)


def test_syslog_through_dev_log(sandbox, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts a tmpfs over /dev (in a private "
                    "mount namespace)")
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is missing")
    sb = sandbox
    sb.make_spool()
    (tmp_path / "realdev").mkdir()
    log = LogSocket(str(tmp_path / "log.sock"))
    try:
        # Run 1: syslog, no maillog_file.
        out = open(sb.logfile, "ab")
        p = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", DEV_NS, "ns", str(tmp_path),
             sb.bins["posternd"], "-f", "-s", "-C", sb.confdir],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=_env(),
            start_new_session=True)
        out.close()
        sock = os.path.join(sb.spool, "public", "control")
        wait_for(lambda: os.path.exists(sock) or p.poll() is not None)
        if p.poll() is not None:
            if "unshare failed" in sb.log_text():
                pytest.skip("the kernel refuses a mount namespace here")
            pytest.fail("posternd in the namespace exited with %d; log:\n%s"
                        % (p.returncode, sb.log_text()), pytrace=False)
        sb.daemon = p       # stopped, killed and checked by the fixture
        send_one(sb)
        sb.wait(lambda: any(b": removed" in d for d in log.drain()),
                what="the removed line on /dev/log")
        assert sb.stop_daemon() == 0
        datagrams = log.drain()
    finally:
        log.close()
    # -f -s: nothing on stderr, everything through /dev/log.
    assert sb.log_text() == "", sb.log_text()

    sys_lines = []
    for d in datagrams:
        text = d.decode()
        m = SYSLOG_RE.match(text)
        assert m, "not RFC 3164 syslog: %r" % text
        pri, _, ident, pid, msg = m.groups()
        assert "\n" not in msg, text
        assert int(pri) >> 3 == LOG_MAIL, text
        sys_lines.append((int(pri) & 7, ident, int(pid), msg))
    qid = re.search(r"([0-9A-F]+): uid=0 from=<alice@",
                    "\n".join(l[3] for l in sys_lines)).group(1)
    by_ident = {}
    for sev, ident, pid, msg in sys_lines:
        by_ident.setdefault(ident, []).append((sev, pid, msg))
    # The daemon's own lines carry its pid, a delivery worker's its own.
    for ident in ("postern/pickup", "postern/qmgr"):
        assert {pid for _, pid, _ in by_ident[ident]} == {p.pid}, ident
    smtp = by_ident["postern/smtp"]
    assert len({pid for _, pid, _ in smtp}) == 1 and smtp[0][1] != p.pid
    assert (LOG_INFO, p.pid, "%s: uid=0 from=<alice@client.test.example>"
            % qid) in by_ident["postern/pickup"]
    assert any(sev == LOG_INFO and re.match(
        r"%s: to=<bob@example\.com>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:"
        r"\d+, delay=.*, dsn=2\.0\.0, status=sent \(250 " % qid, msg)
        for sev, _, msg in smtp), smtp

    # Run 2: the same steps with maillog_file.
    maillog = os.path.join(sb.root, "maillog")
    sb.write_config(maillog_file=maillog)
    out = open(sb.logfile, "ab")
    p2 = subprocess.Popen([sb.bins["posternd"], "-f", "-s", "-C",
                           sb.confdir], stdin=subprocess.DEVNULL,
                          stdout=out, stderr=out, env=_env(),
                          start_new_session=True)
    out.close()
    sb.daemon = p2
    send_one(sb)

    def file_lines():
        try:
            with open(maillog) as f:
                text = f.read()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            m = FILE_RE.match(line)
            assert m, "not a maillog_file line: %r" % line
            out.append(m.groups())
        return out
    sb.wait(lambda: any(m.endswith(": removed") and m != qid + ": removed"
                        for _, _, m in file_lines()),
            what="the removed line in maillog_file")
    assert sb.stop_daemon() == 0
    lines2 = file_lines()
    qid2 = re.search(r"([0-9A-F]+): uid=0 from=<alice@",
                     "\n".join(l[2] for l in lines2)).group(1)

    # The same events, word for word, but for the queue ID and numbers.
    def events(lines, q):
        return sorted((ident, normalize(msg, q)) for ident, msg in lines
                      if msg.startswith(q + ": "))
    ev1 = events([(l[1], l[3]) for l in sys_lines], qid)
    ev2 = events([(l[0], l[2]) for l in lines2], qid2)
    assert ev1 == ev2
    kinds = " ".join(m for _, m in ev1)
    for what in ("uid=N from=", "(queue active)", "status=sent", "removed"):
        assert what in kinds, (what, ev1)
    assert any(l[1] == "postern/qmgr" and l[3].startswith("daemon started")
               for l in sys_lines), sys_lines


def test_maillog_file_dev_stdout(sandbox, tmp_path):
    """maillog_file = /dev/stdout, as in a container: posternd -f -s
    writes its lines, the workers' too, to standard output and nothing to
    standard error."""
    sb = sandbox
    sb.write_config(maillog_file="/dev/stdout")
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = subprocess.Popen([sb.bins["posternd"], "-f", "-s", "-C",
                              sb.confdir], stdin=subprocess.DEVNULL,
                             stdout=out, stderr=err, env=_env(),
                             start_new_session=True)
    sb.daemon = p       # stopped, killed and checked by the fixture
    assert wait_for(lambda: "daemon started" in out_path.read_text() or
                    p.poll() is not None, TIMEOUT), err_path.read_text()
    send_one(sb)
    assert wait_for(lambda: ": removed" in out_path.read_text(), TIMEOUT)
    assert sb.stop_daemon() == 0
    lines = out_path.read_text().splitlines()
    for line in lines:
        assert FILE_RE.match(line), line
    assert any(" postern/smtp[" in l and "status=sent" in l for l in lines)
    assert " postern/pickup[%d]: " % p.pid in out_path.read_text()
    assert err_path.read_text() == ""
