"""The spool against the postern user and the postern group (issue 15
items 1 and 3, issue 14 item 7).

posternd(8), SECURITY: root trusts nothing that the postern user or the
postern group can write. Each test performs the attack with the
attacker's own uid (hostile.py), posternd running as root with
mail_owner = pstnd1, and checks that the file root was to clobber is
untouched and that every other message still arrives exactly once.
"""

import os
import re
import signal
import stat
import subprocess
import uuid

import pytest

from conftest import TIMEOUT, status_re
from hostile import markers_at, users  # noqa: F401 (a fixture)
from test_privdrop import (RCPT, SENDER, USER, delivered, make_sb,  # noqa
                           send, world)

EX_CONFIG = 78
LATER = "later@example.com"


def victim_file(world):
    """A root:root 0644 file outside the spool that root must not change."""
    path = os.path.join(world.base, "victim-%s" % uuid.uuid4().hex[:8])
    with open(path, "w") as f:
        f.write("precious\n")
    os.chmod(path, 0o644)
    return path


def assert_untouched(path):
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 0
    assert st.st_mode & 0o7777 == 0o644
    with open(path) as f:
        assert f.read() == "precious\n"


def start_refused(sb):
    p = subprocess.run([sb.bins["posternd"], "-f", "-C", sb.confdir],
                       capture_output=True, text=True, timeout=TIMEOUT)
    return p.returncode, p.stderr


# ---- item 1: the postern user plants links where root opens ------------

@pytest.mark.parametrize("kind,why", [
    ("symlink", "a symbolic link"),
    ("hardlink", "a file with more than one hard link"),
    ("fifo", "not a regular file"),
])
def test_postern_user_cannot_make_root_clobber_a_file(make_sb, world, users,
                                                      kind, why):
    """The root supervisor opens pid/master.lock, in a directory the
    postern user owns, at every start. A link planted there must not
    make root truncate (or hang on) another file: posternd refuses with
    the fix; SIGHUP and the restart of a daemon process open nothing."""
    sb = make_sb(smtp_tls_security_level="none")
    target = victim_file(world)
    sb.start_daemon()
    delivered(sb, send(sb))
    lock = os.path.join(sb.spool, "pid", "master.lock")
    # The compromised postern user replaces the lock file while root
    # holds it.
    plant = {"symlink": "ln -s %s %s" % (target, lock),
             "hardlink": "ln %s %s" % (target, lock),
             "fifo": "mkfifo %s" % lock}[kind]
    r = users.postern.sh("rm -f %s && %s" % (lock, plant), check=False)
    if r.returncode != 0 and kind == "hardlink":
        # fs.protected_hardlinks stopped the user; a kernel without it
        # would not have: plant the same link as root.
        os.link(target, lock)
    else:
        assert r.returncode == 0, r.stderr
    # SIGHUP: the supervisor's root child reads only the configuration.
    sb.daemon.send_signal(signal.SIGHUP)
    sb.wait_log(r"SIGHUP: restarting the daemon")
    delivered(sb, send(sb))
    assert_untouched(target)
    assert sb.stop_daemon() == 0
    # The next start refuses, and says what to do.
    rc, err = start_refused(sb)
    assert rc == EX_CONFIG, err
    assert "%s is %s, which posternd does not open" % (lock, why) in err
    assert "rm %s" % lock in err
    assert_untouched(target)
    # The fix, as printed; then all is well, and the file still intact.
    os.unlink(lock)
    sb.start_daemon()
    delivered(sb, send(sb))
    assert sb.stop_daemon() == 0
    assert_untouched(target)
    st = os.lstat(lock)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 0


def test_lock_file_of_another_owner_refused(make_sb, world, users):
    """A regular lock file the postern user made (it could be a file it
    means root to write into later) is not root's: refused."""
    sb = make_sb(smtp_tls_security_level="none")
    sb.start_daemon()
    assert sb.stop_daemon() == 0
    lock = os.path.join(sb.spool, "pid", "master.lock")
    users.postern.sh("rm -f %s && echo 1 > %s" % (lock, lock))
    rc, err = start_refused(sb)
    assert rc == EX_CONFIG, err
    assert "%s belongs to uid %d, not to uid 0" % (lock, world.uid) in err


