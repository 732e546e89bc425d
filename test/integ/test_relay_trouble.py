"""Relay trouble never loses mail, and postern check tells the truth
(issue 14, items 4, 5 and 6, and posternd's log without syslog).

  - A relay that wants a login we did not send (530 to MAIL FROM, the
    sasl_passwd key written "localhost:PORT" for "[localhost]:PORT"):
    the message is deferred with a 4.7.x status and a reason naming the
    fix; nothing is bounced; postern check exits 69 and shows the keys it
    tried.
  - No password over a connection that is not encrypted and verified
    (the Debian satellite: level may, noanonymous): deferred with the
    fix, the relay never sees AUTH, postern check fails, conf --import
    warns.
  - Port mix-ups: implicit TLS without smtp_tls_wrappermode (the client
    waits for a greeting that never comes), and wrapper mode on a
    STARTTLS port (a plain "220 " where a TLS record was expected): check
    and the daemon name the fix; check prints each step as it starts and
    gives up after -t seconds (the time taken is printed, not asserted).
  - posternd where nothing listens on /dev/log logs to standard error and
    says so (in a private mount namespace, /dev/log hidden).
Undeliverable notices going to hold/ are tested in test_bounce.py.
"""

import os
import re
import subprocess
import time

from conftest import status_re
from netns import run_in_netns
from tlscerts import server_context

SENDER = "alice@example.com"
RCPT = "bob@example.com"
EX_UNAVAILABLE = 69


def sasl_table(sb, key, value):
    """A texthash: password table in the sandbox, mode 0600."""
    path = os.path.join(sb.confdir, "sasl_passwd")
    with open(path, "w") as f:
        f.write("%s %s\n" % (key, value))
    os.chmod(path, 0o600)
    return "texthash:" + path


def send(sb):
    return sb.send_ok(["-i", "-f", SENDER, RCPT],
                      b"From: <%s>\nSubject: trouble\n\nbody\n" %
                      SENDER.encode())


def check(sb, *args):
    """postern check ARGS: (exit status, stdout), and the time taken is
    printed for the record."""
    t0 = time.monotonic()
    cp = sb.postern(["check"] + list(args))
    print("postern check%s: exit %d after %.1f s\n%s" %
          ("".join(" " + a for a in args), cp.returncode,
           time.monotonic() - t0, cp.stdout.decode()))
    return cp.returncode, cp.stdout.decode()


def status(sb, word):
    """(qid, line) of the first status=word line for RCPT."""
    rx = status_re(RCPT, word)
    line = sb.wait_log(rx)[0]
    return re.search(rx, line).group(1), line


def deferred_with(sb, *texts):
    """Start posternd, queue one message and wait for its deferral: dsn
    4.7.0 and each of texts in the line. (qid, line)."""
    sb.start_daemon()
    send(sb)
    qid, line = status(sb, "deferred")
    assert "dsn=4.7.0," in line, line
    for t in texts:
        assert t in line, line
    return qid, line


def no_notice(sb):
    assert sb.log_lines("sender non-delivery notification") == [], \
        sb.log_text()
    assert sb.log_lines("status=bounced") == [], sb.log_text()


# ---- item 4: a relay that requires a login we did not send -------------

def test_530_key_mismatch_defers_and_check_fails(sandbox_factory,
                                                 tls_certs):
    """The issue's case: TLS verified, the relay requires AUTH, and the
    table's key lacks the brackets. 530 at MAIL FROM defers (4.7.0) with
    the fix; postern check fails with the keys it tried."""
    ctx = server_context(tls_certs.good.cert, tls_certs.good.key)
    sb = sandbox_factory(tls_context=ctx, auth={"alice": "pw-alice-1"},
                         auth_required=True)
    port = sb.smarthost.port
    relay = "[localhost]:%d" % port
    sb.write_config(relayhost=relay, smtp_tls_CAfile=tls_certs.ca,
                    smtp_tls_security_level="verify",
                    smtp_sasl_auth_enable="yes",
                    smtp_sasl_password_maps=sasl_table(
                        sb, "localhost:%d" % port, "alice:pw-alice-1"),
                    minimal_backoff_time="1h")
    rc, out = check(sb)
    assert rc == EX_UNAVAILABLE, out
    assert "the server offers AUTH, but no login will be sent" in out, out
    assert "keys tried: %s, localhost" % relay in out, out
    assert "must match relayhost exactly, brackets and port included" \
        in out, out
    assert "OK" not in out.split("result:")[1].split("\n")[0], out
    qid, _ = deferred_with(sb, "the relay requires a login and none was "
                           "sent", "must match relayhost exactly, e.g. "
                           "[host]:port", "530 5.7.0 Authentication "
                           "required", "MAIL FROM")
    time.sleep(1)
    no_notice(sb)
    assert sb.all_queued() == {"deferred": [qid]}, sb.all_queued()
    assert sb.smarthost.messages == []


