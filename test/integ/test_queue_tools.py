"""postern delete, hold, release, requeue, cat and flush -i / -s: each
checked by what the relay then receives (and does not), with posternd
running and without it; refusals for users who may not change the queue;
the queue listing and flush through the control socket for users who may
not read the spool."""

import os
import re
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import EX_USAGE, TIMEOUT, _env, check_sanitizer, removed_re, \
    status_re

EX_NOINPUT = 66
EX_NOPERM = 77


def qid_of(sb, addr, status):
    line = sb.wait_log(status_re(addr, status))[0]
    return re.search(status_re(addr, status), line).group(1)


def msg(tag):
    return ("Subject: %s\n\nbody of %s\n" % (tag, tag)).encode()


def subjects(sh):
    out = []
    for m in sh.messages:
        s = re.search(rb"^Subject: (.*?)\r?$", m.data, re.M)
        out.append(s.group(1).decode() if s else None)
    return sorted(out)


def three_deferred(sb, smarthost):
    """The relay is down; three messages wait in deferred/: {tag: qid}."""
    smarthost.stop()
    sb.start_daemon()
    ids = {}
    for tag in ("one", "two", "three"):
        sb.send_ok(["-i", "-f", "alice", "%s@example.com" % tag], msg(tag))
        ids[tag] = qid_of(sb, "%s@example.com" % tag, "deferred")
    sb.wait(lambda: all(sb.find_qid(q) == ["deferred"]
                        for q in ids.values()), what="three in deferred/")
    return ids


def ok(cp):
    assert cp.returncode == 0, (cp.returncode, cp.stderr.decode())
    return cp.stderr.decode()


# ---- end to end, with the daemon ----------------------------------------

def test_delete_hold_flush_release_with_daemon(sandbox, smarthost):
    sb = sandbox
    ids = three_deferred(sb, smarthost)

    err = ok(sb.postern(["delete", ids["one"]]))
    assert "postern delete: %s: removed" % ids["one"] in err, err
    assert "postern delete: 1 message deleted" in err, err
    sb.wait_log(r"postern/postsuper\[\d+\]: %s: removed$" % ids["one"])
    assert sb.find_qid(ids["one"]) == []
    assert ids["one"] not in sb.queue_files("state")

    err = ok(sb.postern(["hold", ids["two"]]))
    assert "postern hold: %s: placed on hold" % ids["two"] in err, err
    assert "1 message placed on hold" in err, err
    assert sb.find_qid(ids["two"]) == ["hold"]
    q = sb.postern(["queue"]).stdout.decode()
    assert re.search(r"^%s!" % ids["two"], q, re.M), q

    smarthost.start()
    err = ok(sb.postern(["flush", "-i", ids["three"]]))
    sb.wait(lambda: smarthost.messages, what="the flushed message")
    sb.wait_log(removed_re(ids["three"]))
    assert subjects(smarthost) == ["three"]
    # A whole flush does not wake a held message.
    ok(sb.postern(["flush"]))
    sb.settle()
    assert subjects(smarthost) == ["three"]
    assert sb.find_qid(ids["two"]) == ["hold"]

    err = ok(sb.postern(["release", ids["two"]]))
    assert "postern release: %s: released from hold" % ids["two"] in err
    sb.wait(lambda: len(smarthost.messages) == 2, what="the released one")
    sb.wait_log(removed_re(ids["two"]))
    assert subjects(smarthost) == ["three", "two"]
    # The deleted one never comes.
    ok(sb.postern(["flush"]))
    sb.settle()
    assert subjects(smarthost) == ["three", "two"]
    assert sb.all_queued() == {}
    assert sb.stop_daemon() == 0


def test_delete_all_and_from_stdin(sandbox, smarthost):
    sb = sandbox
    ids = three_deferred(sb, smarthost)
    # postsuper -d -: IDs on standard input, with mailq's marks.
    cp = sb.run("postern", ["-C", sb.confdir, "delete", "-"],
                input="%s*\n\n%s!\n" % (ids["one"], ids["two"]))
    err = ok(cp)
    assert "2 messages deleted" in err, err
    assert sb.find_qid(ids["one"]) == [] and sb.find_qid(ids["two"]) == []
    err = ok(sb.postern(["delete", "ALL", "deferred"]))
    assert "postern delete: %s: removed" % ids["three"] in err, err
    assert "1 message deleted" in err, err
    smarthost.start()
    ok(sb.postern(["flush"]))
    sb.settle()
    assert smarthost.messages == [] and sb.all_queued() == {}
    assert sb.stop_daemon() == 0