def test_direct_mode_refuses_a_lock_file_of_another_owner(make_sb, world,
                                                           users):
    """postern's direct mode (no daemon) takes the same lock as root: a
    lock file the postern user made is refused there too."""
    sb = make_sb(smtp_tls_security_level="none")
    sb.start_daemon()
    assert sb.stop_daemon() == 0
    lock = os.path.join(sb.spool, "pid", "master.lock")
    users.postern.sh("rm -f %s && echo 1 > %s" % (lock, lock))
    r = sb.run("postern", ["-C", sb.confdir, "delete", "ABCDEF0001"],
               timeout=10)
    err = r.stderr.decode()
    assert r.returncode == EX_CONFIG, err
    assert "%s belongs to uid %d, not to uid 0" % (lock, world.uid) in err
    assert "changing the queue directly" not in err


def test_queue_directory_must_be_roots(make_sb, world, users):
    """Root reaches pid/ and the other directories through the queue
    directory: if the postern user owned it, it could swap pid/ for a
    link to any directory. Refused, with the command that fixes it."""
    sb = make_sb(smtp_tls_security_level="none")
    sb.start_daemon()
    assert sb.stop_daemon() == 0
    os.chown(sb.spool, world.uid, world.gid)
    rc, err = start_refused(sb)
    assert rc == EX_CONFIG, err
    assert "%s is owned by uid %d, not by root" % (sb.spool,
                                                   world.uid) in err
    fix = err.split("fix with: ", 1)[1].strip().splitlines()[0]
    assert fix == "chown root %s" % sb.spool, fix
    subprocess.run(["sh", "-c", fix], check=True)
    sb.start_daemon()
    delivered(sb, send(sb))


def test_links_in_the_queues_are_not_adopted_by_root(make_sb, world, users):
    """At each start root gives its own leftover queue files to
    mail_owner (spool_adopt). A symbolic or hard link to a root file,
    planted in deferred/ by the postern user, must not make root give it
    that file; the daemon then quarantines both."""
    sb = make_sb(smtp_tls_security_level="none")
    target = victim_file(world)
    sb.start_daemon()
    assert sb.stop_daemon() == 0
    deferred = os.path.join(sb.spool, "deferred")
    users.postern.sh("ln -s %s %s/ABCDEF0001" % (target, deferred))
    if users.postern.sh("ln %s %s/ABCDEF0002" % (target, deferred),
                        check=False).returncode != 0:
        os.link(target, os.path.join(deferred, "ABCDEF0002"))
    sb.start_daemon()
    for name, why in (("ABCDEF0001", "a symbolic link"),
                      ("ABCDEF0002", "a file with more than one hard link")):
        sb.wait_log(r"%s: moved to corrupt/%s: the queue file is %s" % (
            name, name, why))
    assert_untouched(target)
    delivered(sb, send(sb))
    assert sb.stop_daemon() == 0
    assert_untouched(target)


# ---- review finding 1: root's queue tools read spool files ----------------

@pytest.mark.parametrize("queue", ["deferred", "hold"])
def test_root_queue_tools_refuse_fifo_and_link(make_sb, world, users, queue):
    """postern queue and postern cat run as root read queue files the
    postern user can replace. A FIFO there must not hang them (in
    direct mode while holding the queue lock), nor a symbolic link make
    them open a file of root's: each is skipped with a warning."""
    sb = make_sb(smtp_tls_security_level="none")
    target = victim_file(world)
    sb.start_daemon()           # makes the spool
    assert sb.stop_daemon() == 0
    d = os.path.join(sb.spool, queue)
    fifo, link = "ABCDEF00F1", "ABCDEF00F2"
    users.postern.sh("mkfifo %s/%s && ln -s %s %s/%s" % (d, fifo, target,
                                                          d, link))
    r = sb.run("postern", ["-C", sb.confdir, "queue"], timeout=10)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    for name, why in ((fifo, "not a regular file"),
                      (link, "a symbolic link")):
        assert "%s: skipped, %s/%s is %s" % (name, d, name, why) in err, err
        r = sb.run("postern", ["-C", sb.confdir, "cat", name], timeout=10)
        err2 = r.stderr.decode()
        assert r.returncode != 0, err2
        assert "%s: cannot read it: %s" % (name, why) in err2, err2
    assert "precious" not in r.stdout.decode()
    assert stat.S_ISFIFO(os.lstat(os.path.join(d, fifo)).st_mode)
    assert_untouched(target)


