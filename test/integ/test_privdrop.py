"""posternd gives up root: a root supervisor, a daemon running as mail_owner.

Started as root with mail_owner an ordinary user, posternd stays root
only in a small supervisor; its daemon process opens root's files (a
root:root 0600 sasl_passwd, the TLS CA file) and then runs as that user
for good, with its delivery workers. A root-only table that changes, and
SIGHUP, make a fresh daemon process that root starts; a daemon process
that crashes is replaced; SIGTERM stops everything with status 0.

These tests need root and a real user: each module run makes user and
group "pstnd1" with scripts/postern-user.sh in a copy of /etc that is
bound over /etc in private mount namespaces (unshare -m), so the
machine's own users are never touched; posternd runs in such a
namespace (which shares the network with the test smarthost on
127.0.0.1). The dropped user cannot reach pytest's tmp_path (under a
0700 directory), so config and spool live in a 0755 directory under
/var/tmp, removed afterwards. sendmail is run with the group id of
pstnd1, as the installed set-group-ID sendmail would be.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import (TIMEOUT, Sandbox, finish_sandboxes, removed_re,
                      status_re, wait_for)
from tlscerts import server_context

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
USER = "pstnd1"
EX_NOUSER = 67
EX_CONFIG = 78
RCPT = "bob@example.com"
SENDER = "alice@example.com"

# Bind the /etc copy over /etc in a private mount namespace, then run.
NS_RUN = r"""
set -eu
mount --make-rprivate /
mount --bind "$1" /etc
shift
exec "$@"
"""


def ns_command(etc, *cmd):
    return ["unshare", "-m", "sh", "-c", NS_RUN, "ns", etc] + list(cmd)


@pytest.fixture(scope="module")
def world():
    """A 0755 scratch directory under /var/tmp holding a copy of /etc
    with user and group pstnd1; .base, .etc, .uid, .gid."""
    if os.geteuid() != 0:
        pytest.skip("needs root: runs posternd as root and creates a user "
                    "(in a private /etc copy)")
    if shutil.which("unshare") is None or shutil.which("setpriv") is None:
        pytest.skip("unshare or setpriv (util-linux) is missing")
    base = tempfile.mkdtemp(prefix="postern-privdrop-", dir="/var/tmp")
    os.chmod(base, 0o755)
    try:
        etc = os.path.join(base, "etc")
        subprocess.run(["cp", "-a", "/etc", etc], check=True)
        r = subprocess.run(ns_command(etc, os.path.join(
            ROOT, "scripts", "postern-user.sh"), USER, USER, "/nonexistent"),
            capture_output=True, text=True)
        if r.returncode != 0 and "unshare failed" in r.stderr:
            pytest.skip("the kernel refuses a mount namespace here")
        assert r.returncode == 0, r.stdout + r.stderr

        class World:
            pass
        w = World()
        w.base, w.etc = base, etc
        with open(os.path.join(etc, "passwd")) as f:
            for line in f:
                f_ = line.split(":")
                if f_[0] == USER:
                    w.uid, w.gid = int(f_[2]), int(f_[3])
        assert w.uid != 0 and w.gid != 0
        yield w
    finally:
        shutil.rmtree(base, ignore_errors=True)


def wrapper(path, text):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + text)
    os.chmod(path, 0o755)
    return path


@pytest.fixture
def make_sb(world, bins, smarthost_factory, tls_certs, request):
    """make(auth=None, **main_cf) -> a Sandbox under world.base whose
    posternd runs as root in the namespace with mail_owner = pstnd1, and
    whose sendmail has pstnd1's group. With auth (a password): the
    smarthost offers STARTTLS and AUTH for user alice, the relay is
    [localhost]:PORT with TLS verified, and sasl_passwd (root:root 0600)
    holds alice's password."""
    made = []

    def make(auth=None, **main_cf):
        root = tempfile.mkdtemp(prefix="sb", dir=world.base)
        os.chmod(root, 0o755)
        b = dict(bins)
        b["posternd"] = wrapper(os.path.join(root, "posternd"),
                                'exec %s "$@"\n' % " ".join(
                                    "'%s'" % a for a in ns_command(
                                        world.etc, bins["posternd"])))
        b["sendmail"] = wrapper(os.path.join(root, "sendmail"),
                                'exec setpriv --regid=%d --keep-groups %s '
                                '"$@"\n' % (world.gid, bins["sendmail"]))
        if auth is None:
            sh = smarthost_factory()
        else:
            sh = smarthost_factory(
                tls_context=server_context(tls_certs.good.cert,
                                           tls_certs.good.key),
                auth={"alice": auth}, auth_mechanisms=["CRAM-MD5"])
        sb = Sandbox(os.path.join(root, "sb"), b, sh)
        made.append(sb)
        os.chmod(sb.root, 0o755)
        os.chmod(sb.confdir, 0o755)
        params = {"mail_owner": USER}
        if auth is not None:
            sb.relay = "[localhost]:%d" % sh.port
            params.update({
                "relayhost": sb.relay, "smtp_tls_CAfile": tls_certs.ca,
                "smtp_tls_security_level": "verify",
                "smtp_sasl_auth_enable": "yes"})
        params.update(main_cf)
        sb.write_config(**params)
        os.chmod(os.path.join(sb.confdir, "main.cf"), 0o644)
        return sb
    try:
        yield make
    finally:
        finish_sandboxes(made, request)