def test_hold_of_a_message_being_delivered(sandbox, smarthost):
    """A message held while its worker holds it: the transaction under way
    completes, and its result is kept with the held message: a release
    sends only to the recipient that was not reached."""
    sb = sandbox
    smarthost.hold_data = True
    smarthost.rcpt_replies = {"y@example.com": "450 4.2.1 later"}
    sb.start_daemon()
    sb.send_ok(["-i", "x@example.com", "y@example.com"], msg("slow"))
    sb.wait(lambda: smarthost.held, what="the final dot held at the relay")
    qid = sb.queue_files("active")[0]
    err = ok(sb.postern(["hold", qid]))
    assert "placed on hold" in err, err
    # The hold came while the worker waited for the relay's answer.
    assert smarthost.held == 1 and smarthost.messages == []
    smarthost.release()
    sb.wait_log(status_re("x@example.com", "sent"))
    sb.wait(lambda: len(smarthost.messages) == 1, what="the delivery")
    sb.wait(lambda: os.path.exists(os.path.join(sb.spool, "state", qid)),
            what="the held message's state record")
    assert sb.find_qid(qid) == ["hold"]
    st = open(os.path.join(sb.spool, "state", qid)).read()
    assert "rcpt 0 sent" in st, st
    smarthost.rcpt_replies = {}
    ok(sb.postern(["release", qid]))
    sb.wait_log(removed_re(qid))
    assert [m.rcpt_tos for m in smarthost.messages] == [
        ["x@example.com"], ["y@example.com"]]
    assert sb.stop_daemon() == 0


def test_delete_of_a_message_a_worker_holds(sandbox, smarthost):
    """Two messages in one worker's batch; while the first is in DATA, the
    second is deleted: the relay never receives it."""
    sb = sandbox
    sb.write_config(smtp_destination_concurrency_limit="1")
    sb.make_spool()
    first = sb.send_ok(["-i", "first@example.com"], msg("first"))
    second = sb.send_ok(["-i", "second@example.com"], msg("second"))
    smarthost.hold_data = True
    sb.start_daemon()
    sb.wait(lambda: smarthost.held, what="the final dot held at the relay")
    assert smarthost.attempts[0]["rcpt_tos"] == ["first@example.com"]
    err = ok(sb.postern(["delete", second]))
    assert "%s: removed" % second in err, err
    # The delete came while the first message's DATA waited for its
    # answer, with the second still to come in the same session.
    assert smarthost.held == 1 and len(smarthost.attempts) == 1
    smarthost.release()
    sb.wait_log(removed_re(first))
    ok(sb.postern(["flush"]))
    sb.settle()
    assert subjects(smarthost) == ["first"]
    assert sb.all_queued() == {} and sb.queue_files("state") == []
    assert sb.stop_daemon() == 0


def test_requeue_of_a_message_a_worker_holds(sandbox, smarthost):
    """requeue waits until the delivery attempt under way has ended, then
    makes the message due at once: the deferred recipient is retried."""
    sb = sandbox
    smarthost.hold_data = True
    smarthost.rcpt_replies = {"y@example.com": "450 4.2.1 later"}
    sb.start_daemon()
    sb.send_ok(["-i", "x@example.com", "y@example.com"], msg("busy"))
    sb.wait(lambda: smarthost.held, what="the final dot held at the relay")
    qid = sb.queue_files("active")[0]
    err = ok(sb.postern(["requeue", qid]))
    assert "%s: being delivered; it will be requeued when this delivery " \
        "attempt ends" % qid in err, err
    assert smarthost.held == 1 and smarthost.messages == []
    smarthost.rcpt_replies = {}
    smarthost.release()
    sb.wait_log(r"postern/postsuper\[\d+\]: %s: requeued$" % qid)
    sb.wait_log(removed_re(qid))
    assert [m.rcpt_tos for m in smarthost.messages] == [
        ["x@example.com"], ["y@example.com"]]
    assert sb.stop_daemon() == 0


def test_hold_too_late(sandbox, smarthost):
    """Held during its only delivery, which succeeds: nothing to hold."""
    sb = sandbox
    smarthost.hold_data = True
    sb.start_daemon()
    sb.send_ok(["-i", "x@example.com"], msg("slow"))
    sb.wait(lambda: smarthost.held, what="the final dot held at the relay")
    qid = sb.queue_files("active")[0]
    ok(sb.postern(["hold", qid]))
    assert smarthost.held == 1 and smarthost.messages == []
    smarthost.release()
    sb.wait_log(removed_re(qid))
    assert len(smarthost.messages) == 1
    assert sb.all_queued() == {} and sb.queue_files("state") == []
    assert sb.stop_daemon() == 0


