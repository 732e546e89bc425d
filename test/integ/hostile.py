"""hostile.py - the attackers of test_hostile_*.py (issue 15).

posternd runs as root with mail_owner = pstnd1 in test_privdrop's world
(a copy of /etc bound over /etc in private mount namespaces); this
module adds two more real users to that copy:

- "pstatk", a local user in pstnd1's group: what a flaw in the
  set-group-ID sendmail gives an attacker (incoming/ is open to it);
- "pstloc", a local user in no group of ours: anyone on the machine.

Each attack runs with the attacker's own uid (setpriv), the postern
user's attacks with pstnd1's, so that the kernel, not the test, decides
what each may do. The trust boundaries are stated in posternd(8),
SECURITY.
"""

import os
import subprocess

import pytest

from test_privdrop import USER, ns_command

GROUP_ATTACKER = "pstatk"
LOCAL_ATTACKER = "pstloc"


def _passwd_entry(etc, name):
    with open(os.path.join(etc, "passwd")) as f:
        for line in f:
            f_ = line.split(":")
            if f_[0] == name:
                return int(f_[2]), int(f_[3])
    return None


class Who:
    """A real user: uid, gid, supplementary groups."""

    def __init__(self, name, uid, gid, groups=()):
        self.name, self.uid, self.gid = name, uid, gid
        self.groups = list(groups)

    def cmd(self, *argv):
        """argv run as this user (numeric ids: no name lookups)."""
        groups = (["--groups=" + ",".join(str(g) for g in self.groups)]
                  if self.groups else ["--clear-groups"])
        return (["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid]
                + groups + ["--"] + list(argv))

    def run(self, *argv, check=True, **kw):
        r = subprocess.run(self.cmd(*argv), capture_output=True, text=True,
                           **kw)
        if check:
            assert r.returncode == 0, (argv, r.stdout, r.stderr)
        return r

    def sh(self, script, check=True):
        return self.run("sh", "-c", script, check=check)


@pytest.fixture(scope="module")
def users(world):
    """.postern (pstnd1), .group (pstatk, in pstnd1's group), .local
    (pstloc), added to the world's /etc copy."""
    for name, extra in ((GROUP_ATTACKER, ["--groups", USER]),
                        (LOCAL_ATTACKER, [])):
        if _passwd_entry(world.etc, name) is None:
            r = subprocess.run(ns_command(
                world.etc, "useradd", "--no-create-home", "--home-dir",
                "/nonexistent", "--shell", "/bin/false", *extra, name),
                capture_output=True, text=True)
            assert r.returncode == 0, r.stdout + r.stderr

    class Users:
        pass
    u = Users()
    u.postern = Who(USER, world.uid, world.gid)
    uid, gid = _passwd_entry(world.etc, GROUP_ATTACKER)
    u.group = Who(GROUP_ATTACKER, uid, gid, [gid, world.gid])
    uid, gid = _passwd_entry(world.etc, LOCAL_ATTACKER)
    u.local = Who(LOCAL_ATTACKER, uid, gid)
    return u


def markers_at(sh, marker):
    """How many messages with marker the smarthost received."""
    return len([m for m in sh.messages if marker.encode() in m.data])