def write_passwd(sb, password, kind):
    """sasl_passwd (root:root 0600) for the relay; compiled for hash:.
    Returns the smtp_sasl_password_maps value."""
    path = os.path.join(sb.confdir, "sasl_passwd")
    with open(path + ".new", "w") as f:
        f.write("%s  alice:%s\n" % (sb.relay, password))
    os.chmod(path + ".new", 0o600)
    os.rename(path + ".new", path)
    if kind == "hash":
        r = sb.postern(["map", "hash:" + path])
        assert r.returncode == 0, r.stderr
        st = os.stat(path + ".db")
        assert (st.st_uid, st.st_mode & 0o777) == (0, 0o600)
    return "%s:%s" % (kind, path)


def proc_status(pid):
    """{field: [values]} of /proc/PID/status (Uid, Gid, Groups, PPid)."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def children(pid):
    """The pids whose parent is pid."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if proc_status(int(name))["PPid"] == [str(pid)]:
                kids.append(int(name))
        except (FileNotFoundError, ProcessLookupError, KeyError):
            pass
    return kids


def daemon_child(sb, not_pid=None):
    """The supervisor's daemon process (waits for a new one when not_pid
    names the old)."""
    def find():
        kids = [k for k in children(sb.daemon.pid) if k != not_pid]
        return kids[0] if len(kids) == 1 else None
    return sb.wait(find, what="the daemon process")


def assert_runs_as(pid, uid, gid):
    st = proc_status(pid)
    assert st["Uid"] == [str(uid)] * 4, st["Uid"]    # real effective saved fs
    assert st["Gid"] == [str(gid)] * 4, st["Gid"]
    assert "0" not in st["Groups"], st["Groups"]


def send(sb, rcpt=RCPT):
    marker = "pd-%s" % uuid.uuid4().hex
    sb.send_ok(["-i", "-f", SENDER, rcpt],
               ("From: <%s>\nSubject: %s\n\n%s\n" % (SENDER, marker,
                                                     marker)).encode())
    return marker


def delivered(sb, marker, sh=None, count=1):
    """Wait for the message with marker at the smarthost; it."""
    sh = sh or sb.smarthost
    sb.wait(lambda: [m for m in sh.messages if marker.encode() in m.data],
            what="the message %s at the relay" % marker)
    msgs = [m for m in sh.messages if marker.encode() in m.data]
    assert len(msgs) == 1
    return msgs[0]


# ---- the drop itself ----------------------------------------------------