def test_requeue_applies_the_current_aliases_and_transport(
        sandbox, smarthost_factory):
    sb = sandbox
    other = smarthost_factory()
    aliases = os.path.join(sb.confdir, "aliases")
    transport = os.path.join(sb.confdir, "transport")
    with open(aliases, "w") as f:
        f.write("root old@a.example\n")
    with open(transport, "w") as f:
        f.write("# nothing yet\n")
    sb.write_config(alias_maps="texthash:" + aliases,
                    transport_maps="texthash:" + transport)
    sb.smarthost.stop()
    sb.start_daemon()
    sb.send_ok(["-i", "-f", "cron", "root"], msg("requeued"))
    qid = qid_of(sb, "old@a.example", "deferred")
    sb.wait(lambda: sb.find_qid(qid) == ["deferred"], what="deferred/")
    # The tables change after the message was expanded and routed.
    with open(aliases, "w") as f:
        f.write("root new@b.example, second@b.example\n")
    with open(transport, "w") as f:
        f.write("b.example smtp:[127.0.0.1]:%d\n" % other.port)
    time.sleep(1.2)     # texthash tables are checked once a second
    err = ok(sb.postern(["requeue", qid]))
    assert "postern requeue: %s: requeued" % qid in err, err
    assert "1 message requeued" in err, err
    sb.wait(lambda: other.messages, what="delivery by the new route")
    sb.wait_log(removed_re(qid))
    assert [sorted(m.rcpt_tos) for m in other.messages] == [
        ["new@b.example", "second@b.example"]]
    line = sb.wait_log(status_re("new@b.example", "sent", other.port))[0]
    assert "orig_to=<root>" in line, line
    assert sb.smarthost.messages == []
    assert sb.stop_daemon() == 0


def test_requeue_never_resends_a_delivered_recipient(sandbox):
    """One alias target was delivered, the other deferred; after requeue
    the alias expands to both again, and only the deferred one is sent."""
    sb = sandbox
    sh = sb.smarthost
    aliases = os.path.join(sb.confdir, "aliases")
    with open(aliases, "w") as f:
        f.write("root done@example.com, later@example.com\n")
    sb.write_config(alias_maps="texthash:" + aliases)
    sh.rcpt_replies = {"later@example.com": "450 4.2.1 try later"}
    sb.start_daemon()
    sb.send_ok(["-i", "-f", "cron", "root"], msg("partial"))
    qid = qid_of(sb, "later@example.com", "deferred")
    assert [m.rcpt_tos for m in sh.messages] == [["done@example.com"]]
    sb.wait(lambda: sb.find_qid(qid) == ["deferred"], what="deferred/")
    sh.rcpt_replies = {}
    ok(sb.postern(["requeue", qid]))
    sb.wait_log(removed_re(qid))
    assert [m.rcpt_tos for m in sh.messages] == [["done@example.com"],
                                                 ["later@example.com"]]
    assert sb.stop_daemon() == 0


def test_flush_s_domain(sandbox, smarthost):
    sb = sandbox
    smarthost.stop()
    sb.start_daemon()
    sb.send_ok(["-i", "a@one.example"], msg("to-one"))
    sb.send_ok(["-i", "b@two.example"], msg("to-two"))
    q1 = qid_of(sb, "a@one.example", "deferred")
    q2 = qid_of(sb, "b@two.example", "deferred")
    sb.wait(lambda: sb.find_qid(q1) == ["deferred"] and
            sb.find_qid(q2) == ["deferred"], what="deferred/")
    smarthost.start()
    err = ok(sb.postern(["flush", "-s", "TWO.example"]))
    assert "1 message with mail for TWO.example" in err, err
    sb.wait_log(removed_re(q2))
    sb.settle()
    assert subjects(smarthost) == ["to-two"]
    assert sb.find_qid(q1) == ["deferred"]
    assert sb.stop_daemon() == 0


