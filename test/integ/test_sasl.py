"""SMTP AUTH to the relay (RFC 4954): the mechanisms, which one is chosen,
the security options, the password table and its lookup order, failures
that defer, and SCRAM against independent server implementations.

Servers:
  - the test smarthost (test/smarthost.py) with auth={user: secret}:
    PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER (its own code), and
    SCRAM-SHA-1/256 with -PLUS run by Cyrus SASL. It records who
    authenticated with which mechanism (msg.auth, auth_log) and every byte
    it received (transcripts; clear_text() is what went over the wire
    unencrypted).
  - Dovecot 2.3 (test/integ/dovecot.py): a real SMTP submission server,
    SCRAM-SHA-1 and SCRAM-SHA-256 (it has no channel binding), relaying
    to a test smarthost.

The relay is written "[localhost]:PORT" (the test certificates name
localhost), TLS level verify with the test CA unless a test says
otherwise.

What these tests assume of postern (Postfix's names and semantics):
  smtp_sasl_auth_enable = yes            AUTH at all (default no)
  smtp_sasl_password_maps = texthash:F   lines "key  user:password", the
      password being everything after the first ":" (it may hold ":");
      also inline:{ {key = user:password} } and static:user:password.
      Keys tried in order: with smtp_sender_dependent_authentication =
      yes the envelope sender, then "@domain"; then the relay as written
      in relayhost ("[localhost]:PORT"); then the bare host ("localhost").
      No entry: mail goes without AUTH.
  smtp_sasl_mechanism_filter = m1, m2    only these (case-insensitive)
  smtp_sasl_security_options             default "noplaintext,
      noanonymous": no PLAIN/LOGIN over a clear-text connection
  smtp_sasl_tls_security_options         default $smtp_sasl_security_
      options: no PLAIN/LOGIN over TLS either unless set (e.g. to
      "noanonymous"); used only when TLS is up
  Choice among what the server offers and the filter allows:
      SCRAM-SHA-256-PLUS > SCRAM-SHA-256 > SCRAM-SHA-1-PLUS > SCRAM-SHA-1
      > CRAM-MD5 > PLAIN > LOGIN; -PLUS only over TLS; XOAUTH2 and
      OAUTHBEARER (the secret is a token) only when the filter names them.
      Channel binding: tls-exporter over TLS 1.3, tls-unique over 1.2.
  A failed AUTH never bounces and never sends the mail without AUTH:
      "QID: to=<rcpt>, relay=localhost[127.0.0.1]:PORT, ..., dsn=4.7.N,
      status=deferred (SASL authentication failed; server
      localhost[127.0.0.1] said: 535 5.7.8 <server text>)" - the tests
      look for "SASL authentication failed", dsn=4.7.x and the server's
      reply text.
  No acceptable mechanism: no AUTH command at all, deferred with dsn=4.7.x
      and "SASL authentication failed" and "no (offered )?mechanism"
      (case-insensitive) in the reason.
  The password (or token) never appears in posternd's log, not even in
      base64.
"""

import base64
import binascii
import os
import re
import ssl
import uuid

import pytest

from conftest import removed_re, status_re
from tlscerts import server_context

RCPT = "bob@example.com"
SENDER = "alice@example.com"
AUTH_FAILED = "SASL authentication failed"
SMARTHOST_535 = "535 5.7.8 Authentication credentials invalid"
EX_CONFIG = 78
DOVECOT_535 = "535 5.7.8 Authentication failed."
NO_MECHANISM = re.compile(r"no (offered |suitable |acceptable |usable )?"
                          r"(SASL )?mechanism", re.I)
TOKEN_MECHS = ("XOAUTH2", "OAUTHBEARER")
SCRAM_ALL = ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS",
             "SCRAM-SHA-256-PLUS"]


def new_secret(kind="pw"):
    """A unique password (or token) that tests can look for anywhere."""
    if kind == "token":
        return "ya29.tok-%s" % uuid.uuid4().hex
    return "pw-%s" % uuid.uuid4().hex[:16]


# ---- fixtures and helpers -------------------------------------------

def password_map(sb, entries, kind="texthash"):
    """A smtp_sasl_password_maps value holding entries [(key, value)]
    ("{relay}" in a key is the sandbox's relay)."""
    entries = [(k.replace("{relay}", sb.relay), v) for k, v in entries]
    if kind == "inline":
        return "inline:{ %s }" % " ".join("{%s = %s}" % kv
                                          for kv in entries)
    if kind == "static":
        assert len(entries) == 1
        return "static:" + entries[0][1]
    path = os.path.join(sb.confdir, "sasl_passwd")
    with open(path, "w") as f:
        f.write("# SMTP AUTH credentials\n")
        for key, value in entries:
            f.write("%s  %s\n" % (key, value))
    os.chmod(path, 0o600)
    return "texthash:" + path