def test_supervisor_stays_root_daemon_and_workers_do_not(make_sb, world,
                                                          bins):
    secret = "pw-%s" % uuid.uuid4().hex[:12]
    sb = make_sb(auth=secret)
    sb.write_config(smtp_sasl_password_maps=write_passwd(sb, secret,
                                                         "hash"))
    # A spool of the release that ran as root: directories the user's,
    # a message left by root (root:root 0640, with neither the user nor
    # its group): the daemon's to read now.
    sb.make_spool()
    for d in os.listdir(sb.spool) + ["incoming/tmp", "incoming/new"]:
        if d != "incoming":
            os.chown(os.path.join(sb.spool, d), world.uid, world.gid)
    r = subprocess.run([bins["sendmail"], "-C", sb.confdir, "-i", "-f",
                        SENDER, RCPT], input=b"Subject: before\n\nby root\n",
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    root_file = sb.queue_files("incoming/new")
    assert len(root_file) == 1
    st = os.stat(os.path.join(sb.spool, "incoming/new", root_file[0]))
    assert (st.st_uid, st.st_gid) == (0, 0)

    # The relay holds its answer to the final dot: the worker lives, mid-
    # session, until every process has been looked at.
    sb.smarthost.hold_data = True
    sb.start_daemon()
    sup = sb.daemon.pid
    assert_runs_as(sup, 0, 0)
    child = daemon_child(sb)
    assert_runs_as(child, world.uid, world.gid)
    sb.wait(lambda: sb.smarthost.held, what="the final dot held")
    worker = sb.wait(lambda: children(child), what="a delivery worker")[0]
    assert_runs_as(worker, world.uid, world.gid)
    assert sb.smarthost.held == 1 and sb.smarthost.messages == []
    sb.smarthost.release()
    sb.wait_log(r"postern/qmgr\[%d\]: daemon started -- postern, queue "
                r"directory %s, running as user %s$" % (
                    child, re.escape(sb.spool), USER))
    sb.wait_log(r"postern/master\[%d\]: gave 1 queue files that root owned "
                r"to user %s" % (sup, USER))
    m = sb.wait(lambda: sb.smarthost.messages, what="the first message")[0]
    assert m.auth == {"user": "alice", "mechanism": "CRAM-MD5"}, m.auth
    assert m.tls is not None

    # What the daemon creates in the spool is the user's: the control
    # socket, and a deferred message's state record.
    sb.smarthost.rcpt_replies = {"later@example.com": "451 4.3.0 later"}
    sb.send_ok(["-i", "-f", SENDER, "later@example.com", RCPT],
               b"Subject: half\n\nhalf now\n")
    qid = re.search(status_re("later@example.com", "deferred"),
                    sb.wait_log(status_re("later@example.com",
                                          "deferred"))[0]).group(1)
    sb.wait(lambda: sb.find_qid(qid) == ["deferred"], what="deferred")
    for path in (os.path.join(sb.spool, "public", "control"),
                 os.path.join(sb.spool, "state", qid)):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (world.uid, world.gid), path
    # The pid in the lock file is the supervisor's.
    with open(os.path.join(sb.spool, "pid", "master.lock")) as f:
        assert f.read().strip() == str(sup)
    assert "password" not in sb.log_text() and secret not in sb.log_text()
    assert sb.stop_daemon() == 0


@pytest.mark.parametrize("kind", ["hash", "texthash"])
def test_changed_root_only_password_table_is_read(make_sb, kind):
    old, new = ("pw-%s" % uuid.uuid4().hex[:12] for _ in range(2))
    sb = make_sb(auth=old)
    sb.write_config(smtp_sasl_password_maps=write_passwd(sb, old, kind))
    sb.start_daemon()
    child = daemon_child(sb)
    m = delivered(sb, send(sb))
    assert m.auth == {"user": "alice", "mechanism": "CRAM-MD5"}
    # The relay now takes only the new password; the table gets it.
    sb.smarthost.auth = {"alice": new}
    write_passwd(sb, new, kind)
    # posternd looks at a table file at most once a second (postern.conf
    # (5)); the next message after that gets the new password.
    time.sleep(1.1)
    m = delivered(sb, send(sb))
    assert m.auth == {"user": "alice", "mechanism": "CRAM-MD5"}
    assert sb.smarthost.auth_attempts[-1][3] is True
    # Nothing failed on the way: no deferral, no failed login.
    assert not sb.log_lines(r"status=deferred"), sb.log_text()
    assert all(a[3] for a in sb.smarthost.auth_attempts)
    sb.wait_log(r"postern/qmgr\[%d\]: smtp_sasl_password_maps: %s:%s: "
                r"changed, and user %s may not read it; restarting the "
                r"daemon so that root reads it" % (
                    child, kind, re.escape(os.path.join(sb.confdir,
                                                        "sasl_passwd")),
                    USER))
    assert daemon_child(sb, not_pid=child) != child
    assert old not in sb.log_text() and new not in sb.log_text()
    assert sb.stop_daemon() == 0


# ---- signals and crashes ------------------------------------------------

def test_hup_to_the_supervisor_reads_the_new_main_cf(make_sb, world,
                                                     smarthost_factory):
    sb = make_sb(smtp_tls_security_level="none")
    second = smarthost_factory()
    path = os.path.join(world.base, "notify-%s.sock" % uuid.uuid4().hex[:8])
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    os.chmod(path, 0o666)
    srv.settimeout(TIMEOUT)
    os.environ["NOTIFY_SOCKET"] = path
    try:
        sb.start_daemon()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        assert srv.recv(256) == b"READY=1"
        child = daemon_child(sb)
        delivered(sb, send(sb))
        sb.write_config(relayhost="[127.0.0.1]:%d" % second.port)
        sb.daemon.send_signal(signal.SIGHUP)
        assert srv.recv(256) == b"RELOADING=1"
        assert srv.recv(256) == b"READY=1"
        sb.wait_log(r"SIGHUP: restarting the daemon to read %s/main.cf "
                    r"and the tables as root" % re.escape(sb.confdir))
        new_child = daemon_child(sb, not_pid=child)
        assert_runs_as(new_child, world.uid, world.gid)
        delivered(sb, send(sb), sh=second)
        assert len(sb.smarthost.messages) == 1
        assert sb.daemon.poll() is None
    finally:
        srv.close()
    assert sb.stop_daemon() == 0


def test_hup_with_a_config_that_would_not_start_keeps_the_daemon(
        make_sb, smarthost_factory):
    """A main.cf that parses but would not start a daemon (its CA file
    does not exist) is found out before the restart: the running daemon
    process carries on with the old configuration."""
    sb = make_sb(smtp_tls_security_level="none")
    second = smarthost_factory()
    sb.start_daemon()
    child = daemon_child(sb)
    delivered(sb, send(sb))
    sb.write_config(relayhost="[127.0.0.1]:%d" % second.port,
                    smtp_tls_CAfile="/nonexistent/ca.pem")
    sb.daemon.send_signal(signal.SIGHUP)
    sb.wait_log(r"postern/master\[\d+\]: warning: SIGHUP: keeping the "
                r"running configuration: .*smtp_tls_CAfile "
                r"/nonexistent/ca\.pem")
    delivered(sb, send(sb))
    assert second.messages == []
    assert children(sb.daemon.pid) == [child]
    assert "restarting the daemon" not in sb.log_text()
    assert sb.stop_daemon() == 0


def test_term_to_the_supervisor_stops_everything(make_sb):
    sb = make_sb(smtp_tls_security_level="none")
    sb.start_daemon()
    sup = sb.daemon.pid
    child = daemon_child(sb)
    delivered(sb, send(sb))
    sb.daemon.send_signal(signal.SIGTERM)
    assert sb.daemon.wait(TIMEOUT) == 0
    assert not os.path.exists("/proc/%d" % child)

    # Nothing of it is left in its process group (a delivery worker may
    # take a moment to finish exiting).
    def group_empty():
        try:
            os.killpg(sup, 0)
            return False
        except ProcessLookupError:
            return True
    assert wait_for(group_empty, TIMEOUT), "processes left behind"
    sb.wait_log(r"postern/qmgr\[%d\]: terminating on signal" % child)
    sb.daemon = None


def test_crashed_daemon_process_is_replaced(make_sb, world):
    sb = make_sb(smtp_tls_security_level="none")
    sb.start_daemon()
    child = daemon_child(sb)
    delivered(sb, send(sb))
    os.kill(child, signal.SIGKILL)
    sb.wait_log(r"postern/master\[%d\]: warning: daemon process %d killed "
                r"by signal 9; starting a new one in 10 s" % (sb.daemon.pid,
                                                             child))
    # Mail that comes in meanwhile waits in the spool, then goes.
    marker = send(sb)
    new_child = daemon_child(sb, not_pid=child)
    # Looked at once it says it has started: between the fork and the
    # drop it is still root, and a look then would fail at random.
    sb.wait_log(r"postern/qmgr\[%d\]: daemon started" % new_child)
    assert_runs_as(new_child, world.uid, world.gid)
    delivered(sb, marker)
    assert sb.stop_daemon() == 0


# ---- refusals ------------------------------------------------------------

def test_missing_mail_owner_refused_as_root(sandbox):
    if os.geteuid() != 0:
        pytest.skip("needs root: mail_owner matters only to root")
    sandbox.write_config(mail_owner="pstnd-nobody-here")
    p = subprocess.run([sandbox.bins["posternd"], "-f", "-C",
                        sandbox.confdir], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert p.returncode == EX_NOUSER, p.stderr
    assert "mail_owner: no such user: pstnd-nobody-here" in p.stderr
    assert ("Create it: scripts/postern-user.sh or `make install` as root; "
            "or set mail_owner in %s/main.cf" % sandbox.confdir) in p.stderr
    assert not os.path.exists(sandbox.spool)


def test_first_daemon_process_failing_fails_the_start(make_sb):
    """A configuration the daemon process refuses (here a CA file that
    does not exist) ends the supervisor too, with the same status and
    message as an unsupervised posternd."""
    sb = make_sb(smtp_tls_CAfile="/nonexistent/ca.pem",
                 smtp_tls_security_level="verify")
    p = subprocess.run([sb.bins["posternd"], "-f", "-C", sb.confdir],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == EX_CONFIG, p.stderr
    assert "/nonexistent/ca.pem" in p.stderr, p.stderr
    assert "postern/qmgr" in p.stderr and "fatal:" in p.stderr


# ---- started as the user itself -----------------------------------------

def test_started_by_the_user_runs_without_supervisor(make_sb, world, bins):
    sb = make_sb(smtp_tls_security_level="none")
    os.makedirs(sb.spool)
    os.chown(sb.spool, world.uid, world.gid)
    sb.bins["posternd"] = wrapper(
        os.path.join(os.path.dirname(sb.root), "posternd-user"),
        'exec %s "$@"\n' % " ".join("'%s'" % a for a in ns_command(
            world.etc, "setpriv", "--reuid=" + USER, "--regid=" + USER,
            "--init-groups", bins["posternd"])))
    sb.start_daemon()
    pid = sb.daemon.pid
    assert_runs_as(pid, world.uid, world.gid)
    sb.wait_log(r"postern/qmgr\[%d\]: daemon started -- postern, queue "
                r"directory %s, running as user %s$" % (
                    pid, re.escape(sb.spool), USER))
    delivered(sb, send(sb))
    assert not sb.log_lines(r"postern/master")
    # Its only children are delivery workers, which end: no daemon process.
    sb.wait(lambda: children(pid) == [], what="no child process")
    assert sb.stop_daemon() == 0
