"""Installation and service integration.

- shellcheck accepts every shell script in the tree (scripts, init
  scripts, anything tracked with a shell #! line).
- systemd-analyze verify accepts the unit (skipped without systemd).
- scripts/install.sh into a scratch DESTDIR: the files, their modes, the
  unit with this installation's paths, main.cf never replaced, safe to
  run twice; `make uninstall` keeps the configuration and the spool.
- As root, in a private mount namespace whose /etc is a copy (the
  machine's users are never touched): the postern user and group are
  created once, sendmail is set-group-ID postern, the spool tree has
  postern-spool(5)'s owners and modes.
- As root, `make install` into a private namespace where the installed
  paths are the real ones: an unprivileged user queues mail through the
  set-group-ID sendmail; another user cannot list, read, delete or show
  it; -C is refused and POSTERN_CONFIG_DIR ignored for the user; while
  reading its input sendmail holds only the caller's group.
- posternd speaks systemd's readiness protocol on $NOTIFY_SOCKET
  (READY=1 after start-up, RELOADING=1 and READY=1 around SIGHUP,
  STOPPING=1 on SIGTERM), and -f -s logs to maillog_file, not stderr.
"""

import grp
import os
import pwd
import shutil
import socket
import stat
import subprocess

import pytest

from conftest import QID_RE, TIMEOUT, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SHELLS = (b"#!/bin/sh", b"#!/bin/bash", b"#!/usr/bin/env bash",
          b"#!/usr/bin/env sh", b"#!/sbin/openrc-run")