def test_flush_i_unknown_and_held(sandbox, smarthost):
    sb = sandbox
    ids = three_deferred(sb, smarthost)
    cp = sb.postern(["flush", "-i", "ABCDEF123"])
    assert cp.returncode == EX_NOINPUT, cp.stderr
    assert b"ABCDEF123: no such message in the queue" in cp.stderr
    ok(sb.postern(["hold", ids["one"]]))
    err = ok(sb.postern(["flush", "-i", ids["one"]]))
    assert "on hold" in err, err
    err = ok(sb.postern(["release", ids["two"]]))
    assert "postern release: %s is not on hold" % ids["two"] in err, err
    err = ok(sb.postern(["hold", ids["one"]]))
    assert "postern hold: %s is already on hold" % ids["one"] in err, err
    # requeue takes a held message out of hold/, due at once.
    err = ok(sb.postern(["requeue", "ALL", "hold"]))
    assert "postern requeue: %s: requeued" % ids["one"] in err, err
    assert "1 message requeued" in err, err
    sb.wait_log(status_re("one@example.com", "deferred"), count=2)
    cp = sb.postern(["flush", "-i", "nope"])
    assert cp.returncode == EX_USAGE and b"usage: postern flush" in cp.stderr
    assert sb.stop_daemon() == 0


# ---- without the daemon --------------------------------------------------

def test_delete_hold_release_requeue_without_daemon(sandbox, smarthost):
    sb = sandbox
    sb.make_spool()
    ids = {t: sb.send_ok(["-i", "%s@example.com" % t], msg(t))
           for t in ("one", "two", "three", "four")}
    assert all(ids.values()), ids
    err = ok(sb.postern(["delete", ids["one"]]))
    assert "posternd is not running; changing the queue directly" in err
    assert "postern delete: %s: removed" % ids["one"] in err, err
    err = ok(sb.postern(["hold", ids["two"], ids["four"]]))
    assert "2 messages placed on hold" in err, err
    assert sb.find_qid(ids["two"]) == ["hold"]
    err = ok(sb.postern(["release", ids["two"]]))
    assert "%s: released from hold" % ids["two"] in err, err
    assert sb.find_qid(ids["two"]) == ["deferred"]
    err = ok(sb.postern(["release", ids["three"]]))
    assert "postern release: %s is not on hold" % ids["three"] in err, err
    assert "0 messages released from hold" in err, err
    err = ok(sb.postern(["requeue", ids["three"]]))
    assert "%s: requeued" % ids["three"] in err, err
    assert sb.find_qid(ids["one"]) == []
    sb.start_daemon()
    sb.wait(lambda: len(smarthost.messages) == 2, what="two deliveries")
    sb.wait_log(removed_re(ids["two"]))
    sb.wait_log(removed_re(ids["three"]))
    sb.settle()
    assert subjects(smarthost) == ["three", "two"]
    assert sb.find_qid(ids["four"]) == ["hold"]
    assert sb.stop_daemon() == 0


# ---- cat, usage, unknown IDs ----------------------------------------------

def test_cat(sandbox):
    sb = sandbox
    sb.make_spool()
    qid = sb.send_ok(["-i", "-f", "alice", "bob@example.com"],
                     b"Subject: cat me\nX-Tag: 1\n\nthe body line\n")
    cp = sb.postern(["cat", qid])
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout.decode()
    assert "*** ENVELOPE RECORDS incoming/new/%s ***" % qid in out, out
    assert "sender: alice@client.test.example" in out, out
    assert "recipient: bob@example.com" in out, out
    assert "status: pending" in out, out
    assert "Subject: cat me" in out and "the body line" in out, out
    assert "*** MESSAGE FILE END incoming/new/%s ***" % qid in out, out
    h = sb.postern(["cat", "-h", qid]).stdout.decode()
    assert "Subject: cat me" in h and "the body line" not in h, h
    assert "sender:" not in h, h
    b = sb.postern(["cat", "-b", qid]).stdout.decode()
    assert "the body line" in b and "Subject: cat me" not in b, b
    cp = sb.postern(["cat", "ABCDEF999"])
    assert cp.returncode == EX_NOINPUT, cp.stderr
    assert b"postern cat: ABCDEF999: no such message in the queue" in \
        cp.stderr
    cp = sb.postern(["cat", "../etc"])
    assert cp.returncode == EX_USAGE and b"usage: postern cat" in cp.stderr


