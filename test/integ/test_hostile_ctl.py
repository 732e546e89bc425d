"""The control socket against any local user (issue 15 item 2, and
authorized_flush_users / authorized_mailq_users).

posternd(8), SECURITY: public/control is open to every local user, so no
user may stall the daemon through it. A user who opens connection
after connection, holds them and dribbles bytes into them gets a few
connections, each closed 2 s after it opened; meanwhile root's queue
commands and delivery go on (their latency is printed, and bounded only
by the client's own timeout, which a stalled daemon would hit).
"""

import os
import subprocess
import time

from hostile import markers_at, users  # noqa: F401 (a fixture)
from test_privdrop import (USER, delivered, make_sb, send,  # noqa: F401
                           world)

EX_NOPERM = 77
CLIENT_TIMEOUT = 10     # postern's own deadline on a control request

# The attacker: connect again and again, keep what stays open; say
# nothing on half of them, dribble a byte every 0.2 s into the others; on
# SIGTERM print what it got.
FLOOD = r"""
import os, signal, socket, sys, time
path, stop = sys.argv[1], []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
held, made, shut = [], 0, 0
while not stop:
    while len(held) < 100 and not stop:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
            made += 1
            held.append(s)
        except OSError:
            s.close()
            break
    for i, s in enumerate(list(held)):
        try:
            if i % 2:
                s.send(b"q")
            if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                raise OSError
        except BlockingIOError:
            pass
        except OSError:
            held.remove(s)
            s.close()
            shut += 1
    time.sleep(0.2)
print("connections made %d, closed by posternd %d, open %d" % (
    made, shut, len(held)))
"""


def timed(fn):
    t = time.monotonic()
    r = fn()
    return r, time.monotonic() - t


def test_flood_of_held_connections_does_not_stall_the_daemon(make_sb,
                                                            users):
    sb = make_sb(smtp_tls_security_level="none")
    sb.start_daemon()
    delivered(sb, send(sb))
    _, base = timed(lambda: sb.postern(["queue"]))
    flood = subprocess.Popen(users.local.cmd(
        "/usr/bin/python3", "-c", FLOOD, os.path.join(sb.spool, "public",
                                                       "control")),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        assert flood.poll() is None, flood.stderr.read()
        took = {}
        r, took["queue"] = timed(lambda: sb.postern(["queue"]))
        assert r.returncode == 0, r.stderr
        sb.smarthost.rcpt_replies = {"later@example.com": "451 4.3.0 later"}
        marker = send(sb, rcpt="later@example.com")
        qid = sb.wait(lambda: sb.queue_files("deferred"),
                      what="a deferred message")[0]
        for cmd in (["hold", qid], ["release", qid], ["flush"]):
            r, took[" ".join(cmd[:1])] = timed(lambda: sb.postern(cmd))
            assert r.returncode == 0, (cmd, r.stderr)
        sb.smarthost.rcpt_replies = {}
        r, took["flush again"] = timed(lambda: sb.postern(["flush"]))
        assert r.returncode == 0, r.stderr
        t = time.monotonic()
        sb.wait(lambda: markers_at(sb.smarthost, marker) == 1,
                what="the deferred message")
        _, took["delivery of a new message"] = timed(
            lambda: delivered(sb, send(sb)))
        took["delivery after flush"] = time.monotonic() - t
    finally:
        flood.terminate()
        out, err = flood.communicate(timeout=30)
    print("\ncontrol flood by uid %d: %s" % (users.local.uid, out.strip()))
    print("root's `postern queue` alone: %.3f s" % base)
    for what, secs in took.items():
        print("during the flood, %s: %.3f s" % (what, secs))
    # Not stalled: each finished well inside the client's own deadline.
    assert all(secs < CLIENT_TIMEOUT for secs in took.values()), took
    assert "closed by posternd" in out, err
    assert markers_at(sb.smarthost, marker) == 1
    assert sb.stop_daemon() == 0


def test_authorized_mailq_and_flush_users(make_sb, users):
    sb = make_sb(smtp_tls_security_level="none",
                 authorized_mailq_users="static:empty",
                 authorized_flush_users="!%s, %s" % (users.local.name,
                                                     users.group.name))
    sb.start_daemon()
    postern = [sb.bins["postern"], "-C", sb.confdir]
    r = users.local.run(*postern, "queue", check=False)
    assert r.returncode == EX_NOPERM, r.stderr
    assert "authorized_mailq_users does not allow you this" in r.stderr
    r = users.local.run(*postern, "flush", check=False)
    assert r.returncode == EX_NOPERM, r.stderr
    assert "authorized_flush_users does not allow you this" in r.stderr
    sb.wait_log(r"request of user %s \(uid %d\) refused: not in "
                r"authorized_flush_users" % (users.local.name,
                                             users.local.uid))
    # A listed user may flush; root and mail_owner always may.
    users.group.run(*postern, "flush")
    assert sb.postern(["flush"]).returncode == 0
    assert sb.postern(["queue"]).returncode == 0
    users.postern.run(*postern, "flush")
    # Postfix's defaults (static:anyone): everyone may.
    sb.write_config(mail_owner=USER, smtp_tls_security_level="none",
                    authorized_mailq_users="static:anyone",
                    authorized_flush_users="static:anyone")
    os.chmod(os.path.join(sb.confdir, "main.cf"), 0o644)
    assert sb.stop_daemon() == 0
    sb.start_daemon()
    sb.wait_log(r"daemon started", count=2)
    users.local.run(*postern, "queue")
    users.local.run(*postern, "flush")
    assert sb.stop_daemon() == 0


# The attacker of the listing: ask for the queue again and again and never
# read the answer, holding every connection; on SIGTERM print the count.
LISTERS = r"""
import signal, socket, sys, time
path, stop, held = sys.argv[1], [], []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
while not stop:
    if len(held) < 200:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            s.sendall(b"queue\n")
            held.append(s)
        except OSError:
            s.close()
    time.sleep(0.02)
print("listing requests held %d" % len(held))
"""

CTL_LIST_MAX = 4        # ctlsrv.h: listing children of other users


class DeferAll(dict):
    """rcpt_replies that defers every recipient."""

    def get(self, key, default=None):
        return "451 4.3.0 later"


def session_procs(sid):
    """The processes of session sid (posternd's: start_new_session)."""
    n = 0
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[3]) == sid:
            n += 1
    return n