@pytest.fixture
def auth_sandbox(sandbox_factory, tls_certs):
    """make(users, mechanisms=None, *, entries=None, level="verify",
    tls=True, implicit_tls=False, auth_require_tls=True,
    auth_required=False, maximum_version=None, scram_channel_binding=None,
    map_kind="texthash", **main_cf) -> a Sandbox whose smarthost serves
    tls_certs.good (STARTTLS; implicit TLS; or no TLS) and offers AUTH with
    users {user: secret} and mechanisms (None: the smarthost's default
    list). main.cf: relayhost = [localhost]:PORT (sb.relay),
    smtp_tls_CAfile = the test CA, smtp_tls_security_level = level,
    smtp_sasl_auth_enable = yes, smtp_sasl_password_maps from entries
    [(key, "user:password")] (None: none), then main_cf. sb.secrets: every
    password of users and entries (see no_secret_leaked)."""
    def make(users, mechanisms=None, *, entries=None, level="verify",
             tls=True, implicit_tls=False, auth_require_tls=True,
             auth_required=False, maximum_version=None,
             scram_channel_binding=None, map_kind="texthash", **main_cf):
        ctx = None
        if tls:
            ctx = server_context(tls_certs.good.cert, tls_certs.good.key,
                                 maximum_version=maximum_version)
        sb = sandbox_factory(tls_context=ctx, implicit_tls=implicit_tls,
                             auth=dict(users), auth_mechanisms=mechanisms,
                             auth_require_tls=auth_require_tls,
                             auth_required=auth_required,
                             scram_channel_binding=scram_channel_binding)
        sb.relay = "[localhost]:%d" % sb.smarthost.port
        params = {"relayhost": sb.relay, "smtp_tls_CAfile": tls_certs.ca,
                  "smtp_tls_security_level": level,
                  "smtp_sasl_auth_enable": "yes"}
        if implicit_tls:
            params["smtp_tls_wrappermode"] = "yes"
        sb.secrets = set(users.values())
        if entries is not None:
            params["smtp_sasl_password_maps"] = password_map(sb, entries,
                                                             map_kind)
            sb.secrets.update(v.split(":", 1)[1] for _, v in entries)
        params.update(main_cf)
        sb.write_config(**params)
        return sb
    return make


def relay_of(port):
    return "relay=localhost[127.0.0.1]:%d," % port


def wait_status(sb, status, rcpt=RCPT, port=None):
    """(qid, line) of posternd's first status=<status> line for rcpt,
    which names the relay (port: the smarthost's unless given)."""
    rx = status_re(rcpt, status)
    line = sb.wait_log(rx)[0]
    qid = re.search(rx, line).group(1)
    port = sb.smarthost.port if port is None else port
    assert relay_of(port) in line, line
    return qid, line


def send(sb, sender=SENDER, rcpt=RCPT):
    """Queue a message with a unique marker; the marker."""
    marker = "sasl-%s" % uuid.uuid4().hex
    sb.send_ok(["-i", "-f", sender, rcpt],
               ("From: <%s>\nSubject: %s\n\nbody %s\n" %
                (sender, marker, marker)).encode())
    return marker


def delivered(sb, marker, rcpt=RCPT, port=None, relay=None):
    """Wait until the message with marker was sent and removed; the
    relay smarthost's Message."""
    qid, line = wait_status(sb, "sent", rcpt, port)
    sb.wait_log(removed_re(qid))
    sh = relay or sb.smarthost
    msgs = [m for m in sh.delivered_to(rcpt) if marker.encode() in m.data]
    assert len(msgs) == 1, sh.messages
    return msgs[0]


def deferred_auth(sb, *texts, rcpt=RCPT, port=None):
    """Wait for the deferral of a failed (or impossible) AUTH: dsn 4.7.x,
    "SASL authentication failed" and each of texts (a str, or a compiled
    regex) in the line; the message stays in deferred/ and nothing
    bounced. (qid, line)."""
    qid, line = wait_status(sb, "deferred", rcpt, port)
    assert re.search(r"dsn=4\.7\.\d{1,3},", line), line
    assert AUTH_FAILED in line, line
    for text in texts:
        if isinstance(text, str):
            assert text in line, "%r not in %r" % (text, line)
        else:
            assert text.search(line), "%r not in %r" % (text.pattern, line)
    sb.wait(lambda: sb.find_qid(qid) == ["deferred"],
            what="%s in deferred/" % qid)
    assert not sb.log_lines(r"status=bounced"), sb.log_text()
    return qid, line


def leaks(data, secret):
    """Whether data (bytes) holds secret, as is or inside base64."""
    want = secret.encode()
    if want in data:
        return True
    for token in re.findall(rb"[A-Za-z0-9+/=]{8,}", data):
        token = token.rstrip(b"=")
        try:
            if want in base64.b64decode(token + b"=" * (-len(token) % 4)):
                return True
        except (binascii.Error, ValueError):
            pass
    return False


def no_secret_leaked(sb, *more):
    """No secret of sb.secrets (and more) in posternd's log."""
    log = sb.log_text().encode()
    for secret in set(sb.secrets) | set(more):
        assert not leaks(log, secret), \
            "secret %r is in posternd's log" % secret


