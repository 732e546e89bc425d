"""posternd refuses a spool that others could read or change.

Every spool directory must belong to the user posternd runs as (root
starting it: mail_owner), and the directories holding mail must be
closed to other users (postern-spool(5)). Each refusal exits 78 and
names the command that fixes it; after the fix the daemon starts, and
nothing queued was touched.
"""

import os
import pwd
import subprocess

import pytest

from conftest import EX_CONFIG, TIMEOUT, QID_RE


def start_fails(sandbox):
    p = subprocess.run([sandbox.bins["posternd"], "-f", "-C",
                        sandbox.confdir], capture_output=True, text=True,
                       timeout=TIMEOUT)
    return p.returncode, p.stderr


def queue_one(sandbox):
    sandbox.send_ok(["-f", "a@client.test.example", "b@example.com"],
                    b"Subject: kept\n\nbody\n")
    names = os.listdir(os.path.join(sandbox.spool, "incoming", "new"))
    assert len(names) == 1 and QID_RE.match(names[0])
    return names[0]


def test_wrong_owner_refused_with_the_fix(sandbox):
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory to another user")
    sandbox.make_spool()
    qid = queue_one(sandbox)
    nobody = pwd.getpwnam("nobody")
    deferred = os.path.join(sandbox.spool, "deferred")
    os.chown(deferred, nobody.pw_uid, nobody.pw_gid)
    me = pwd.getpwuid(os.geteuid()).pw_name
    rc, err = start_fails(sandbox)
    assert rc == EX_CONFIG, err
    assert "%s is owned by uid %d, not by %s" % (deferred, nobody.pw_uid,
                                                 me) in err
    assert "fix with: chown -R %s %s" % (me, deferred) in err
    # The fix, as printed, works; the message waited untouched.
    subprocess.run(["chown", "-R", me, deferred], check=True)
    assert os.path.exists(os.path.join(sandbox.spool, "incoming", "new",
                                       qid))
    sandbox.start_daemon()
    sandbox.wait_log(r"to=<b@example.com>.*status=sent")


@pytest.mark.parametrize("sub,mode,whom", [
    ("active", 0o755, "other users"),
    ("deferred", 0o750, "the group"),
    ("incoming/new", 0o1737, "other users"),
    ("incoming/tmp", 0o730, "the group"),      # group-writable, not sticky
    ("public", 0o775, "the group"),
])
def test_open_modes_refused_with_the_fix(sandbox, sub, mode, whom):
    sandbox.make_spool()
    path = os.path.join(sandbox.spool, sub)
    os.chmod(path, mode)
    rc, err = start_fails(sandbox)
    assert rc == EX_CONFIG, err
    assert "%s has mode %04o; its contents must not be open to %s" % (
        path, mode, whom) in err, err
    want = {"incoming/new": 0o1770, "incoming/tmp": 0o1730,
            "public": 0o755}.get(sub, 0o700)
    assert "fix with: chmod %04o %s" % (want, path) in err
    os.chmod(path, want)
    sandbox.start_daemon()


def test_symlink_instead_of_directory_refused(sandbox, tmp_path):
    sandbox.make_spool()
    hold = os.path.join(sandbox.spool, "hold")
    os.rmdir(hold)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    os.symlink(str(elsewhere), hold)
    rc, err = start_fails(sandbox)
    assert rc == EX_CONFIG
    assert "%s is not a directory but a symbolic link" % hold in err


def test_new_spool_gets_the_intended_modes(sandbox):
    sandbox.start_daemon()
    for sub, want in (("incoming/tmp", 0o1730), ("incoming/new", 0o1770),
                      ("active", 0o700), ("deferred", 0o700),
                      ("hold", 0o700), ("corrupt", 0o700), ("state", 0o700),
                      ("pid", 0o700), ("public", 0o755)):
        st = os.stat(os.path.join(sandbox.spool, sub))
        assert st.st_mode & 0o7777 == want, sub
        assert st.st_uid == os.geteuid(), sub


def test_every_problem_reported_at_once_with_one_fix(sandbox):
    """Issue 14 item 7: after a change of mail_owner posternd refused to
    start once per wrong directory. Now one refusal names every wrong
    owner and mode, and one command (printed) fixes them all."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give directories to another user")
    sandbox.make_spool()
    qid = queue_one(sandbox)
    nobody = pwd.getpwnam("nobody")
    wrong = ["active", "deferred", "hold", "state"]
    for sub in wrong:
        os.chown(os.path.join(sandbox.spool, sub), nobody.pw_uid,
                 nobody.pw_gid)
    os.chmod(os.path.join(sandbox.spool, "corrupt"), 0o755)
    os.chmod(os.path.join(sandbox.spool, "incoming/new"), 0o1777)
    rc, err = start_fails(sandbox)
    assert rc == EX_CONFIG, err
    for sub in wrong:
        assert "%s is owned by uid %d" % (os.path.join(sandbox.spool, sub),
                                          nobody.pw_uid) in err, err
    for sub, mode in (("corrupt", 0o755), ("incoming/new", 0o1777)):
        assert "%s has mode %04o" % (os.path.join(sandbox.spool, sub),
                                     mode) in err, err
    assert "fix them all with: " in err
    fix = err.split("fix them all with: ", 1)[1].strip().splitlines()[0]
    # One shell command, run as printed, fixes everything.
    subprocess.run(["sh", "-c", fix], check=True)
    sandbox.start_daemon()
    sandbox.wait_log(r"%s: to=<b@example.com>.*status=sent" % qid)