def test_usage_and_unknown_ids(sandbox, smarthost):
    sb = sandbox
    sb.make_spool()
    for args in (["delete"], ["hold", "all"], ["delete", "12345z"],
                 ["release", "ALL", "deferred"], ["requeue", "ALL", "-"],
                 ["delete", "ABCDEF1", "nosuchqueue"]):
        cp = sb.postern(args)
        assert cp.returncode == EX_USAGE, (args, cp.stderr)
        assert ("usage: postern %s" % args[0]).encode() in cp.stderr, \
            cp.stderr
    cp = sb.postern(["delete", "A1B2C3"])
    assert cp.returncode == EX_NOINPUT, cp.stderr
    assert b"postern delete: A1B2C3: no such message in the queue" in \
        cp.stderr
    assert b"0 messages deleted" in cp.stderr
    # ALL on an empty queue is no error.
    assert sb.postern(["delete", "ALL"]).returncode == 0
    sb.start_daemon()
    cp = sb.postern(["hold", "A1B2C3"])
    assert cp.returncode == EX_NOINPUT, cp.stderr
    assert b"postern hold: A1B2C3: no such message in the queue" in \
        cp.stderr
    assert sb.stop_daemon() == 0


# ---- users who may not change the queue ------------------------------------

def as_nobody(sb, args):
    """Run postern as user nobody."""
    cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
           sb.bins["postern"], "-C", sb.confdir] + list(args)
    cp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        env=_env(), timeout=TIMEOUT * 2)
    check_sanitizer(cp.stderr.decode(errors="replace"), "postern as nobody")
    return cp


@pytest.fixture
def nobody_can_reach(sandbox):
    """Root only: let user nobody reach the sandbox's main.cf and control
    socket (search permission on the directories above); undone after."""
    if os.geteuid() != 0:
        pytest.skip("running a command as user nobody needs root")
    changed = []
    p = sandbox.confdir
    top = tempfile.gettempdir()
    while p not in (top, "/"):
        mode = stat.S_IMODE(os.stat(p).st_mode)
        changed.append((p, mode))
        os.chmod(p, mode | 0o011)
        p = os.path.dirname(p)
    os.chmod(os.path.join(sandbox.confdir, "main.cf"), 0o644)
    yield sandbox
    for p, mode in changed:
        os.chmod(p, mode)


def lock_down_spool(sb):
    # The queue directory itself is searchable, as installed (users'
    # sendmail and the control socket are reached through it); what is
    # in it is not readable.
    os.chmod(sb.spool, 0o755)
    for d in ("incoming/new", "active", "deferred", "hold", "state"):
        os.chmod(os.path.join(sb.spool, d), 0o700)


def test_unprivileged_delete_is_refused(nobody_can_reach, smarthost):
    sb = nobody_can_reach
    ids = three_deferred(sb, smarthost)
    for running in (True, False):
        cp = as_nobody(sb, ["delete", ids["one"]])
        assert cp.returncode == EX_NOPERM, cp.stderr
        assert b"postern delete: permission denied: only root" in \
            cp.stderr, cp.stderr
        assert sb.find_qid(ids["one"]) == ["deferred"]
        if running:
            # The daemon checks the caller itself (SO_PEERCRED), whatever
            # a client claims or skips.
            sock = os.path.join(sb.spool, "public", "control")
            os.chmod(sb.spool, 0o755)
            raw = subprocess.run(
                ["setpriv", "--reuid=nobody", "--regid=nogroup",
                 "--clear-groups", "/usr/bin/python3", "-c",
                 "import socket, sys; s = socket.socket(socket.AF_UNIX); "
                 "s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode()); "
                 "print(s.makefile().readline().strip())",
                 sock, "delete %s 15\n" % ids["one"]],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            assert raw.stdout.startswith(b"error perm "), raw
            sb.wait_log(r"delete request from uid 65534 refused")
            assert sb.find_qid(ids["one"]) == ["deferred"]
            assert sb.stop_daemon() == 0


def test_unprivileged_queue_and_flush_through_the_daemon(nobody_can_reach,
                                                         smarthost):
    sb = nobody_can_reach
    ids = three_deferred(sb, smarthost)
    lock_down_spool(sb)
    cp = as_nobody(sb, ["queue"])
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout.decode()
    for q in ids.values():
        assert q in out, out
    assert "-- 1 Kbytes in 3 Requests." in out, out
    cp = as_nobody(sb, ["queue", "-j"])
    assert cp.returncode == 0, cp.stderr
    assert len(cp.stdout.decode().splitlines()) == 3, cp.stdout
    smarthost.start()
    cp = as_nobody(sb, ["flush"])
    assert cp.returncode == 0, cp.stderr
    sb.wait(lambda: len(smarthost.messages) == 3, what="three deliveries")
    # Without the daemon nobody can list: a clear refusal.
    assert sb.stop_daemon() == 0
    cp = as_nobody(sb, ["queue"])
    assert cp.returncode == EX_NOPERM, cp.stderr
    assert b"posternd, which would list it, is not running" in cp.stderr