def closed_transcripts(sh, sb=None):
    """Stop posternd (if sb) and the smarthost; every connection's
    (serial, transcript)."""
    if sb is not None and sb.daemon_running():
        assert sb.stop_daemon() == 0
    sh.stop()
    assert sh.wait(lambda s: len(s.transcripts) == s.connections, 30), \
        "connections still open"
    return list(sh.transcripts)


def check_clear_text(sh, secrets, allow_auth=False):
    """Nothing of AUTH (unless allow_auth) and no secret went over a
    connection in clear text; a connection that had TLS only sent EHLO
    and STARTTLS before it."""
    for serial, wire in sh.transcripts:
        clear = sh.clear_text(serial)
        if not allow_auth:
            assert b"AUTH" not in clear.upper(), (serial, clear)
        for secret in secrets:
            assert not leaks(clear, secret), (serial, secret, clear)


def auth_commands(wire):
    """The AUTH command lines of a transcript (mechanism names, upper)."""
    return [m.decode().upper() for m in
            re.findall(rb"(?mi)^AUTH ([A-Za-z0-9_-]+)", wire)]


# ---- a. every mechanism, right and wrong secret ------------------------

def mech_user(mech):
    return "alice@example.com" if mech in TOKEN_MECHS else "alice"


@pytest.mark.parametrize("right", [True, False], ids=["right", "wrong"])
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2",
                                  "OAUTHBEARER"])
def test_mechanism(auth_sandbox, mech, right):
    """a. Over verified STARTTLS, each mechanism (the only one offered and
    the one the filter names) logs in with the right secret, and defers
    with a wrong one: the server's 535 in the log, the message kept in
    deferred/, no MAIL FROM after the failed AUTH, and the secret nowhere
    in the log or in clear text."""
    kind = "token" if mech in TOKEN_MECHS else "pw"
    user, secret = mech_user(mech), new_secret(kind)
    given = secret if right else new_secret(kind)
    sb = auth_sandbox({user: secret}, [mech],
                      entries=[("{relay}", "%s:%s" % (user, given))],
                      smtp_sasl_mechanism_filter=mech.lower(),
                      smtp_sasl_tls_security_options="noanonymous")
    sh = sb.smarthost
    sb.start_daemon()
    marker = send(sb)
    if right:
        m = delivered(sb, marker)
        assert m.tls is not None, "AUTH without TLS"
        assert m.auth == {"user": user, "mechanism": mech}, m.auth
        assert [a[1:] for a in sh.auth_attempts] == [(mech, user, True)], \
            sh.auth_log
    else:
        qid, line = deferred_auth(sb, SMARTHOST_535)
        assert sh.messages == [], sh.messages
        tries = [a for a in sh.auth_log if a["conn"] == sh.connections]
        assert tries and all(a["mechanism"] == mech and not a["ok"]
                             for a in tries), sh.auth_log
        # The whole exchange ran as the server wants it (for XOAUTH2 and
        # OAUTHBEARER: the error challenge answered as the mechanism
        # says); a 501 here means a protocol error of the client.
        assert tries[-1]["reply"] == SMARTHOST_535, tries[-1]
        assert tries[-1]["user"] == user, tries[-1]
    transcripts = closed_transcripts(sh, sb)
    check_clear_text(sh, [secret, given])
    if not right:
        for serial, wire in transcripts:
            assert b"MAIL FROM" not in wire.upper(), (serial, wire)
            assert marker.encode() not in wire
    no_secret_leaked(sb, given)


def test_mechanism_wrappermode(auth_sandbox):
    """a. AUTH over implicit TLS (smtp_tls_wrappermode): TLS from the first
    byte, so nothing at all in clear text."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["CRAM-MD5", "PLAIN"],
                      implicit_tls=True,
                      entries=[("{relay}", "alice:" + secret)])
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.auth == {"user": "alice", "mechanism": "CRAM-MD5"}, m.auth
    closed_transcripts(sb.smarthost, sb)
    for serial, _ in sb.smarthost.transcripts:
        assert sb.smarthost.clear_text(serial) == b""
    no_secret_leaked(sb)


# ---- b. the strongest mechanism ------------------------------------------

@pytest.mark.parametrize("offered,expected", [
    (["PLAIN", "LOGIN", "CRAM-MD5"], "CRAM-MD5"),
    (["CRAM-MD5", "LOGIN", "PLAIN"], "CRAM-MD5"),
    (["LOGIN", "PLAIN"], "PLAIN"),
    (["XOAUTH2", "OAUTHBEARER", "LOGIN"], "LOGIN"),
    (["GSSAPI", "NTLM", "LOGIN"], "LOGIN"),
], ids=["plain-login-cram", "cram-login-plain", "login-plain",
        "tokens-login", "unknown-login"])
def test_strongest_mechanism(auth_sandbox, offered, expected):
    """b. Several offered, plaintext allowed over TLS (noanonymous), no
    filter: postern takes the strongest by its own order, whatever the
    server's order; token mechanisms are never taken unless the filter
    names them, and unknown names are ignored. Exactly one AUTH."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, offered,
                      entries=[("{relay}", "alice:" + secret)],
                      smtp_sasl_tls_security_options="noanonymous")
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.auth == {"user": "alice", "mechanism": expected}, m.auth
    assert [a[1] for a in sb.smarthost.auth_attempts] == [expected]
    no_secret_leaked(sb)