def test_530_without_sasl_defers(sandbox_factory):
    """No SASL configured at all, a relay that requires AUTH: deferred
    (4.7.0), never bounced, the reason says to enable a login."""
    sb = sandbox_factory(auth={"alice": "pw"}, auth_required=True)
    qid, _ = deferred_with(sb, "smtp_sasl_auth_enable = yes")
    time.sleep(1)
    no_notice(sb)
    assert sb.all_queued() == {"deferred": [qid]}, sb.all_queued()


def test_login_configured_but_auth_not_offered(sandbox_factory):
    """A login is configured, but the relay offers AUTH only over TLS and
    the level is none: check tries MAIL FROM (then RSET: no mail), meets
    the 530 and fails with the daemon's reason, which says why no login
    went out."""
    sb = sandbox_factory(auth={"alice": "pw-tls-only"}, auth_required=True)
    relay = "[localhost]:%d" % sb.smarthost.port
    sb.write_config(relayhost=relay, smtp_sasl_auth_enable="yes",
                    smtp_sasl_password_maps=sasl_table(
                        sb, relay, "alice:pw-tls-only"))
    rc, out = check(sb, "-f", SENDER)
    assert rc == EX_UNAVAILABLE, out
    assert "REFUSED: the relay requires a login but offered no AUTH" in out
    assert "530 5.7.0 Authentication required" in out, out
    deferred_with(sb, "offered no AUTH on this connection")
    assert sb.smarthost.messages == []


def test_530_bounces_when_auth_soft_bounce_is_off(sandbox_factory):
    """smtp_sasl_auth_soft_bounce = no: Postfix's hard bounce, by choice."""
    sb = sandbox_factory(auth={"alice": "pw"}, auth_required=True)
    sb.write_config(smtp_sasl_auth_soft_bounce="no")
    sb.start_daemon()
    send(sb)
    line = sb.wait_log(status_re(RCPT, "bounced"))[0]
    assert "dsn=5.7.0," in line, line
    # The chain: the bounce meets the same 530 and is held, never
    # discarded (postern.conf(5), DIFFERENCES FROM POSTFIX).
    line = sb.wait_log(r"warning: [0-9A-F]+: undeliverable notice placed "
                       r"on hold")[0]
    qid = re.search(r"warning: ([0-9A-F]+):", line).group(1)
    sb.wait(lambda: sb.all_queued() == {"hold": [qid]},
            what="the notice alone, in hold/")
    assert sb.log_lines("notification discarded") == []


# ---- item 5: no password over clear or unverified connections -----------

DEBIAN = {"smtp_tls_security_level": "may",
          "smtp_sasl_security_options": "noanonymous",
          "smtp_sasl_auth_enable": "yes"}


def clear_auth_sandbox(sandbox_factory, tls_certs, tls):
    """The relay offers PLAIN (in clear text too); main.cf as imported
    from a Debian satellite. With tls, it offers STARTTLS with a
    certificate this client cannot verify (no CAfile)."""
    ctx = (server_context(tls_certs.good.cert, tls_certs.good.key)
           if tls else None)
    sb = sandbox_factory(tls_context=ctx, auth={"alice": "pw-clear-1"},
                         auth_mechanisms=["PLAIN", "LOGIN"],
                         auth_require_tls=False, auth_required=True)
    relay = "[localhost]:%d" % sb.smarthost.port
    sb.write_config(relayhost=relay, smtp_sasl_password_maps=sasl_table(
        sb, relay, "alice:pw-clear-1"), **DEBIAN)
    return sb