def shell_scripts():
    """Every tracked file that is a shell script, by name or by #!."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    found = []
    for name in out.decode().split("\0"):
        path = os.path.join(ROOT, name)
        if not name or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            first = f.readline().strip()
        if name.endswith(".sh") or first.startswith(SHELLS):
            found.append(name)
    return found


def test_shellcheck_every_script():
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is missing: scripts/install-deps installs it")
    scripts = shell_scripts()
    # The list must not be empty by mistake.
    assert "scripts/install.sh" in scripts
    assert "scripts/postern-user.sh" in scripts
    assert "etc/postern.init.in" in scripts
    r = subprocess.run(["shellcheck", "--severity=style"] + scripts,
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_systemd_unit_verifies(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is missing: scripts/install-deps "
                    "installs systemd")
    bindir = os.environ["POSTERN_BIN"]
    text = open(os.path.join(ROOT, "etc", "postern.service.in")).read()
    assert "@SBINDIR@" in text and "@SPOOLDIR@" in text
    unit = tmp_path / "postern.service"
    unit.write_text(text.replace("@SBINDIR@", bindir)
                    .replace("@SPOOLDIR@", str(tmp_path)))
    # --man=no: the man pages of Documentation= are not installed here.
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stdout + r.stderr
    assert "Type=notify" in text and "posternd -f -s" in text


def run_install(destdir, *extra, env=None, user="postern"):
    e = dict(os.environ, POSTERN_BUILD=os.environ["POSTERN_BIN"],
             POSTERN_USER=user)
    e.update(env or {})
    return subprocess.run(
        [os.path.join(ROOT, "scripts", "install.sh"), str(destdir),
         "/usr/sbin", "/usr/bin", "/usr/share/man", "/etc/postern",
         "/var/spool/postern", "/lib/systemd/system"] + list(extra),
        capture_output=True, text=True, env=e)


def test_install_destdir_twice_and_uninstall(tmp_path):
    dest = tmp_path / "root"
    r = run_install(dest, env={"CREATE_USER": "no"})
    assert r.returncode == 0, r.stderr
    for f in ("usr/sbin/sendmail", "usr/sbin/posternd", "usr/sbin/postern"):
        st = os.stat(dest / f)
        assert stat.S_IMODE(st.st_mode) & 0o755 == 0o755
    assert os.readlink(dest / "usr/bin/mailq") == "/usr/sbin/sendmail"
    assert os.readlink(dest / "usr/bin/newaliases") == "/usr/sbin/postern"
    for page in ("man1/postern.1", "man5/postern.conf.5",
                 "man5/postern-spool.5", "man8/sendmail.8",
                 "man8/posternd.8"):
        assert (dest / "usr/share/man" / page).is_file()
    unit = (dest / "lib/systemd/system/postern.service").read_text()
    assert "ExecStart=/usr/sbin/posternd -f -s" in unit
    assert "ReadWritePaths=/var/spool/postern" in unit
    assert "@" not in unit.replace("@system-service", "")
    # The administrator's main.cf survives a second install.
    cf = dest / "etc/postern/main.cf"
    cf.write_text("relayhost = [mine.example]:587\n")
    r = run_install(dest, env={"CREATE_USER": "no"})
    assert r.returncode == 0, r.stderr
    assert "keeping the existing /etc/postern/main.cf" in r.stdout
    assert cf.read_text() == "relayhost = [mine.example]:587\n"

    # Init scripts for systems without systemd: valid sh, paths filled in.
    for init in ("sysv", "openrc"):
        r = subprocess.run(["make", "-s", "-C", ROOT, "install-init",
                            "INIT=" + init, "DESTDIR=" + str(dest),
                            "SBINDIR=/usr/sbin"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        script = dest / "etc/init.d/postern"
        text = script.read_text()
        assert "/usr/sbin/posternd" in text and "@SBINDIR@" not in text
        assert os.access(script, os.X_OK)
        assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    r = subprocess.run(["make", "-s", "-C", ROOT, "install-init",
                        "INIT=upstart", "DESTDIR=" + str(dest)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "INIT must be sysv or openrc" in r.stderr

    # A spool with mail in it, to show uninstall leaves it alone.
    spool = dest / "var/spool/postern/deferred"
    spool.mkdir(parents=True)
    (spool / "ABCDEF123").write_text("queued mail\n")
    r = subprocess.run(["make", "-s", "-C", ROOT, "uninstall",
                        "DESTDIR=" + str(dest), "PREFIX=/usr",
                        "UNITDIR=/lib/systemd/system"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    left = sorted(str(p.relative_to(dest)) for p in dest.rglob("*")
                  if p.is_file() or p.is_symlink())
    assert left == ["etc/postern/main.cf",
                    "var/spool/postern/deferred/ABCDEF123"], left


def test_destdir_install_ignores_the_hosts_users(tmp_path):
    """With DESTDIR and without CREATE_USER=yes, nothing depends on the
    users of this host: no spool tree, no set-group-ID sendmail, even
    where a postern user exists (after a real make install)."""
    for env in ({}, {"CREATE_USER": "no"}):
        dest = tmp_path / ("root%d" % len(env))
        r = run_install(dest, env=env)
        assert r.returncode == 0, r.stderr
        assert "made by posternd at its first start" in r.stdout, r.stdout
        assert not (dest / "var").exists()
        mode = os.stat(dest / "usr/sbin/sendmail").st_mode
        assert not mode & stat.S_ISGID, oct(mode)


def test_install_compiles_etc_aliases(tmp_path, bins):
    """/etc/aliases under DESTDIR is compiled; a .db that is not postern's
    (Postfix's Berkeley DB file) is left alone; an up-to-date one too."""
    import dbm.ndbm
    dest = tmp_path / "root"
    (dest / "etc").mkdir(parents=True)
    aliases = dest / "etc/aliases"
    aliases.write_text("postmaster: root\nroot: you@example.com\n")
    r = run_install(dest, env={"CREATE_USER": "no"})
    assert r.returncode == 0, r.stderr
    assert "compiled /etc/aliases into /etc/aliases.db" in r.stdout, r.stdout
    cp = subprocess.run([bins["postern"], "map", "-s",
                         "hash:%s" % aliases], capture_output=True, text=True)
    assert sorted(cp.stdout.splitlines()) == ["postmaster root",
                                              "root you@example.com"], cp
    r = run_install(dest, env={"CREATE_USER": "no"})
    assert "/etc/aliases.db is up to date" in r.stdout, r.stdout

    os.unlink(str(aliases) + ".db")
    with dbm.ndbm.open(str(aliases), "c") as db:    # writes aliases.db
        db[b"root\0"] = b"you@example.com\0"
    before = (dest / "etc/aliases.db").read_bytes()
    os.utime(aliases, (2000000000, 2000000000))     # newer than the .db
    r = run_install(dest, env={"CREATE_USER": "no"})
    assert r.returncode == 0, r.stderr
    assert "leaving /etc/aliases.db alone" in r.stdout, r.stdout
    assert (dest / "etc/aliases.db").read_bytes() == before


# Run in a private mount namespace with a copy of /etc over /etc: user
# and group creation is real, and the machine's own files stay as they are.
NS_SCRIPT = r"""
set -eu
mount --make-rprivate /
cp -a /etc "$1/etc-copy"
mount --bind "$1/etc-copy" /etc
shift
"$@"
"$@"
getent passwd pstntest
getent group pstntest
"""


def test_install_as_root_creates_user_and_spool(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a user (in a private /etc copy)")
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is missing")
    dest = tmp_path / "root"
    dest.mkdir()
    env = dict(os.environ, POSTERN_BUILD=os.environ["POSTERN_BIN"],
               POSTERN_USER="pstntest", CREATE_USER="yes")
    cmd = [os.path.join(ROOT, "scripts", "install.sh"), str(dest),
           "/usr/sbin", "/usr/bin", "/usr/share/man", "/etc/postern",
           "/var/spool/postern", "/lib/systemd/system"]
    # Check the owners inside the namespace too: the uid exists there only.
    check = ("stat -c '%n %a %U %G' " + " ".join(
        str(dest / p) for p in (
            "usr/sbin/sendmail", "var/spool/postern",
            "var/spool/postern/incoming", "var/spool/postern/incoming/tmp",
            "var/spool/postern/incoming/new", "var/spool/postern/active",
            "var/spool/postern/deferred", "var/spool/postern/hold",
            "var/spool/postern/corrupt", "var/spool/postern/state",
            "var/spool/postern/pid", "var/spool/postern/public")))
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        NS_SCRIPT + check + "\n", "ns", str(tmp_path)] + cmd,
                       capture_output=True, text=True, env=env)
    if r.returncode != 0 and "unshare failed" in r.stderr:
        pytest.skip("the kernel refuses a mount namespace here")
    assert r.returncode == 0, r.stdout + r.stderr
    # Created once, then found: the second run creates nothing.
    assert r.stdout.count("created user pstntest") == 1, r.stdout
    assert r.stdout.count("created group pstntest") == 1, r.stdout
    with pytest.raises(KeyError):
        pwd.getpwnam("pstntest")    # the machine's /etc is untouched
    with pytest.raises(KeyError):
        grp.getgrnam("pstntest")
    modes = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0].startswith(str(dest)):
            modes[os.path.relpath(parts[0], dest)] = tuple(parts[1:])
    sp = "var/spool/postern"
    assert modes["usr/sbin/sendmail"] == ("2755", "root", "pstntest")
    assert modes[sp] == ("755", "root", "root")
    assert modes[sp + "/incoming"] == ("755", "root", "root")
    assert modes[sp + "/incoming/tmp"] == ("1730", "pstntest", "pstntest")
    assert modes[sp + "/incoming/new"] == ("1770", "pstntest", "pstntest")
    for d in ("active", "deferred", "hold", "corrupt", "state", "pid"):
        assert modes[sp + "/" + d] == ("700", "pstntest", "pstntest")
    assert modes[sp + "/public"] == ("755", "pstntest", "pstntest")