def test_token_mechanisms_need_the_filter(auth_sandbox):
    """b. Only XOAUTH2 and OAUTHBEARER offered and no filter: the secret
    is taken for a password, not a token, so no mechanism is acceptable:
    deferred, no AUTH sent."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, list(TOKEN_MECHS),
                      entries=[("{relay}", "alice:" + secret)],
                      smtp_sasl_tls_security_options="noanonymous")
    sb.start_daemon()
    marker = send(sb)
    deferred_auth(sb, NO_MECHANISM)
    for serial, wire in closed_transcripts(sb.smarthost, sb):
        assert auth_commands(wire) == [], wire
        assert b"MAIL FROM" not in wire.upper()
        assert marker.encode() not in wire
    no_secret_leaked(sb)


def test_filter_excludes_everything_offered(auth_sandbox):
    """b. smtp_sasl_mechanism_filter names nothing the server offers:
    deferred without AUTH."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["PLAIN", "LOGIN", "CRAM-MD5"],
                      entries=[("{relay}", "alice:" + secret)],
                      smtp_sasl_mechanism_filter="scram-sha-256, "
                      "scram-sha-1",
                      smtp_sasl_tls_security_options="noanonymous")
    sb.start_daemon()
    send(sb)
    deferred_auth(sb, NO_MECHANISM)
    for serial, wire in closed_transcripts(sb.smarthost, sb):
        assert auth_commands(wire) == [], wire
    no_secret_leaked(sb)


# ---- c, d. security options -------------------------------------------

def test_default_options_refuse_plaintext_over_tls(auth_sandbox):
    """c. Postfix's defaults (noplaintext, also over TLS) and a server
    offering only PLAIN and LOGIN: no AUTH, deferred with the reason."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["PLAIN", "LOGIN"],
                      entries=[("{relay}", "alice:" + secret)])
    with open(os.path.join(sb.confdir, "main.cf")) as f:
        text = f.read()
    assert "smtp_sasl_security_options" not in text
    assert "smtp_sasl_tls_security_options" not in text
    sb.start_daemon()
    marker = send(sb)
    deferred_auth(sb, NO_MECHANISM)
    for serial, wire in closed_transcripts(sb.smarthost, sb):
        assert b"AUTH" not in wire.upper(), wire
        assert b"MAIL FROM" not in wire.upper()
        assert marker.encode() not in wire
    assert sb.smarthost.auth_attempts == []
    no_secret_leaked(sb)


@pytest.mark.parametrize("options", [
    {"smtp_sasl_security_options": "noplaintext, noanonymous"},
    {},
    {"smtp_sasl_tls_security_options": "noanonymous"},
], ids=["explicit", "default", "tls-options-only"])
def test_clear_text_refuses_plaintext(auth_sandbox, options):
    """d. Level none, no TLS at all, a server offering PLAIN and LOGIN in
    clear text: with noplaintext (explicit or the default; loosening only
    the TLS options must not apply to a clear connection) no AUTH is sent
    and the password never leaves: deferred."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["PLAIN", "LOGIN"], level="none",
                      tls=False, auth_require_tls=False,
                      entries=[("{relay}", "alice:" + secret)], **options,
                      smtp_sasl_allow_unencrypted="yes")
    sb.start_daemon()
    marker = send(sb)
    deferred_auth(sb, NO_MECHANISM)
    for serial, wire in closed_transcripts(sb.smarthost, sb):
        assert b"AUTH" not in wire.upper(), wire
        assert not leaks(wire, secret), wire
        assert marker.encode() not in wire
    no_secret_leaked(sb)


def test_clear_text_plaintext_when_allowed(auth_sandbox):
    """d. The admin allows plaintext over clear text (security options =
    noanonymous): AUTH PLAIN in clear works - the option is honoured."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["PLAIN"], level="none",
                      tls=False, auth_require_tls=False,
                      entries=[("{relay}", "alice:" + secret)],
                      smtp_sasl_security_options="noanonymous",
                      smtp_sasl_allow_unencrypted="yes")
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.tls is None
    assert m.auth == {"user": "alice", "mechanism": "PLAIN"}, m.auth
    wire = closed_transcripts(sb.smarthost, sb)[0][1]
    assert auth_commands(wire) == ["PLAIN"], wire
    assert leaks(wire, secret), "the password was not in the transcript?"
    no_secret_leaked(sb)


def test_cram_md5_in_clear_text(auth_sandbox):
    """d. CRAM-MD5 is not plaintext: once smtp_sasl_allow_unencrypted
    lets a login go over a clear connection at all, the default security
    options allow it, and the password itself never crosses the wire."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["PLAIN", "CRAM-MD5"],
                      level="none", tls=False, auth_require_tls=False,
                      entries=[("{relay}", "alice:" + secret)],
                      smtp_sasl_allow_unencrypted="yes")
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.auth == {"user": "alice", "mechanism": "CRAM-MD5"}, m.auth
    wire = closed_transcripts(sb.smarthost, sb)[0][1]
    assert auth_commands(wire) == ["CRAM-MD5"]
    assert not leaks(wire, secret), wire
    no_secret_leaked(sb)