def test_listing_children_are_capped(make_sb, users):
    """A user asking for the queue listing again and again without
    reading it gets one listing process at a time ("error busy" beyond):
    the children of our user cannot pile up to its process limit."""
    sb = make_sb(smtp_tls_security_level="none")
    sb.start_daemon()
    # A listing far larger than a socket's buffer: its child blocks.
    sb.smarthost.rcpt_replies = DeferAll()
    rcpts = ["r%04d-%s@example.com" % (i, "x" * 60) for i in range(4000)]
    sb.send_ok(["-i", "-f", "s@example.com"] + rcpts,
               b"Subject: big\n\nbig\n")
    sb.wait(lambda: sb.queue_files("deferred"), what="a deferred message")
    r = sb.postern(["queue"])
    assert r.returncode == 0 and len(r.stdout) > 400000, len(r.stdout)
    sb.smarthost.rcpt_replies = {}
    base = session_procs(sb.daemon.pid)
    attack = subprocess.Popen(users.local.cmd(
        "/usr/bin/python3", "-c", LISTERS, os.path.join(sb.spool, "public",
                                                         "control")),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        most = 0
        t = time.monotonic() + 3
        while time.monotonic() < t:
            most = max(most, session_procs(sb.daemon.pid) - base)
            time.sleep(0.05)
        assert attack.poll() is None, attack.stderr.read()
        assert 1 <= most <= CTL_LIST_MAX, most
        sb.wait_log(r"queue listing for uid %d refused: too many listings "
                    r"running" % users.local.uid)
        r = sb.postern(["queue"])
        assert r.returncode == 0 and len(r.stdout) > 400000, r.stderr
        delivered(sb, send(sb))
    finally:
        attack.terminate()
        out, err = attack.communicate(timeout=30)
    print("\n%s; at most %d listing processes" % (out.strip(), most))
    assert sb.stop_daemon() == 0