# ---- the set-group-ID sendmail, installed for real ------------------------
#
# `make install` as root into a private mount namespace: a tmpfs over /tmp
# holds the scratch root and a copy of /etc bound over /etc, so the service
# user and two ordinary users exist only there; the scratch root's
# etc/postern and var/spool are bound over /etc/postern and /var/spool, so
# the installed set-group-ID sendmail reads its compiled-in paths. The
# namespace lives as long as a holder process; each command enters it with
# nsenter and runs as a user with setpriv. The release build is installed
# (make install builds it when needed): a sanitizer cannot read its options
# in a set-ID process, and LeakSanitizer cannot run there at all.

INSTALLED_NS = r"""
set -eu
mount --make-rprivate /
# The source tree may itself live under /tmp: keep it as the working
# directory, and bind it back by that (not by its name, which the tmpfs
# hides) once the tmpfs is there.
cd "$1"
# A fresh tmpfs: private to the namespace and never mounted nosuid.
mount -t tmpfs -o mode=1777 postern-test /tmp
mkdir -m 0755 /tmp/etc /tmp/root /tmp/src
mount --no-canonicalize --bind . /tmp/src
cp -a /etc/. /tmp/etc/
mount --bind /tmp/etc /etc
useradd -M -s /bin/sh pstnua
useradd -M -s /bin/sh pstnub
make -s -j2 -C /tmp/src install PREFIX=/usr DESTDIR=/tmp/root >/tmp/install.log
mkdir -p /etc/postern
mount --bind /tmp/root/etc/postern /etc/postern
mount --bind /tmp/root/var/spool /var/spool
echo ready
exec sleep 600
"""