# ---- e. no credentials, AUTH not enabled -------------------------------

def test_no_entry_sends_without_auth(auth_sandbox):
    """e. The table has no entry for this relay: the mail goes without
    AUTH (as with Postfix)."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["CRAM-MD5"],
                      entries=[("[other.example]:587", "alice:" + secret)])
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.auth is None
    for serial, wire in closed_transcripts(sb.smarthost, sb):
        assert b"AUTH" not in wire.upper(), wire
    no_secret_leaked(sb)


def test_no_entry_server_requires_auth(auth_sandbox):
    """e. No entry, and the server wants AUTH (530 to MAIL FROM): no AUTH
    is sent, and the log shows the server's 530."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["CRAM-MD5"], auth_required=True,
                      entries=[("[other.example]:587", "alice:" + secret)])
    sb.start_daemon()
    send(sb)
    rx = status_re(RCPT, "(?:deferred|bounced)")
    line = sb.wait_log(rx)[0]
    assert relay_of(sb.smarthost.port) in line, line
    assert "530 5.7.0 Authentication required" in line, line
    assert sb.smarthost.messages == []
    for serial, wire in closed_transcripts(sb.smarthost, sb):
        assert b"AUTH" not in wire.upper(), wire
    no_secret_leaked(sb)


def test_auth_not_enabled(auth_sandbox):
    """e. smtp_sasl_auth_enable = no (the default) with a matching entry:
    no AUTH."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["CRAM-MD5"],
                      entries=[("{relay}", "alice:" + secret)],
                      smtp_sasl_auth_enable="no")
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.auth is None
    for serial, wire in closed_transcripts(sb.smarthost, sb):
        assert b"AUTH" not in wire.upper(), wire


# ---- f. the password table ----------------------------------------------

SENDERS = ("alice@example.com", "carol@example.org", "dave@example.net")


@pytest.mark.parametrize("dependent,expected", [
    ("yes", ["alice", "org", "default"]),
    ("no", ["default", "default", "default"]),
], ids=["sender-dependent", "not-sender-dependent"])
def test_sender_dependent(auth_sandbox, dependent, expected):
    """f. smtp_sender_dependent_authentication = yes: the sender's own
    entry, then its @domain, then the relay's; = no: the relay's for all.
    Each message authenticates as its own user."""
    pws = {"alice": new_secret(), "org": new_secret(),
           "default": new_secret()}
    sb = auth_sandbox(pws, ["CRAM-MD5"], entries=[
        ("alice@example.com", "alice:" + pws["alice"]),
        ("@example.org", "org:" + pws["org"]),
        ("{relay}", "default:" + pws["default"])],
        smtp_sender_dependent_authentication=dependent)
    sb.start_daemon()
    markers = [send(sb, sender, "rcpt%d@example.com" % i)
               for i, sender in enumerate(SENDERS)]
    for i, (sender, marker) in enumerate(zip(SENDERS, markers)):
        m = delivered(sb, marker, "rcpt%d@example.com" % i)
        assert m.mail_from == sender
        assert m.auth == {"user": expected[i], "mechanism": "CRAM-MD5"}, \
            (sender, m.auth)
    no_secret_leaked(sb)


@pytest.mark.parametrize("entries,user", [
    ([("localhost", "hostuser:{pw}")], "hostuser"),
    ([("localhost", "hostuser:other"), ("{relay}", "relayuser:{pw}")],
     "relayuser"),
    ([("{relay}", "user:pa:s:s{pw}")], "user"),
], ids=["bare-host", "relay-before-host", "colons-in-password"])
def test_lookup_keys(auth_sandbox, entries, user):
    """f. The bare host name works when the relay as written has no entry;
    the relay as written wins over the bare host; a password may hold
    colons (only the first one separates the user)."""
    secret = new_secret()
    entries = [(k, v.replace("{pw}", secret)) for k, v in entries]
    password = dict(entries).get("{relay}", entries[0][1]).split(":", 1)[1]
    sb = auth_sandbox({user: password}, ["CRAM-MD5"], entries=entries)
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.auth == {"user": user, "mechanism": "CRAM-MD5"}, m.auth
    no_secret_leaked(sb, password)


@pytest.mark.parametrize("kind", ["inline", "static"])
def test_map_types(auth_sandbox, kind):
    """f. inline:{ {[localhost]:PORT = user:pass} } and static:user:pass
    tables work like texthash."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["CRAM-MD5"], map_kind=kind,
                      entries=[("{relay}", "alice:" + secret)])
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.auth == {"user": "alice", "mechanism": "CRAM-MD5"}, m.auth
    no_secret_leaked(sb)


