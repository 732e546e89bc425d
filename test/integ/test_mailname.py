"""myorigin = /etc/mailname (issue 14, item 2): a Debian satellite's
Postfix main.cf, imported with `postern conf --import`, names the mail
domain through a file. myhostname, mydomain and myorigin given as an
absolute path stand for the file's first line; a value that still is not
a domain stops sendmail, posternd, postern check and postern route with
exit 78 and the fix. Also --help / --version of the three programs
(item 7)."""

import os
import subprocess

import pytest

from conftest import EX_CONFIG, _env, check_sanitizer, status_re

MAILNAME = "mail.home.example"

# Debian 12's main.cf after `dpkg-reconfigure postfix` as "Satellite
# system" (the comments trimmed); MAILNAME_PATH is replaced.
DEBIAN_SATELLITE = """\
# Debian specific:  Specifying a file name will cause the first
# line of that file to be used as the name.  The Debian default
# is /etc/mailname.
#myorigin = /etc/mailname

smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no
append_dot_mydomain = no
readme_directory = no
compatibility_level = 3.6
smtpd_tls_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem
smtpd_tls_key_file=/etc/ssl/private/ssl-cert-snakeoil.key
smtpd_tls_security_level=may
smtp_tls_CApath=/etc/ssl/certs
smtp_tls_security_level=may
smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated \
defer_unauth_destination
myhostname = nas.home.example
alias_maps = hash:/etc/aliases
alias_database = hash:/etc/aliases
myorigin = MAILNAME_PATH
mydestination = $myhostname, nas, localhost.localdomain, localhost
relayhost = [smtp.example.com]:587
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128
mailbox_size_limit = 0
recipient_delimiter = +
inet_interfaces = loopback-only
default_transport = smtp
inet_protocols = all
"""


def import_satellite(sb, mailname_path):
    """Import the Debian main.cf into the sandbox's config dir, then let
    the sandbox's own settings (spool, relay, no /etc/aliases) follow."""
    pf = os.path.join(sb.root, "postfix")
    os.makedirs(pf)
    with open(os.path.join(pf, "main.cf"), "w") as f:
        f.write(DEBIAN_SATELLITE.replace("MAILNAME_PATH", mailname_path))
    os.unlink(os.path.join(sb.confdir, "main.cf"))
    cp = sb.postern(["conf", "--import", "-f", pf])
    return cp


def append_sandbox(sb):
    path = os.path.join(sb.confdir, "main.cf")
    with open(path) as f:
        imported = f.read()
    assert "myorigin = " in imported, imported
    p = sb.base_params()
    del p["myhostname"]
    with open(path, "a") as f:
        f.write("".join("%s = %s\n" % kv for kv in p.items()))
    return imported


def test_imported_debian_satellite_with_mailname_file(sandbox):
    sb = sandbox
    mailname = os.path.join(sb.root, "mailname")
    with open(mailname, "w") as f:
        f.write(MAILNAME + "\n")
    cp = import_satellite(sb, mailname)
    assert cp.returncode == 0, cp
    imported = append_sandbox(sb)
    assert "myorigin = %s\n" % mailname in imported, imported
    cp = sb.postern(["conf", "-x", "myorigin", "myhostname"])
    assert cp.stdout.decode() == ("myorigin = %s\nmyhostname = "
                                  "nas.home.example\n" % MAILNAME), cp
    sb.start_daemon()
    sb.send_ok(["-i", "root"], b"To: root\nSubject: hello\n\nx\n")
    sb.wait_log(status_re("root@" + MAILNAME, "sent"))
    (m,) = sb.smarthost.messages
    assert m.mail_from == "root@" + MAILNAME
    assert m.rcpt_tos == ["root@" + MAILNAME]
    assert "\r\nTo: root@%s\r\n" % MAILNAME in m.data.decode()
    assert "/" not in m.mail_from


def bad_name_exits(sb, what):
    """Every program stops with 78 and says what; nothing is queued."""
    runs = {
        "sendmail": sb.send(["-i", "root"], b"Subject: x\n\nx\n"),
        "posternd": sb.run("posternd", ["-f", "-C", sb.confdir],
                           timeout=20),
        "check": sb.postern(["check"]),
        "route": sb.postern(["route", "root"]),
    }
    for name, cp in runs.items():
        err = cp.stderr.decode()
        assert cp.returncode == EX_CONFIG, (name, cp.returncode, err)
        assert what in err, (name, err)
    assert sb.all_queued() == {}


def test_missing_mailname_file_is_exit_78(sandbox):
    sb = sandbox
    sb.make_spool()
    missing = os.path.join(sb.root, "no-mailname")
    sb.write_config(myorigin=missing)
    bad_name_exits(sb, "myorigin = %s: cannot read %s: No such file"
                   % (missing, missing))


def test_mailname_that_is_not_a_domain_is_exit_78(sandbox):
    sb = sandbox
    sb.make_spool()
    path = os.path.join(sb.root, "mailname")
    with open(path, "w") as f:
        f.write("my box\n")
    sb.write_config(myorigin=path)
    bad_name_exits(sb, 'the first line of %s, "my box", is not a domain'
                   % path)