SVC = "pstntest2"
INSTALLED = "/tmp/root"     # DESTDIR, inside the namespace
SPOOL_NEW = "/var/spool/postern/incoming/new"


class InstalledRoot:
    """A namespace with postern installed for real (see INSTALLED_NS)."""

    def __init__(self):
        env = dict(os.environ, POSTERN_USER=SVC, CREATE_USER="yes")
        env.pop("POSTERN_CONFIG_DIR", None)
        self.holder = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", INSTALLED_NS, "ns", ROOT],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env)
        line = self.holder.stdout.readline()
        if line.strip() != "ready":
            self.holder.wait(TIMEOUT)
            err = self.holder.stderr.read()
            if "unshare failed" in err:
                pytest.skip("the kernel refuses a mount namespace here")
            pytest.fail("setting up the installed root failed:\n%s%s" %
                        (line, err), pytrace=False)
        self.ids = {}
        for user in (SVC, "pstnua", "pstnub"):
            pw = self.getent("passwd", user)
            self.ids[user] = (int(pw[2]), int(pw[3]))
        self.svc_gid = int(self.getent("group", SVC)[2])

    def path(self, p):
        """The namespace's path p, seen from outside it."""
        return "/proc/%d/root%s" % (self.holder.pid, p)

    def getent(self, db, name):
        with open(self.path("/etc/" + db)) as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if fields[0] == name:
                    return fields
        raise KeyError(name)

    def argv(self, user, args):
        return (["nsenter", "-t", str(self.holder.pid), "-m", "--",
                 "setpriv", "--reuid=" + user, "--regid=" + user,
                 "--init-groups"] + list(args))

    def env(self, extra=None):
        # What a user's shell might carry; sendmail must use none of it.
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C",
             "TMPDIR": "/nonexistent", "LANG": "de_DE.UTF-8",
             "TZ": "Invalid/Zone"}
        e.update(extra or {})
        return e

    def run(self, user, args, input=b"", env=None):
        return subprocess.run(self.argv(user, args), input=input,
                              capture_output=True, env=self.env(env),
                              timeout=TIMEOUT)

    def popen(self, user, args):
        # nsenter and setpriv exec: the pid becomes sendmail's.
        return subprocess.Popen(self.argv(user, args),
                                stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env())

    def new(self):
        return sorted(os.listdir(self.path(SPOOL_NEW)))

    def close(self):
        self.holder.kill()
        self.holder.wait(TIMEOUT)
        self.holder.stdout.close()
        self.holder.stderr.close()