# ---- g. SCRAM against Dovecot (a real, independent server) --------------

def dovecot_sandbox(sandbox_factory, tls_certs, dv, user, password,
                    implicit=False, **main_cf):
    """A sandbox whose relayhost is the Dovecot's port (or its implicit
    TLS port), with the credentials in a texthash table."""
    sb = sandbox_factory(smarthost=dv.relay)
    port = dv.tls_port if implicit else dv.port
    sb.relay = "[localhost]:%d" % port
    sb.relay_port = port
    params = {"relayhost": sb.relay, "smtp_tls_CAfile": tls_certs.ca,
              "smtp_tls_security_level": "verify",
              "smtp_sasl_auth_enable": "yes"}
    if implicit:
        params["smtp_tls_wrappermode"] = "yes"
    params["smtp_sasl_password_maps"] = password_map(
        sb, [("{relay}", "%s:%s" % (user, password))])
    sb.secrets = {password} | set(dv.users.values())
    params.update(main_cf)
    sb.write_config(**params)
    return sb


@pytest.mark.parametrize("mech,filter_,implicit", [
    ("SCRAM-SHA-256", None, False),
    ("SCRAM-SHA-1", "scram-sha-1", False),
    ("SCRAM-SHA-256", None, True),
], ids=["scram-sha-256", "scram-sha-1", "scram-sha-256-wrappermode"])
def test_dovecot_scram(sandbox_factory, tls_certs, dovecot, mech, filter_,
                       implicit):
    """g. Dovecot offers PLAIN LOGIN SCRAM-SHA-1 SCRAM-SHA-256: postern
    logs in with SCRAM-SHA-256 (the strongest; SCRAM-SHA-1 when the filter
    says so) over verified TLS, and the mail goes through Dovecot to its
    relay. Dovecot's own log says who logged in, with what."""
    extra = {"smtp_sasl_mechanism_filter": filter_} if filter_ else {}
    sb = dovecot_sandbox(sandbox_factory, tls_certs, dovecot, "alice",
                         dovecot.users["alice"], implicit, **extra)
    sb.start_daemon()
    m = delivered(sb, send(sb), port=sb.relay_port, relay=dovecot.relay)
    assert dovecot.auth_of(m) == {"user": "alice", "method": mech}, (
        dovecot.logins(), dovecot.log_text()[-3000:])
    logins = dovecot.logins()
    assert [(l["user"], l["method"], l["tls"]) for l in logins] == \
        [("alice", mech, True)], logins
    assert dovecot.failures() == [], dovecot.failures()
    no_secret_leaked(sb)


def test_dovecot_scram_wrong_password(sandbox_factory, tls_certs,
                                      dovecot):
    """g. A wrong password: Dovecot's 535 in the log, deferred, nothing
    relayed."""
    sb = dovecot_sandbox(sandbox_factory, tls_certs, dovecot, "alice",
                         new_secret())
    sb.start_daemon()
    send(sb)
    deferred_auth(sb, DOVECOT_535, port=sb.relay_port)
    assert dovecot.relay.messages == []
    fails = dovecot.failures()
    assert any(f["user"] == "alice" and f["mechanism"] == "SCRAM-SHA-256"
               and "mismatch" in f["why"].lower() for f in fails), (
        fails, dovecot.log_text()[-3000:])
    assert dovecot.logins() == []
    no_secret_leaked(sb)


def test_dovecot_scram_stored_keys(sandbox_factory, tls_certs,
                                   dovecot_factory):
    """g. Dovecot storing only the SCRAM-SHA-256 verifier (doveadm pw -s
    SCRAM-SHA-256, never the password): the client's proof must match
    keys derived by another implementation."""
    password = new_secret()
    dv = dovecot_factory(users={"carol": password}, scheme="SCRAM-SHA-256")
    sb = dovecot_sandbox(sandbox_factory, tls_certs, dv, "carol", password)
    sb.start_daemon()
    m = delivered(sb, send(sb), port=sb.relay_port, relay=dv.relay)
    assert dv.auth_of(m) == {"user": "carol", "method": "SCRAM-SHA-256"}
    no_secret_leaked(sb)


# ---- g. SCRAM-*-PLUS: Cyrus SASL behind the test smarthost ---------------
#
# No SMTP server in Debian 12 offers SCRAM-*-PLUS (Dovecot 2.3 has no
# channel binding; Postfix and Exim do not give Cyrus SASL the binding
# data). The test smarthost hands the SCRAM exchange to Cyrus SASL's
# server, an independent implementation, together with the channel
# binding data of its own side of the TLS connection.