def test_plain_over_clear_text_refused(sandbox_factory, tls_certs):
    """Level may, the relay offers no TLS: the password is not sent, the
    mail waits with the fix, the relay never saw AUTH; check fails."""
    sb = clear_auth_sandbox(sandbox_factory, tls_certs, tls=False)
    rc, out = check(sb)
    assert rc == EX_UNAVAILABLE, out
    assert "REFUSED: SASL login not sent" in out, out
    assert "smtp_sasl_allow_unencrypted = yes" in out, out
    qid, _ = deferred_with(sb, "is not encrypted",
                           "smtp_tls_security_level = verify")
    sb.stop_daemon()
    sb.smarthost.stop()
    assert sb.smarthost.wait(
        lambda s: len(s.transcripts) == s.connections, 30)
    for _, wire in sb.smarthost.transcripts:
        assert b"AUTH" not in wire.upper(), wire
        assert b"pw-clear-1" not in wire
    assert sb.smarthost.auth_attempts == []
    assert sb.all_queued() == {"deferred": [qid]}


def test_plain_over_unverified_tls_refused(sandbox_factory, tls_certs):
    """Level may, STARTTLS with a certificate that does not verify: the
    connection is encrypted but the peer could be anyone: no AUTH."""
    sb = clear_auth_sandbox(sandbox_factory, tls_certs, tls=True)
    rc, out = check(sb)
    assert rc == EX_UNAVAILABLE, out
    assert "is not verified" in out, out
    deferred_with(sb, "smtp_sasl_allow_unverified_tls = yes")
    assert sb.smarthost.auth_attempts == []


def test_allow_unencrypted_sends_in_clear(sandbox_factory, tls_certs):
    """The parameter that says so in its name lets it through."""
    sb = clear_auth_sandbox(sandbox_factory, tls_certs, tls=False)
    sb.write_config(smtp_sasl_allow_unencrypted="yes")
    sb.start_daemon()
    send(sb)
    sb.wait_log(status_re(RCPT, "sent"))
    assert sb.smarthost.messages[0].auth["user"] == "alice"