@pytest.fixture
def installed():
    if os.geteuid() != 0:
        pytest.skip("needs root: installs set-group-ID and adds users (in "
                    "a private /etc copy)")
    for tool in ("unshare", "nsenter", "setpriv", "useradd"):
        if shutil.which(tool) is None:
            pytest.skip("%s (util-linux, passwd) is missing" % tool)
    ns = InstalledRoot()
    try:
        yield ns
    finally:
        ns.close()


def proc_gids(pid):
    """Real, effective, saved and file system gid of a process."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Gid:"):
                return tuple(int(x) for x in line.split()[1:])
    raise AssertionError("no Gid: line for %d" % pid)


def blocked_reading_stdin(pid):
    """True when pid is sendmail, inside read(2) on descriptor 0."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            if f.read().strip() != "sendmail":
                return False
        with open("/proc/%d/syscall" % pid) as f:
            return f.read().split()[:2] == ["0", "0x0"]
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_installed_sendmail_privileges(installed):
    """An unprivileged user queues mail through the installed set-group-ID
    sendmail; another user can neither see, read nor remove it; the
    caller cannot choose the configuration; the input is read with the
    caller's group only."""
    ns = installed
    ua_uid, ua_gid = ns.ids["pstnua"]
    sendmail = INSTALLED + "/usr/sbin/sendmail"
    postern = INSTALLED + "/usr/sbin/postern"
    st = os.stat(ns.path(sendmail))
    assert stat.S_IMODE(st.st_mode) == 0o2755 and st.st_gid == ns.svc_gid

    # pstnua queues a message: it is committed, hers, the group's, and
    # closed to others.
    cp = ns.run("pstnua", [sendmail, "-i", "rcpt@example.com"],
                b"Subject: from a\n\nsecret text of pstnua\n")
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr == b""
    names = ns.new()
    assert len(names) == 1 and QID_RE.match(names[0]), names
    qid = names[0]
    qpath = SPOOL_NEW + "/" + qid
    st = os.stat(ns.path(qpath))
    assert (st.st_uid, st.st_gid) == (ua_uid, ns.svc_gid)
    assert stat.S_IMODE(st.st_mode) == 0o640
    with open(ns.path(qpath), "rb") as f:
        text = f.read()
    assert b"secret text of pstnua" in text
    assert b"\nuid %d\n" % ua_uid in text
    assert os.listdir(ns.path("/var/spool/postern/incoming/tmp")) == []

    # pstnub cannot list the directory, read the file by its name, or
    # remove or show it with postern.
    cp = ns.run("pstnub", ["ls", SPOOL_NEW])
    assert cp.returncode != 0 and b"Permission denied" in cp.stderr, cp
    cp = ns.run("pstnub", ["cat", qpath])
    assert cp.returncode != 0 and b"Permission denied" in cp.stderr, cp
    for args in (["delete", qid], ["delete", "ALL"], ["cat", qid]):
        cp = ns.run("pstnub", [postern] + args)
        assert cp.returncode == 77, (args, cp)
        assert b"permission denied" in cp.stderr, (args, cp.stderr)
    assert ns.new() == [qid]

    # pstnua cannot point the set-group-ID program at a configuration of
    # her own, whose queue she could then fill with the group's files.
    evil = "/tmp/evil"
    cp = ns.run("pstnua", ["sh", "-c",
                           "umask 0 && mkdir -p %s/spool/incoming/tmp "
                           "%s/spool/incoming/new && "
                           "echo 'queue_directory = %s/spool' >%s/main.cf"
                           % (evil, evil, evil, evil)])
    assert cp.returncode == 0, cp.stderr
    cp = ns.run("pstnua", [sendmail, "-C", evil, "-i", "rcpt@example.com"],
                b"Subject: -C\n\nx\n")
    assert cp.returncode == 77, cp
    assert cp.stderr == (b"sendmail: fatal: -C is allowed only for root "
                         b"and the mail_owner user (%s)\n" % SVC.encode())
    assert ns.new() == [qid]
    cp = ns.run("pstnua", [sendmail, "-i", "rcpt@example.com"],
                b"Subject: env\n\nx\n", env={"POSTERN_CONFIG_DIR": evil})
    assert cp.returncode == 0, cp.stderr
    assert len(ns.new()) == 2      # the real spool took it ...
    for d in ("tmp", "new"):       # ... and the chosen one nothing
        assert os.listdir(ns.path(evil + "/spool/incoming/" + d)) == []

    # While sendmail reads its input it holds the caller's group only;
    # postern waits as the saved group, for the spool write.
    p = ns.popen("pstnua", [sendmail, "-i", "rcpt@example.com"])
    try:
        p.stdin.write(b"Subject: slow\n\nfirst line\n")
        p.stdin.flush()
        assert wait_for(lambda: blocked_reading_stdin(p.pid), TIMEOUT), \
            "sendmail never blocked reading its input"
        real, eff, saved, fs = proc_gids(p.pid)
        assert (real, eff, fs) == (ua_gid, ua_gid, ua_gid)
        assert saved == ns.svc_gid
        p.stdin.write(b"last line\n")
        p.stdin.close()
        p.wait(TIMEOUT)
        err = p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(TIMEOUT)
        p.stdout.close()
        p.stderr.close()
    assert p.returncode == 0, err
    assert len(ns.new()) == 3

    # The mail_owner user that root's main.cf names (make install wrote
    # it for POSTERN_USER) may choose the configuration.
    with open(ns.path("/etc/postern/main.cf")) as f:
        assert "\nmail_owner = %s\n" % SVC in f.read()
    cp = ns.run(SVC, [sendmail, "-C", evil, "-i", "rcpt@example.com"],
                b"Subject: -C by the owner\n\nx\n")
    assert cp.returncode == 0, cp
    assert len(os.listdir(ns.path(evil + "/spool/incoming/new"))) == 1
    assert len(ns.new()) == 3