@pytest.mark.parametrize("version,cbtype", [
    (ssl.TLSVersion.TLSv1_3, "tls-exporter"),
    (ssl.TLSVersion.TLSv1_2, "tls-unique"),
], ids=["tls1.3", "tls1.2"])
def test_scram_plus(auth_sandbox, version, cbtype):
    """g. Everything offered: SCRAM-SHA-256-PLUS is taken, with the
    channel binding of the TLS version (checked by Cyrus against the
    server's own view of the connection)."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret},
                      ["PLAIN", "LOGIN", "CRAM-MD5"] + SCRAM_ALL,
                      maximum_version=version,
                      entries=[("{relay}", "alice:" + secret)],
                      smtp_sasl_tls_security_options="noanonymous")
    sb.start_daemon()
    m = delivered(sb, send(sb))
    want = "TLSv1.3" if version == ssl.TLSVersion.TLSv1_3 else "TLSv1.2"
    assert m.tls["version"] == want, m.tls
    assert m.auth == {"user": "alice", "mechanism": "SCRAM-SHA-256-PLUS"}, \
        (m.auth, sb.smarthost.auth_log)
    log = sb.smarthost.auth_log
    assert [(a["gs2_flag"], a["channel_binding"]) for a in log] == \
        [("p", cbtype)], log
    no_secret_leaked(sb)


def test_scram_sha1_plus(auth_sandbox):
    """g. smtp_sasl_mechanism_filter = scram-sha-1-plus: SCRAM-SHA-1-PLUS."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, SCRAM_ALL,
                      entries=[("{relay}", "alice:" + secret)],
                      smtp_sasl_mechanism_filter="scram-sha-1-plus")
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.auth == {"user": "alice", "mechanism": "SCRAM-SHA-1-PLUS"}, \
        sb.smarthost.auth_log


def test_scram_plus_wrong_password(auth_sandbox):
    """g. -PLUS with a wrong password: 535, deferred."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, SCRAM_ALL,
                      entries=[("{relay}", "alice:" + new_secret())])
    sb.start_daemon()
    send(sb)
    deferred_auth(sb, SMARTHOST_535)
    log = sb.smarthost.auth_log
    assert log and all(a["mechanism"] == "SCRAM-SHA-256-PLUS"
                       and not a["ok"] for a in log), log
    no_secret_leaked(sb)


def test_scram_plus_stripped(auth_sandbox):
    """g. A server that supports channel binding but does not list the
    -PLUS mechanisms (as if a man in the middle had removed them):
    postern logs in with SCRAM-SHA-256 and gs2 flag "n". libgsasl 2.2
    cannot send RFC 5802's "y" (it fails plain SCRAM when a binding is
    set), so SCRAM itself does not detect such a downgrade; what protects
    it is TLS: at level verify the EHLO reply arrives over the verified
    connection, where nobody can edit it. This test pins the behaviour so
    a libgsasl that gains "y" shows up here."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["SCRAM-SHA-256", "SCRAM-SHA-1"],
                      scram_channel_binding=True,
                      entries=[("{relay}", "alice:" + secret)])
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.tls is not None
    assert m.auth == {"user": "alice", "mechanism": "SCRAM-SHA-256"}
    log = sb.smarthost.auth_log
    assert [a["gs2_flag"] for a in log] == ["n"], log
    no_secret_leaked(sb)


def test_scram_without_plus_over_tls(auth_sandbox):
    """g. A server without channel binding offering SCRAM-SHA-256 only:
    postern uses it over TLS (flag "n": see test_scram_plus_stripped)."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["SCRAM-SHA-256"],
                      entries=[("{relay}", "alice:" + secret)])
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.auth == {"user": "alice", "mechanism": "SCRAM-SHA-256"}
    assert [a["gs2_flag"] for a in sb.smarthost.auth_log] == ["n"], \
        sb.smarthost.auth_log


def test_scram_plus_needs_tls(auth_sandbox):
    """g. No TLS (level none), the server offers -PLUS and plain SCRAM in
    clear text: -PLUS is impossible without a TLS channel, SCRAM-SHA-256
    is used (flag "n"), and the password never crosses the wire."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, SCRAM_ALL, level="none",
                      tls=False, auth_require_tls=False,
                      entries=[("{relay}", "alice:" + secret)],
                      smtp_sasl_allow_unencrypted="yes")
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.tls is None
    assert m.auth == {"user": "alice", "mechanism": "SCRAM-SHA-256"}, \
        sb.smarthost.auth_log
    assert [a["gs2_flag"] for a in sb.smarthost.auth_log] == ["n"]
    wire = closed_transcripts(sb.smarthost, sb)[0][1]
    assert not leaks(wire, secret)
    no_secret_leaked(sb)


# ---- secrets on disk, exec: tables, postern check ------------------------

