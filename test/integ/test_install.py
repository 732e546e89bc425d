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

from conftest import TIMEOUT, wait_for

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
        pytest.skip("systemd-analyze is not installed (no systemd here)")
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