# ---- item 3: a member of the postern group plants files in incoming/new --

def forged_queue_file(sb):
    """A valid queue file for LATER, as the attacker could write one:
    made by sendmail while no daemon runs, then taken away. Returns
    (its bytes, the marker in them)."""
    sb.start_daemon()           # makes the spool
    assert sb.stop_daemon() == 0
    marker = send(sb, rcpt=LATER)
    new = os.path.join(sb.spool, "incoming", "new")
    name = os.listdir(new)[0]
    with open(os.path.join(new, name), "rb") as f:
        data = f.read()
    os.unlink(os.path.join(new, name))
    return data, marker


def test_group_member_plants_fifo_links_and_a_colliding_name(make_sb, world,
                                                             users):
    sb = make_sb(smtp_tls_security_level="none")
    sb.smarthost.rcpt_replies = {LATER: "451 4.3.0 try later"}
    template, tmark = forged_queue_file(sb)
    target = victim_file(world)
    sb.start_daemon()
    # Another user's message, deferred: its queue ID is the target.
    victim = send(sb, rcpt=LATER)
    line = sb.wait_log(status_re(LATER, "deferred"))[0]
    vqid = re.search(status_re(LATER, "deferred"), line).group(1)
    sb.wait(lambda: sb.find_qid(vqid) == ["deferred"], what="deferred")
    assert os.path.exists(os.path.join(sb.spool, "state", vqid))

    # The attacker's files: written in incoming/tmp, moved into new/.
    forged = "pd-%s" % uuid.uuid4().hex
    data = template.replace(tmark.encode(), forged.encode())
    tmp = os.path.join(sb.spool, "incoming", "tmp", "atk-%s" % forged[3:11])
    new = os.path.join(sb.spool, "incoming", "new")
    users.group.run("/usr/bin/python3", "-c", "import sys; open(sys.argv[1], 'wb')"
                    ".write(bytes.fromhex(sys.argv[2]))", tmp, data.hex())
    users.group.sh(
        "mkfifo %(n)s/FFFF0000F1 && ln -s %(t)s %(n)s/FFFF0000F2 && "
        "ln %(f)s %(n)s/FFFF0000F3 && cp %(f)s %(f)s.2 && "
        "mv %(f)s.2 %(n)s/%(v)s" % {"n": new, "t": target, "f": tmp,
                                    "v": vqid})
    # Each refused thing is quarantined; the collision gets a new ID.
    for name, why in (("FFFF0000F1", "not a regular file"),
                      ("FFFF0000F2", "a symbolic link"),
                      ("FFFF0000F3", "a file with more than one hard link")):
        sb.wait_log(r"%s: moved to corrupt/%s: %s" % (name, name, why))
    line = sb.wait_log(r"%s: queue ID in use by another message; "
                       r"incoming/new/%s picked up as ([0-9A-F]+)" % (
                           vqid, vqid))[0]
    fqid = line.rsplit(" ", 1)[1]
    assert fqid != vqid
    assert sorted(sb.queue_files("corrupt")) == ["FFFF0000F1", "FFFF0000F2",
                                                 "FFFF0000F3"]
    # The daemon did not hang on the FIFO, and the victim's message and
    # its state record are where they were.
    delivered(sb, send(sb))
    assert sb.find_qid(vqid) == ["deferred"]
    assert os.path.exists(os.path.join(sb.spool, "state", vqid))
    assert_untouched(target)
    # The relay takes everything now: each message arrives exactly once.
    sb.smarthost.rcpt_replies = {}
    assert sb.postern(["flush"]).returncode == 0
    sb.wait(lambda: markers_at(sb.smarthost, victim) == 1 and
            markers_at(sb.smarthost, forged) == 1, what="both delivered")
    sb.wait(lambda: sb.queue_files("deferred") == [], what="queue empty")
    assert markers_at(sb.smarthost, victim) == 1
    assert markers_at(sb.smarthost, forged) == 1
    assert sb.stop_daemon() == 0


# ---- issue 14 item 7: root's mail that the daemon cannot read ------------

