"""postern conf --import: a Postfix null client's configuration, moved.

The SOHO_README sender-dependent example (test/soho-examples), with a few
settings added that a real Postfix main.cf has, is imported: each setting
is reported as used, ignored or unsupported; the tables in the Postfix
directory are copied (mode kept) and compiled; the new main.cf routes and
logs in as Postfix did (postern route says so). Errors leave nothing
written.
"""

import os
import shutil
import stat
import subprocess

from conftest import EX_DATAERR

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "test", "soho-examples", "soho-sender-dependent")
EX_NOINPUT = 66
EX_CANTCREAT = 73

EXTRA = """\
smtpd_banner = $myhostname ESMTP
inet_interfaces = loopback-only
canonical_maps = hash:/etc/postfix/canonical
queue_directory = /var/spool/postfix
alias_maps = hash:/etc/aliases
"""


def postfix_dir(tmp_path):
    """A copy of the example whose tables are named through
    $config_directory, as Postfix allows, pointing at the copy."""
    d = tmp_path / "postfix"
    shutil.copytree(EXAMPLE, d)
    text = (d / "main.cf").read_text().replace("/etc/postfix",
                                               "$config_directory")
    (d / "main.cf").write_text("config_directory = %s\n" % d + text + EXTRA)
    os.chmod(d / "sasl_passwd", 0o600)
    return d


def run(bins, confdir, args):
    return subprocess.run([bins["postern"], "-C", str(confdir)] + args,
                          capture_output=True, text=True)


def test_import_soho_sender_dependent(bins, tmp_path):
    pf = postfix_dir(tmp_path)
    pt = tmp_path / "postern"
    r = run(bins, pt, ["conf", "--import", str(pf)])
    assert r.returncode == 0, r.stdout + r.stderr
    report = r.stdout.splitlines()
    for name in ("smtp_sender_dependent_authentication",
                 "sender_dependent_relayhost_maps", "smtp_sasl_auth_enable",
                 "smtp_sasl_password_maps", "relayhost",
                 "smtp_tls_security_level", "alias_maps"):
        assert "used        %s" % name in report, r.stdout
    assert "ignored     smtpd_banner (not needed by a null client)" in report
    assert ("ignored     inet_interfaces (accepted and ignored by postern "
            "too)") in report
    assert ("ignored     queue_directory (not needed by a null client)"
            in report)
    assert ("unsupported canonical_maps (postern does not have this "
            "feature)") in report
    assert ("table   alias_maps: hash:/etc/aliases stays where it is; "
            "compile it for postern with: postern map -a hash:/etc/aliases"
            in report)
    assert "wrote %s/main.cf: 8 used, 4 ignored, 1 unsupported" % pt in \
        r.stdout

    # The tables: copied with their modes, compiled, named in main.cf.
    assert stat.S_IMODE(os.stat(pt / "sasl_passwd").st_mode) == 0o600
    assert (pt / "sasl_passwd.db").exists()
    assert (pt / "sender_relay.db").exists()
    r = run(bins, pt, ["conf", "-n", "smtp_sasl_password_maps",
                       "sender_dependent_relayhost_maps", "relayhost",
                       "queue_directory"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        "smtp_sasl_password_maps = hash:%s/sasl_passwd\n"
        "sender_dependent_relayhost_maps = hash:%s/sender_relay\n"
        "relayhost = [mail.isp.example]\n" % (pt, pt))
    # Left-out settings stay visible, as comments.
    text = (pt / "main.cf").read_text()
    assert "#canonical_maps = hash:/etc/postfix/canonical\n" in text

    # Routing and login work from the imported tables as in Postfix.
    rows = [ln.split() for ln in open(EXAMPLE + "/sender_relay")
            if ln.strip() and not ln.lstrip().startswith("#")]
    sender, relay = rows[0][0], rows[0][1]
    r = run(bins, pt, ["route", "-f", sender, "someone@example.org"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert relay in r.stdout, r.stdout
    assert "sender_dependent_relayhost_maps" in r.stdout


def test_import_refuses_to_overwrite_without_f(bins, tmp_path):
    pf = postfix_dir(tmp_path)
    pt = tmp_path / "postern"
    pt.mkdir()
    (pt / "main.cf").write_text("relayhost = [mine.example]\n")
    r = run(bins, pt, ["conf", "--import", str(pf)])
    assert r.returncode == EX_CANTCREAT
    assert "already exists: move it away, or add -f" in r.stderr
    assert (pt / "main.cf").read_text() == "relayhost = [mine.example]\n"
    assert sorted(os.listdir(pt)) == ["main.cf"]     # nothing copied
    r = run(bins, pt, ["conf", "--import", "-f", str(pf)])
    assert r.returncode == 0, r.stderr
    assert (pt / "main.cf.bak").read_text() == "relayhost = [mine.example]\n"
    assert "relayhost = [mail.isp.example]" in (pt / "main.cf").read_text()


def test_import_errors_write_nothing(bins, tmp_path):
    pt = tmp_path / "postern"
    r = run(bins, pt, ["conf", "--import", str(tmp_path / "missing")])
    assert r.returncode == EX_NOINPUT
    assert "cannot read %s/missing/main.cf" % tmp_path in r.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "main.cf").write_text("relayhost = [a.example]\n"
                                 "smtp_destination_concurrency_limit = lots\n")
    r = run(bins, pt, ["conf", "--import", str(bad)])
    assert r.returncode == EX_DATAERR, r.stdout + r.stderr
    assert "smtp_destination_concurrency_limit" in r.stderr
    assert not pt.exists() or not (pt / "main.cf").exists()
    r = run(bins, pt, ["conf", "--import"])
    assert r.returncode == 64 and "--import [-f] postfix_config_dir" in \
        r.stderr