def test_import_warns_about_clear_text_password(bins, tmp_path):
    """conf --import of a Debian satellite (may + noanonymous + SASL)
    warns that the mail would wait, and names the fix."""
    pf = tmp_path / "postfix"
    pf.mkdir()
    (pf / "main.cf").write_text(
        "relayhost = [smtp.example.com]:587\n"
        "smtp_sasl_auth_enable = yes\n"
        "smtp_sasl_security_options = noanonymous\n"
        "smtp_tls_security_level = may\n")
    cp = subprocess.run([bins["postern"], "-C", str(tmp_path / "pt"),
                         "conf", "--import", str(pf)],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert re.search(r"(?m)^warning +smtp_tls_security_level = may with "
                     r"smtp_sasl_auth_enable = yes", cp.stdout), cp.stdout
    assert "smtp_tls_security_level = verify" in cp.stdout


# ---- item 6: port mix-ups ------------------------------------------------

def test_implicit_tls_port_without_wrappermode(sandbox_factory, tls_certs):
    """A server that waits for a ClientHello: check prints each step,
    gives up after -t seconds and says to set smtp_tls_wrappermode; the
    daemon's deferral says it too."""
    ctx = server_context(tls_certs.good.cert, tls_certs.good.key)
    sb = sandbox_factory(tls_context=ctx, implicit_tls=True)
    sb.write_config(relayhost="[localhost]:%d" % sb.smarthost.port,
                    smtp_tls_CAfile=tls_certs.ca,
                    smtp_tls_security_level="verify",
                    smtp_helo_timeout="2s")
    rc, out = check(sb, "-t", "2")
    assert rc == EX_UNAVAILABLE, out
    assert re.search(r"(?m)^  \.\.\. connecting to localhost port %d" %
                     sb.smarthost.port, out), out
    assert "  ... waiting for the server's greeting (up to 2s)" in out, out
    assert "needs smtp_tls_wrappermode = yes" in out, out
    assert "timed out while receiving the initial server greeting" in out
    sb.start_daemon()
    send(sb)
    line = sb.wait_log(status_re(RCPT, "deferred"))[0]
    assert "needs smtp_tls_wrappermode = yes" in line, line


def test_wrappermode_on_starttls_port(sandbox_factory, tls_certs):
    """Wrapper mode on a port that greets in clear text: "wrong version
    number" becomes "this port speaks STARTTLS: remove
    smtp_tls_wrappermode", in check and in the daemon's log."""
    ctx = server_context(tls_certs.good.cert, tls_certs.good.key)
    sb = sandbox_factory(tls_context=ctx)
    port = sb.smarthost.port
    sb.write_config(relayhost="[localhost]:%d" % port,
                    smtp_tls_CAfile=tls_certs.ca,
                    smtp_tls_security_level="verify",
                    smtp_tls_wrappermode="yes")
    rc, out = check(sb, "-t", "3")
    assert rc == EX_UNAVAILABLE, out
    assert "  ... TLS handshake at once (smtp_tls_wrappermode = yes)" \
        in out, out
    assert "port %d speaks STARTTLS" % port in out, out
    assert "remove smtp_tls_wrappermode" in out, out
    assert "cipher" not in out.split("what to do:")[1], out
    sb.start_daemon()
    send(sb)
    line = sb.wait_log(status_re(RCPT, "deferred"))[0]
    assert "port %d speaks STARTTLS" % port in line, line
    assert "remove smtp_tls_wrappermode" in line, line
    assert sb.smarthost.messages == []


def _real_ports(bins, root, cert, key, ca):
    """Ports 465 and 587 themselves: the words name them."""
    from conftest import Sandbox
    from smarthost import Smarthost
    ctx = server_context(cert, key)
    smtps = Smarthost(os.path.join(root, "r465"), port=465,
                      tls_context=ctx, implicit_tls=True).start()
    sub = Smarthost(os.path.join(root, "r587"), port=587,
                    tls_context=ctx).start()
    out = {}
    try:
        sb = Sandbox(os.path.join(root, "sb"), bins, smtps)
        for port, wrapper in ((465, "no"), (587, "yes")):
            sb.write_config(relayhost="[localhost]:%d" % port,
                            smtp_tls_CAfile=ca,
                            smtp_tls_security_level="verify",
                            smtp_tls_wrappermode=wrapper)
            out[port] = check(sb, "-t", "2")
    finally:
        smtps.close()
        sub.close()
    return out


def test_ports_465_and_587(bins, tmp_path, tls_certs):
    out = run_in_netns(_real_ports, bins, str(tmp_path),
                       tls_certs.good.cert, tls_certs.good.key,
                       tls_certs.ca)
    rc, text = out[465]
    assert rc == EX_UNAVAILABLE, text
    assert "REFUSED: port 465 needs smtp_tls_wrappermode = yes" in text
    rc, text = out[587]
    assert rc == EX_UNAVAILABLE, text
    assert "REFUSED: port 587 speaks STARTTLS" in text, text
    assert "remove smtp_tls_wrappermode" in text


def test_check_usage_of_t(sandbox):
    cp = sandbox.postern(["check", "-t", "0"])
    assert cp.returncode == 64, cp
    assert b"-t 0" in cp.stderr


# ---- posternd without syslog --------------------------------------------

def _no_syslog(bins, root):
    from conftest import Sandbox
    from smarthost import Smarthost
    if os.path.lexists("/dev/log"):
        subprocess.run(["mount", "--bind", "/dev/null", "/dev/log"],
                       check=True)
    sh = Smarthost(os.path.join(root, "received")).start()
    try:
        sb = Sandbox(os.path.join(root, "sb"), bins, sh)
        err = open(os.path.join(root, "stderr"), "wb")
        # In the background (no -f), with no maillog_file: syslog.
        cp = subprocess.run([bins["posternd"], "-C", sb.confdir],
                            stdin=subprocess.DEVNULL, stdout=err,
                            stderr=err, timeout=30)
        err.close()
        assert cp.returncode == 0
        sb.logfile = os.path.join(root, "stderr")
        sb.wait_log(r"postern/qmgr\[\d+\]: warning: no syslog "
                    r"\(/dev/log: [^)]+\): logging to standard error")
        sb.wait_log(r"daemon started")
        sb.send_ok(["-i", "-f", SENDER, RCPT], b"Subject: x\n\ny\n")
        sb.wait_log(status_re(RCPT, "sent"))
        return sb.log_text()
    finally:
        sh.close()


def test_posternd_without_syslog_logs_to_stderr(bins, tmp_path):
    text = run_in_netns(_no_syslog, bins, str(tmp_path))
    print(text)