def test_root_submitted_unreadable_mail_is_held_with_the_fix(make_sb, world,
                                                              bins):
    """root runs sendmail without the set-group-ID group: its file is
    root:root 0640, which the daemon (pstnd1) may not read. It is held,
    with the command that sends it; that command works."""
    sb = make_sb(smtp_tls_security_level="none")
    sb.start_daemon()
    marker = "pd-%s" % uuid.uuid4().hex
    r = subprocess.run([bins["sendmail"], "-C", sb.confdir, "-i", "-f",
                        SENDER, RCPT], input=("Subject: %s\n\n%s\n" % (
                            marker, marker)).encode(), capture_output=True)
    assert r.returncode == 0, r.stderr
    line = sb.wait_log(r"user %s may not read this message" % USER)[0]
    m = re.search(r"([0-9A-F]+): user %s may not read this message \(owner "
                  r"uid 0, mode 0640\): moved to hold/; to send it: chown "
                  r"%s (\S+) && postern release \1" % (USER, USER), line)
    assert m, line
    qid, path = m.group(1), m.group(2)
    assert sb.find_qid(qid) == ["hold"]
    os.chown(path, world.uid, -1)
    assert sb.postern(["release", qid]).returncode == 0
    delivered(sb, marker)
    assert sb.stop_daemon() == 0


# ---- review finding 4: a decoy in incoming/new under a queued message's ID --

@pytest.mark.parametrize("queues", [[], ["incoming"]])
def test_decoy_in_incoming_does_not_cost_the_victim_its_state(
        make_sb, world, users, queues):
    """A group member names a file in incoming/new after a deferred
    message. Root's postern delete (direct mode) takes the deferred
    message, not the decoy; told to delete from incoming, it removes the
    decoy and leaves the victim's state record: no recipient already
    sent gets the message again."""
    sb = make_sb(smtp_tls_security_level="none")
    sb.smarthost.rcpt_replies = {LATER: "451 4.3.0 try later"}
    template, tmark = forged_queue_file(sb)
    sb.start_daemon()
    victim = "pd-%s" % uuid.uuid4().hex
    sb.send_ok(["-i", "-f", SENDER, RCPT, LATER],
               ("From: <%s>\nSubject: %s\n\n%s\n" % (
                   SENDER, victim, victim)).encode())
    line = sb.wait_log(status_re(LATER, "deferred"))[0]
    vqid = re.search(status_re(LATER, "deferred"), line).group(1)
    sb.wait(lambda: sb.find_qid(vqid) == ["deferred"], what="deferred")
    delivered(sb, victim)       # to RCPT, recorded in state/vqid
    state = os.path.join(sb.spool, "state", vqid)
    assert os.path.exists(state)
    assert sb.stop_daemon() == 0

    forged = "pd-%s" % uuid.uuid4().hex
    data = template.replace(tmark.encode(), forged.encode())
    tmp = os.path.join(sb.spool, "incoming", "tmp", "atk-%s" % forged[3:11])
    new = os.path.join(sb.spool, "incoming", "new")
    users.group.run("/usr/bin/python3", "-c", "import sys; open(sys.argv[1], "
                    "'wb').write(bytes.fromhex(sys.argv[2]))", tmp, data.hex())
    users.group.sh("mv %s %s/%s" % (tmp, new, vqid))
    r = sb.run("postern", ["-C", sb.confdir, "delete", vqid] + queues,
               timeout=10)
    assert r.returncode == 0, r.stderr.decode()
    if queues:
        assert sb.find_qid(vqid) == ["deferred"]
        assert os.path.exists(state)
    else:
        assert sb.find_qid(vqid) == ["incoming/new"]
        assert not os.path.exists(state)

    sb.smarthost.rcpt_replies = {}
    sb.start_daemon()
    if queues:
        sb.wait(lambda: sb.postern(["flush"]).returncode == 0,
                what="flush")
        sb.wait(lambda: markers_at(sb.smarthost, victim) == 2,
                what="the victim's message to LATER")
    else:
        delivered(sb, forged)
    sb.wait(lambda: sb.all_queued() == {}, what="queue empty")
    assert sb.stop_daemon() == 0
    rcpts = [t for m in sb.smarthost.messages if victim.encode() in m.data
             for t in m.rcpt_tos]
    assert sorted(rcpts) == sorted([RCPT] + ([LATER] if queues else []))