def test_readiness_notification(sandbox):
    """READY=1 once running, RELOADING/READY around SIGHUP, STOPPING."""
    path = os.path.join(sandbox.root, "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(TIMEOUT)
    os.environ["NOTIFY_SOCKET"] = path
    try:
        d = sandbox.start_daemon(wait_ready=False)
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        assert srv.recv(256) == b"READY=1"
        # Ready means the control socket is there.
        assert os.path.exists(os.path.join(sandbox.spool, "public",
                                           "control"))
        d.send_signal(1)
        assert srv.recv(256) == b"RELOADING=1"
        assert srv.recv(256) == b"READY=1"
        sandbox.stop_daemon()
        assert srv.recv(256) == b"STOPPING=1"
    finally:
        srv.close()


def test_foreground_syslog_mode_logs_to_maillog_file(sandbox):
    """posternd -f -s (what the service files run) logs where a
    background daemon would: here maillog_file, not stderr."""
    maillog = os.path.join(sandbox.root, "maillog")
    sandbox.write_config(maillog_file=maillog)
    log = open(sandbox.logfile, "ab")
    p = subprocess.Popen([sandbox.bins["posternd"], "-f", "-s", "-C",
                          sandbox.confdir], stdout=log, stderr=log,
                         start_new_session=True)
    log.close()
    try:
        assert wait_for(lambda: os.path.exists(maillog) and
                        "daemon started" in open(maillog).read(), TIMEOUT)
        assert " postern/qmgr[%d]: daemon started" % p.pid in \
            open(maillog).read()
    finally:
        p.terminate()
        p.wait(TIMEOUT)
    assert "daemon started" not in sandbox.log_text()