def test_literal_value_that_is_not_a_domain_is_exit_78(sandbox):
    sb = sandbox
    sb.make_spool()
    sb.write_config(myorigin="etc/mailname")
    bad_name_exits(sb, "myorigin = etc/mailname is not a domain name")


def test_myhostname_from_a_file_gives_mydomain(sandbox):
    sb = sandbox
    path = os.path.join(sb.root, "hostname")
    with open(path, "w") as f:
        f.write("  box.lan.example  \nsecond line ignored\n")
    sb.write_config(myhostname=path)
    cp = sb.postern(["conf", "-x", "myhostname", "mydomain", "myorigin",
                     "smtp_helo_name"])
    assert cp.returncode == 0, cp
    assert cp.stdout.decode() == (
        "myhostname = box.lan.example\nmydomain = lan.example\n"
        "myorigin = box.lan.example\nsmtp_helo_name = box.lan.example\n")


def in_private_etc(sb, script, mailname):
    """Run sh -c script with an /etc/mailname that exists only in a
    private mount namespace (an overlay over /etc), as root."""
    if os.geteuid() != 0:
        pytest.skip("mount namespaces need root")
    up, work = os.path.join(sb.root, "up"), os.path.join(sb.root, "work")
    os.makedirs(up)
    os.makedirs(work)
    with open(os.path.join(up, "mailname"), "w") as f:
        f.write(mailname + "\n")
    setup = ("mount --make-rprivate / && mount -t overlay overlay -o "
             "lowerdir=/etc,upperdir=%s,workdir=%s /etc && " % (up, work))
    cp = subprocess.run(["unshare", "-m", "sh", "-c", setup + script],
                        capture_output=True, env=_env(), timeout=60)
    check_sanitizer(cp.stderr.decode(errors="replace"), script)
    return cp


def test_etc_mailname_in_a_private_mount_namespace(sandbox):
    """The stock Debian line, myorigin = /etc/mailname, imported as it is;
    sendmail and postern route read the namespace's /etc/mailname."""
    sb = sandbox
    os.unlink(os.path.join(sb.confdir, "main.cf"))
    pf = os.path.join(sb.root, "postfix")
    os.makedirs(pf)
    with open(os.path.join(pf, "main.cf"), "w") as f:
        f.write(DEBIAN_SATELLITE.replace("MAILNAME_PATH", "/etc/mailname"))
    sb.make_spool()
    script = ("{postern} -C {c} conf --import -f {pf} >/dev/null && "
              "cat >> {c}/main.cf <<EOF\n{extra}EOF\n"
              "{postern} -C {c} route root && "
              "echo 'Subject: x' | {sendmail} -C {c} -i root").format(
        postern=sb.bins["postern"], sendmail=sb.bins["sendmail"],
        c=sb.confdir, pf=pf,
        extra="".join("%s = %s\n" % kv for kv in sb.base_params().items()
                      if kv[0] != "myhostname"))
    cp = in_private_etc(sb, script, MAILNAME)
    out = cp.stdout.decode()
    assert cp.returncode == 0, (out, cp.stderr.decode())
    assert "sender root@%s\n" % MAILNAME in out, out
    with open(os.path.join(sb.confdir, "main.cf")) as f:
        assert "myorigin = /etc/mailname\n" in f.read()
    (qid,) = sb.queue_files("incoming/new")
    with open(os.path.join(sb.spool, "incoming/new", qid)) as f:
        env = f.read()
    assert "\nsender root@%s\n" % MAILNAME in env, env
    assert "\nrecipient root@%s\n" % MAILNAME in env, env


@pytest.mark.parametrize("prog", ["sendmail", "posternd", "postern"])
def test_help_and_version(sandbox, prog):
    sb = sandbox
    cp = sb.run(prog, ["--version"])
    assert cp.returncode == 0, cp
    out = cp.stdout.decode()
    assert out.startswith("%s (postern) " % prog) and out.count("\n") == 1
    version = out.split()[-1]
    cp = sb.run(prog, ["--help"])
    assert cp.returncode == 0, cp
    assert cp.stdout.decode().startswith("usage: %s " % prog), cp
    assert "--version" in cp.stdout.decode()
    assert cp.stderr == b""
    cp = sb.postern(["conf", "mail_version"])
    assert cp.stdout.decode() == "mail_version = %s\n" % version, cp


def test_import_with_a_missing_mailname_says_so(sandbox):
    """conf --import of a main.cf whose myorigin names a file that is not
    there writes nothing and names the file and the fix."""
    sb = sandbox
    missing = os.path.join(sb.root, "no-mailname")
    cp = import_satellite(sb, missing)
    err = cp.stderr.decode()
    assert cp.returncode != 0, cp
    assert "myorigin = %s: cannot read %s" % (missing, missing) in err, err
    assert "write this host's mail domain in it" in err, err
    assert not os.path.exists(os.path.join(sb.confdir, "main.cf"))