def test_world_readable_password_table_is_refused(auth_sandbox):
    """posternd will not start with a password table others can read,
    and says which chmod fixes it; postern check says the same."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["PLAIN"],
                      entries=[("{relay}", "alice:" + secret)],
                      smtp_sasl_tls_security_options="noanonymous")
    path = os.path.join(sb.confdir, "sasl_passwd")
    os.chmod(path, 0o644)
    p = sb.start_daemon(wait_ready=False)
    assert p.wait(30) == EX_CONFIG
    sb.daemon = None
    text = sb.log_text()
    assert "%s is readable by every user (mode 0644)" % path in text, text
    assert "chmod o-rwx %s" % path in text
    cp = sb.postern(["check"])
    assert cp.returncode == EX_CONFIG
    assert "chmod o-rwx" in cp.stdout.decode()
    os.chmod(path, 0o640)
    sb.start_daemon()
    delivered(sb, send(sb))
    no_secret_leaked(sb)


def token_helper(sb, tokens):
    """An exec: program that prints "alice:TOKEN", TOKEN taken in turn
    from tokens (the last one repeats), and logs each call."""
    calls = os.path.join(sb.confdir, "calls")
    state = os.path.join(sb.confdir, "n")
    lines = ["#!/bin/sh", 'echo "$1" >> %s' % calls,
             "n=$(cat %s 2>/dev/null || echo 0)" % state,
             "echo $((n + 1)) > %s" % state, 'case "$n" in']
    for i, tok in enumerate(tokens[:-1]):
        lines.append('%d) echo "alice:%s" ;;' % (i, tok))
    lines.append('*) echo "alice:%s" ;;' % tokens[-1])
    lines.append("esac")
    path = os.path.join(sb.confdir, "get-token")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o700)
    return path, calls


def test_exec_table_token_helper(auth_sandbox):
    """exec: runs the helper with the relay as its argument; its token
    logs in with XOAUTH2; the answer is cached; after the relay refuses
    an (expired) token, the helper is asked again and the mail goes."""
    good = new_secret("token")
    expired = new_secret("token")
    sb = auth_sandbox({"alice": good}, ["XOAUTH2", "PLAIN"],
                      smtp_sasl_mechanism_filter="xoauth2",
                      smtp_sasl_tls_security_options="noanonymous",
                      smtp_sasl_password_cache_time="1h")
    sb.secrets.update({good, expired})
    helper, calls = token_helper(sb, [expired, good])
    sb.write_config(smtp_sasl_password_maps="exec:" + helper)
    sb.start_daemon()
    send(sb)
    deferred_auth(sb, SMARTHOST_535)
    with open(calls) as f:
        assert f.read().split() == [sb.relay.lower()]
    # The refused token was forgotten: the next attempt asks again.
    assert sb.postern(["flush"]).returncode == 0
    m = delivered(sb, send(sb, rcpt="second@example.com"),
                  rcpt="second@example.com")
    assert m.auth == {"user": "alice", "mechanism": "XOAUTH2"}
    # A third message uses the cached good token: no new call.
    delivered(sb, send(sb, rcpt="third@example.com"),
              rcpt="third@example.com")
    with open(calls) as f:
        assert len(f.read().split()) == 2
    no_secret_leaked(sb)


def test_exec_table_failure_defers(auth_sandbox):
    """A helper that fails: the mail waits, the log says why, no AUTH."""
    sb = auth_sandbox({"alice": "x"}, ["PLAIN"],
                      smtp_sasl_tls_security_options="noanonymous")
    path = os.path.join(sb.confdir, "broken")
    with open(path, "w") as f:
        f.write("#!/bin/sh\necho 'refresh token revoked' >&2\nexit 2\n")
    os.chmod(path, 0o700)
    sb.write_config(smtp_sasl_password_maps="exec:" + path)
    sb.start_daemon()
    send(sb)
    line = sb.wait_log(status_re(RCPT, "deferred"))[0]
    assert "exited with status 2: refresh token revoked" in line, line
    assert sb.smarthost.auth_attempts == []


def test_check_shows_login(auth_sandbox):
    """postern check: mechanisms offered, the one used, the user, and
    whether the login worked (never the password)."""
    secret = new_secret()
    sb = auth_sandbox({"alice": secret}, ["PLAIN", "LOGIN", "CRAM-MD5"],
                      entries=[("{relay}", "alice:" + secret)])
    cp = sb.postern(["check"])
    out = cp.stdout.decode()
    assert cp.returncode == 0, out
    assert "AUTH:         offered PLAIN LOGIN CRAM-MD5" in out, out
    assert 'used CRAM-MD5 as user "alice": login OK' in out, out
    assert "and the login succeeded" in out
    assert secret not in out
    sb.write_config(smtp_sasl_password_maps=password_map(
        sb, [("{relay}", "alice:wrong-" + secret)]))
    cp = sb.postern(["check"])
    out = cp.stdout.decode()
    assert cp.returncode == 69, out
    assert 'used CRAM-MD5 as user "alice": login FAILED' in out, out
    assert "SASL authentication failed; server" in out
    assert "refused the login" in out
    assert secret not in out
