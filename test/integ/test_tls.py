"""TLS to the relay: STARTTLS and wrapper mode, every security level,
certificate and fingerprint checks, policy tables, session reuse, client
certificates, and the secure default.

The relay is written "[localhost]:PORT" so that there is a name to verify
(the test certificates are for localhost and 127.0.0.1; the smarthost
listens on 127.0.0.1). The test smarthost records what TLS each connection
and message had (msg.tls, smarthost.conn_tls) and every byte the SMTP layer
received (smarthost.transcripts): a refused server must not have seen a
MAIL FROM, an AUTH or one byte of the message.

What these tests expect posternd to log (Postfix's wording where Postfix
has one):
  "<Trust> TLS connection established to localhost[127.0.0.1]:PORT:
   <version> with cipher <name> (<secret bits>/<algorithm bits> bits)"
      Trust: Verified (chain and name, or a fingerprint), Trusted (chain
      only), Untrusted; version, cipher and secret bits as the server saw
      them (OpenSSL's names on both sides). Anything may follow.
  "QID: to=<...>, relay=localhost[127.0.0.1]:PORT, ..., dsn=4.7.5,
   status=deferred (...)" when a mandatory level refuses the server, the
   reason containing one of:
      "certificate verify failed: unable to get local issuer certificate"
      "certificate verify failed: certificate has expired"
      "certificate verify failed: hostname mismatch"
      "certificate verify failed: fingerprint mismatch"
      "offered no STARTTLS"
  "Cleartext SMTP connection to localhost[127.0.0.1]:PORT" on one line
   with "offered no STARTTLS" when level may goes on without TLS.
"""

import os
import re
import shutil
import ssl
import subprocess
import time
import uuid

import pytest

from conftest import removed_re, status_re
from tlscerts import server_context

RCPT = "bob@example.com"
SECRET_WORDS = (b"MAIL FROM", b"RCPT", b"DATA", b"AUTH")

VERIFY_FAILED = "certificate verify failed"
REASONS = {
    "unknown_ca": (VERIFY_FAILED, "local issuer"),
    "expired": (VERIFY_FAILED + ": certificate has expired",),
    "wrong_name": (VERIFY_FAILED + ": hostname mismatch",),
    "fingerprint": (VERIFY_FAILED + ": fingerprint mismatch",),
    "no_starttls": ("offered no STARTTLS",),
}


# ---- fixtures and helpers -------------------------------------------

@pytest.fixture
def tls_sandbox(sandbox_factory, tls_certs):
    """make(cert="good", level="verify", *, tls=True, implicit_tls=False,
    advertise_starttls=True, client_ca=False, maximum_version=None,
    **main_cf) -> a Sandbox whose smarthost serves tls_certs.<cert>
    (STARTTLS, or implicit TLS; no TLS at all when tls is False), with
    relayhost = [localhost]:PORT (also in sb.relay), smtp_tls_CAfile = the
    test CA, smtp_tls_security_level = level (None: left out of main.cf,
    postern's default applies) and main_cf on top. client_ca: the server
    asks for a client certificate from the test CA."""
    def make(cert="good", level="verify", *, tls=True, implicit_tls=False,
             advertise_starttls=True, client_ca=False, maximum_version=None,
             **main_cf):
        ctx = None
        if tls:
            leaf = getattr(tls_certs, cert)
            ctx = server_context(leaf.cert, leaf.key,
                                 client_ca=tls_certs.ca if client_ca else None,
                                 maximum_version=maximum_version)
        sb = sandbox_factory(tls_context=ctx, implicit_tls=implicit_tls,
                             advertise_starttls=advertise_starttls)
        sb.relay = "[localhost]:%d" % sb.smarthost.port
        params = {"relayhost": sb.relay, "smtp_tls_CAfile": tls_certs.ca}
        if level is not None:
            params["smtp_tls_security_level"] = level
        params.update(main_cf)
        p = sb.write_config(**params)
        if level is None:
            # write_config() always has the sandbox's "none": drop it.
            del p["smtp_tls_security_level"]
            sb.write_main_cf("".join("%s = %s\n" % kv for kv in p.items()))
        return sb
    return make


def relay_of(sb):
    return "relay=localhost[127.0.0.1]:%d," % sb.smarthost.port


def send(sb, rcpt=RCPT):
    """Queue a message whose header and body carry a unique marker."""
    marker = "tls-secret-%s" % uuid.uuid4().hex
    sb.send_ok(["-i", "-f", "alice", rcpt],
               ("Subject: %s\n\nthe body: %s\n" % (marker, marker)).encode())
    return marker


def wait_status(sb, status, rcpt=RCPT):
    """(qid, line) of posternd's first status=<status> line for rcpt.
    The line names the relay reached as relay=localhost[127.0.0.1]:PORT,
    also when TLS refused it (Postfix does the same)."""
    line = sb.wait_log(status_re(rcpt, status))[0]
    qid = re.search(status_re(rcpt, status), line).group(1)
    assert relay_of(sb) in line, line
    return qid, line


def delivered(sb, marker, rcpt=RCPT):
    """Wait until the message with marker was sent and removed; the
    smarthost's Message."""
    qid, line = wait_status(sb, "sent", rcpt)
    sb.wait_log(removed_re(qid))
    msgs = [m for m in sb.smarthost.delivered_to(rcpt)
            if marker.encode() in m.data]
    assert len(msgs) == 1, sb.smarthost.messages
    return msgs[0]


def deferred(sb, reason, rcpt=RCPT):
    """Wait for the 4.7.5 deferral whose text has every string of
    REASONS[reason]; the message must be in deferred/ and not bounced."""
    qid, line = wait_status(sb, "deferred", rcpt)
    assert "dsn=4.7.5" in line, line
    for text in REASONS[reason]:
        assert text in line, "%r not in %r" % (text, line)
    sb.wait(lambda: sb.find_qid(qid) == ["deferred"],
            what="%s in deferred/" % qid)
    assert not sb.log_lines(r"status=bounced"), sb.log_text()
    return qid


def nothing_sent(sb, marker, starttls=True):
    """Stop posternd and the smarthost, then check every connection's
    transcript: no MAIL FROM, RCPT, DATA or AUTH, no byte of the message;
    with starttls, the client did get as far as STARTTLS."""
    sh = sb.smarthost
    assert sb.stop_daemon() == 0
    sh.stop()
    sb.wait(lambda: sh.connections >= 1
            and len(sh.transcripts) == sh.connections,
            what="every connection's transcript")
    assert sh.messages == [] and sh.attempts == [], sh.attempts
    for serial, wire in sh.transcripts:
        up = wire.upper()
        for word in SECRET_WORDS:
            assert word not in up, "%s sent on connection %d: %r" % (
                word.decode(), serial, wire)
        assert marker.encode() not in wire, (serial, wire)
    if starttls:
        assert any(re.search(rb"(?m)^STARTTLS\r$", w.upper())
                   for _, w in sh.transcripts), sh.transcripts
    return sh.transcripts


def check_over_tls(sb, m, marker, implicit=False):
    """m came over TLS, and nothing of the transaction was in clear."""
    sh = sb.smarthost
    assert m.tls is not None, "message came in clear text"
    assert m.tls["version"] in ("TLSv1.2", "TLSv1.3"), m.tls
    assert sh.conn_tls[m.conn] == m.tls
    sb.wait(lambda: sh.transcript(m.conn) is not None,
            what="connection %d to close" % m.conn)
    clear = sh.transcript(m.conn)[:m.tls["clear_bytes"]].upper()
    if implicit:
        assert clear == b"", clear
    else:
        # EHLO, STARTTLS, and nothing pipelined after STARTTLS.
        assert clear.startswith(b"EHLO "), clear
        assert clear.endswith(b"\r\nSTARTTLS\r\n"), clear
    for word in SECRET_WORDS:
        assert word not in clear, clear
    assert marker.upper().encode() not in clear


def tls_lines(sb, trust):
    """posternd's "<trust> TLS connection established" lines for the
    smarthost's port, as (version, cipher, secret bits) tuples."""
    rx = (r"\b%s TLS connection established to localhost\[127\.0\.0\.1\]:"
          r"%d: (TLSv1(?:\.[0-3])?) with cipher (\S+) \((\d+)/(\d+) bits\)"
          % (trust, sb.smarthost.port))
    return [(g[0], g[1], int(g[2])) for g in
            (re.search(rx, l).groups() for l in sb.log_lines(rx))]


def check_tls_line(sb, trust, m):
    """Exactly one TLS line, for this trust, naming what the server saw."""
    got = tls_lines(sb, trust)
    assert got == [(m.tls["version"], m.tls["cipher"], m.tls["bits"])], (
        got, m.tls, sb.log_lines("TLS connection"))
    assert len(sb.log_lines(r"TLS connection established")) == 1, \
        sb.log_lines(r"TLS connection established")


# ---- delivery over TLS ----------------------------------------------

def test_starttls_verify(tls_sandbox):
    """a. Level verify with the test CA: delivered over STARTTLS."""
    sb = tls_sandbox("good", "verify")
    sb.start_daemon()
    marker = send(sb)
    m = delivered(sb, marker)
    check_over_tls(sb, m, marker)
    check_tls_line(sb, "Verified", m)
    assert m.tls["session_reused"] is False
    assert m.tls["peer_cert"] is None


def test_wrappermode_verify(tls_sandbox):
    """b. smtp_tls_wrappermode = yes: TLS from the first byte."""
    sb = tls_sandbox("good", "verify", implicit_tls=True,
                     smtp_tls_wrappermode="yes")
    sb.start_daemon()
    marker = send(sb)
    m = delivered(sb, marker)
    check_over_tls(sb, m, marker, implicit=True)
    check_tls_line(sb, "Verified", m)
    assert b"STARTTLS" not in sb.smarthost.transcript(m.conn).upper()


@pytest.mark.parametrize("level,cert,trust", [
    ("may", "unknown_ca", "Untrusted"),
    ("encrypt", "unknown_ca", "Untrusted"),
    ("encrypt", "good", "Trusted"),
], ids=["may-unknown-ca", "encrypt-unknown-ca", "encrypt-good"])
def test_unverified_levels_deliver(tls_sandbox, level, cert, trust):
    """f, g. Levels may and encrypt encrypt without requiring a verified
    certificate: delivered over TLS, and the log says how far it was
    trusted."""
    sb = tls_sandbox(cert, level)
    sb.start_daemon()
    marker = send(sb)
    m = delivered(sb, marker)
    check_over_tls(sb, m, marker)
    check_tls_line(sb, trust, m)


def test_may_without_starttls_goes_clear(tls_sandbox):
    """e. Level may, and the server (or a man in the middle) does not
    offer STARTTLS: delivered in clear text, and the log says so."""
    sb = tls_sandbox("good", "may", advertise_starttls=False)
    sb.start_daemon()
    marker = send(sb)
    m = delivered(sb, marker)
    assert m.tls is None, m.tls
    assert sb.smarthost.conn_tls[m.conn] is None
    head = "Cleartext SMTP connection to localhost[127.0.0.1]:%d" % \
        sb.smarthost.port
    lines = [l for l in sb.log_lines(re.escape(head))
             if "offered no STARTTLS" in l]
    assert lines, sb.log_text()
    assert not sb.log_lines(r"TLS connection established")


# ---- mandatory TLS refuses ------------------------------------------

@pytest.mark.parametrize("cert,implicit", [
    ("unknown_ca", False),
    ("expired", False),
    ("wrong_name", False),
    ("unknown_ca", True),
], ids=["unknown-ca", "expired", "wrong-name", "wrappermode-unknown-ca"])
def test_verify_refuses_certificate(tls_sandbox, cert, implicit):
    """c. Level verify and a certificate that does not verify: deferred
    with 4.7.5 and the reason, kept in deferred/, nothing sent."""
    extra = {"smtp_tls_wrappermode": "yes"} if implicit else {}
    sb = tls_sandbox(cert, "verify", implicit_tls=implicit, **extra)
    sb.start_daemon()
    marker = send(sb)
    deferred(sb, cert)
    assert not tls_lines(sb, "Verified"), sb.log_text()
    nothing_sent(sb, marker, starttls=not implicit)


@pytest.mark.parametrize("level", ["encrypt", "verify"])
@pytest.mark.parametrize("server", ["stripped", "no-tls"])
def test_mandatory_without_starttls(tls_sandbox, level, server):
    """d. Mandatory TLS and no STARTTLS in the EHLO reply (a man in the
    middle stripped it, or the server has no TLS at all): deferred, and
    nothing but EHLO (and QUIT) was sent."""
    sb = tls_sandbox("good", level, tls=(server == "stripped"),
                     advertise_starttls=False)
    sb.start_daemon()
    marker = send(sb)
    deferred(sb, "no_starttls")
    transcripts = nothing_sent(sb, marker, starttls=False)
    assert any(b"EHLO" in w.upper() for _, w in transcripts), transcripts
    assert all(v is None for v in sb.smarthost.conn_tls.values()), \
        sb.smarthost.conn_tls


# ---- fingerprints ---------------------------------------------------

@pytest.mark.parametrize("pin,digest,ok", [
    ("sha256", None, True),
    ("sha256_pubkey", None, True),
    ("sha1", "sha1", True),
    ("list", None, True),
    ("wrong", None, False),
], ids=["cert-sha256", "pubkey-sha256", "cert-sha1", "list", "wrong"])
def test_fingerprint(tls_sandbox, tls_certs, pin, digest, ok):
    """h. Level fingerprint: the server's certificate is from a CA nobody
    trusts, only the pin can make it acceptable."""
    fp, good = tls_certs.unknown_ca.fp, tls_certs.good.fp
    if pin == "list":
        # Two wrong pins, then the right one; commas and spaces.
        match = "%s, %s %s" % (good["sha256"], good["sha256_pubkey"],
                               fp["sha256"])
    elif pin == "wrong":
        # The pin of another certificate (the server's was replaced).
        match = good["sha256"]
    else:
        match = fp[pin]
    extra = {"smtp_tls_fingerprint_cert_match": match}
    if digest:
        extra["smtp_tls_fingerprint_digest"] = digest
    sb = tls_sandbox("unknown_ca", "fingerprint", **extra)
    sb.start_daemon()
    marker = send(sb)
    if ok:
        m = delivered(sb, marker)
        check_over_tls(sb, m, marker)
        check_tls_line(sb, "Verified", m)
    else:
        deferred(sb, "fingerprint")
        assert not tls_lines(sb, "Verified"), sb.log_text()
        nothing_sent(sb, marker)


# ---- smtp_tls_policy_maps -------------------------------------------

def policy_map(sb, kind, value):
    """A policy table with one entry, sb.relay -> value."""
    if kind == "inline":
        return "inline:{ {%s = %s} }" % (sb.relay, value)
    path = os.path.join(sb.confdir, "tls_policy")
    with open(path, "w") as f:
        f.write("# TLS policy\n%s  %s\n" % (sb.relay, value))
    return "texthash:" + path


@pytest.mark.parametrize("kind", ["inline", "texthash"])
def test_policy_map_raises_level(tls_sandbox, kind):
    """i. Global level none, but the table says verify for this relay:
    the unknown CA is refused."""
    sb = tls_sandbox("unknown_ca", "none")
    sb.write_config(smtp_tls_policy_maps=policy_map(sb, kind, "verify"))
    sb.start_daemon()
    marker = send(sb)
    deferred(sb, "unknown_ca")
    nothing_sent(sb, marker)


@pytest.mark.parametrize("kind", ["inline", "texthash"])
def test_policy_map_match(tls_sandbox, kind):
    """i. Global level verify and a certificate for other.example only:
    the table's "verify match=other.example" accepts it."""
    sb = tls_sandbox("wrong_name", "verify")
    sb.write_config(smtp_tls_policy_maps=policy_map(
        sb, kind, "verify match=other.example"))
    sb.start_daemon()
    marker = send(sb)
    m = delivered(sb, marker)
    check_over_tls(sb, m, marker)
    check_tls_line(sb, "Verified", m)


# ---- session reuse, client certificates ------------------------------

@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
def test_session_reuse(tls_sandbox, version):
    """j. A second delivery (another worker, another connection) resumes
    the first one's TLS session."""
    top = {"TLSv1.3": ssl.TLSVersion.TLSv1_3,
           "TLSv1.2": ssl.TLSVersion.TLSv1_2}[version]
    sb = tls_sandbox("good", "verify", maximum_version=top)
    sb.start_daemon()
    m1 = delivered(sb, send(sb, "first@example.com"), "first@example.com")
    m2 = delivered(sb, send(sb, "second@example.com"), "second@example.com")
    assert sb.smarthost.connections == 2, sb.smarthost.conn_tls
    assert m1.conn != m2.conn
    assert m1.tls["version"] == m2.tls["version"] == version, (m1.tls,
                                                               m2.tls)
    assert m1.tls["session_reused"] is False, m1.tls
    assert m2.tls["session_reused"] is True, m2.tls
    assert len(tls_lines(sb, "Verified")) == 2, sb.log_text()


@pytest.mark.parametrize("with_cert", [True, False],
                         ids=["client-cert", "no-client-cert"])
def test_client_certificate(tls_sandbox, tls_certs, with_cert):
    """k. smtp_tls_cert_file/key_file: the server that asks for a client
    certificate gets it (and none when none is configured)."""
    extra = {}
    if with_cert:
        extra = {"smtp_tls_cert_file": tls_certs.client.cert,
                 "smtp_tls_key_file": tls_certs.client.key}
    sb = tls_sandbox("good", "verify", client_ca=True, **extra)
    sb.start_daemon()
    marker = send(sb)
    m = delivered(sb, marker)
    check_over_tls(sb, m, marker)
    want = "CN=postern test client" if with_cert else None
    assert m.tls["peer_cert"] == want, m.tls


# ---- the default level ----------------------------------------------

def test_default_level_refuses_clear_text(tls_sandbox):
    """l. Without smtp_tls_security_level, a server without TLS gets
    nothing: secure by default."""
    sb = tls_sandbox(level=None, tls=False)
    with open(os.path.join(sb.confdir, "main.cf")) as f:
        assert "smtp_tls_security_level" not in f.read()
    sb.start_daemon()
    marker = send(sb)
    deferred(sb, "no_starttls")
    nothing_sent(sb, marker, starttls=False)


@pytest.mark.parametrize("cert", ["good", "unknown_ca"])
def test_default_level_verifies(tls_sandbox, cert):
    """l. The default is verify, not just encrypt: the test CA's
    certificate is Verified, an unknown CA's is refused."""
    sb = tls_sandbox(cert, level=None)
    sb.start_daemon()
    marker = send(sb)
    if cert == "good":
        m = delivered(sb, marker)
        check_over_tls(sb, m, marker)
        check_tls_line(sb, "Verified", m)
    else:
        deferred(sb, "unknown_ca")
        nothing_sent(sb, marker)


@pytest.mark.parametrize("store", ["dir", "dir_other_ca", "file"])
def test_system_trust_store(tls_sandbox, tls_certs, tmp_path, store):
    """Without smtp_tls_CAfile/CApath, the system's CAs as OpenSSL names
    them: a hashed directory is used alone (read as chains need it), and
    SSL_CERT_FILE still counts. A directory without the relay's CA
    refuses it: the directory really is the trust store."""
    sb = tls_sandbox("good", "verify", smtp_tls_CAfile="")
    d = tmp_path / "certs"
    d.mkdir()
    ca = tls_certs.untrusted_ca if store == "dir_other_ca" else tls_certs.ca
    shutil.copy(ca, d / "ca.pem")
    r = subprocess.run(["openssl", "rehash", str(d)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert any(len(n) == 10 and n.endswith(".0") for n in os.listdir(d))
    var = "SSL_CERT_FILE" if store == "file" else "SSL_CERT_DIR"
    os.environ[var] = str(d / "ca.pem") if store == "file" else str(d)
    try:
        sb.start_daemon()
    finally:
        del os.environ[var]
    marker = send(sb)
    if store == "dir_other_ca":
        deferred(sb, "unknown_ca")
        nothing_sent(sb, marker)
    else:
        m = delivered(sb, marker)
        check_tls_line(sb, "Verified", m)


# ---- postern check ----------------------------------------------------

EX_UNAVAILABLE = 69
EX_CONFIG = 78


def check(sb):
    """Run `postern check`: (exit status, stdout as text). It must never
    queue or send mail, and writes nothing to stderr when it works."""
    cp = sb.postern(["check"])
    out = cp.stdout.decode()
    assert sb.smarthost.messages == []
    return cp.returncode, out


def field(out, label):
    """The text after "label:" in check's report (first line only)."""
    m = re.search(r"(?m)^  %s:\s+(.*)$" % re.escape(label), out)
    assert m, "no %r line in:\n%s" % (label, out)
    return m.group(1)


def test_check_good_relay(tls_sandbox, tls_certs):
    """A relay that meets level verify: everything a person wants to see,
    and exit 0. Nothing after EHLO but STARTTLS, EHLO and QUIT."""
    sb = tls_sandbox("good", "verify")
    rc, out = check(sb)
    assert rc == 0, out
    assert out.startswith("configuration %s/main.cf\n" % sb.confdir), out
    assert "relay %s (relayhost)" % sb.relay in out
    assert field(out, "TLS level") == "verify (STARTTLS required)"
    assert field(out, "connected") == "127.0.0.1 port %d" % \
        sb.smarthost.port
    assert field(out, "greeting").startswith("220 smarthost.test.example")
    assert field(out, "STARTTLS") == "offered"
    assert re.match(r"TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)$",
                    field(out, "TLS")), out
    assert field(out, "certificate") == "subject CN=localhost"
    assert "issuer  CN=postern test CA" in out
    assert re.search(r"expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC "
                     r"\(in 36[45] days\)", out), out
    # The fingerprints to pin, exactly as openssl computes them.
    assert "certificate sha256 %s" % tls_certs.good.fp["sha256"] in out
    assert "public key  sha256 %s" % tls_certs.good.fp["sha256_pubkey"] \
        in out
    assert field(out, "verification") == "chain OK (signed by a trusted CA)"
    assert "host name OK, matches localhost" in out
    assert "PIPELINING" in field(out, "extensions")
    assert field(out, "result") == \
        "OK: level verify accepts this relay (Verified TLS)"
    sb.smarthost.stop()
    for _, wire in sb.smarthost.transcripts:
        for word in SECRET_WORDS:
            assert word not in wire.upper(), wire
        assert wire.upper().endswith(b"QUIT\r\n"), wire


@pytest.mark.parametrize("cert,verification,hint", [
    ("unknown_ca", "chain FAILED: unable to get local issuer certificate",
     "smtp_tls_CAfile"),
    ("expired", "chain FAILED: certificate has expired", "renew"),
    ("wrong_name", "chain OK (signed by a trusted CA)", "match="),
], ids=["unknown-ca", "expired", "wrong-name"])
def test_check_refused_certificate(tls_sandbox, cert, verification, hint):
    """Each refusal: the certificate is shown, the failed check named, the
    verdict REFUSED with the reason the log would give, advice, exit 69."""
    sb = tls_sandbox(cert, "verify")
    rc, out = check(sb)
    assert rc == EX_UNAVAILABLE, out
    assert field(out, "STARTTLS") == "offered"
    assert field(out, "verification") == verification
    result = field(out, "result")
    assert result.startswith("REFUSED: TLS is required by "
                             "smtp_tls_security_level = verify"), result
    assert REASONS[cert][-1] in result, result
    assert "no mail was sent" in result
    assert hint in field(out, "what to do"), out
    if cert == "expired":
        assert re.search(r"expires 2021-01-01 00:00:00 UTC \(EXPIRED \d+ "
                         r"days ago\)", out), out
    if cert == "wrong_name":
        assert "host name MISMATCH, expected localhost" in out
        assert "subject CN=other.example" in out
        assert "the certificate is for other.example" in result


def test_check_no_starttls(tls_sandbox):
    """A relay without STARTTLS: said plainly, with where TLS usually is."""
    sb = tls_sandbox("good", "verify", tls=False)
    rc, out = check(sb)
    assert rc == EX_UNAVAILABLE, out
    assert field(out, "STARTTLS") == "NOT offered"
    assert "offered no STARTTLS" in field(out, "result")
    assert "465" in field(out, "what to do")
    assert "certificate:" not in out


def test_check_may_in_clear(tls_sandbox):
    """Level may and no STARTTLS: acceptable, and the report says clear."""
    sb = tls_sandbox("good", "may", tls=False)
    rc, out = check(sb)
    assert rc == 0, out
    assert field(out, "TLS level") == "may (STARTTLS when offered)"
    assert field(out, "TLS") == "none: the connection is in clear text"
    assert field(out, "result") == "OK: level may accepts this relay"


def test_check_fingerprint(tls_sandbox, tls_certs):
    """Level fingerprint: a wrong pin is refused with the pins to use."""
    sb = tls_sandbox("unknown_ca", "fingerprint",
                     smtp_tls_fingerprint_cert_match=tls_certs.good.fp[
                         "sha256"])
    rc, out = check(sb)
    assert rc == EX_UNAVAILABLE, out
    assert "fingerprint MISMATCH" in out
    assert "fingerprint mismatch" in field(out, "result")
    assert "smtp_tls_fingerprint_cert_match" in field(out, "what to do")
    assert tls_certs.unknown_ca.fp["sha256"] in out
    sb.write_config(smtp_tls_fingerprint_cert_match=tls_certs.unknown_ca.fp[
        "sha256_pubkey"])
    rc, out = check(sb)
    assert rc == 0, out
    assert "fingerprint OK (pinned)" in out
    assert field(out, "result") == \
        "OK: level fingerprint accepts this relay (Verified TLS)"


def test_check_wrappermode(tls_sandbox):
    """Port-465 style: no STARTTLS line, TLS from the start."""
    sb = tls_sandbox("good", "verify", implicit_tls=True,
                     smtp_tls_wrappermode="yes")
    rc, out = check(sb)
    assert rc == 0, out
    assert field(out, "TLS level") == \
        "verify (implicit TLS, smtp_tls_wrappermode = yes)"
    assert "STARTTLS:" not in out
    assert field(out, "result").startswith("OK")


def test_check_relay_down(tls_sandbox):
    """Nothing listens: the connect error and what to look at."""
    sb = tls_sandbox("good", "verify")
    sb.smarthost.stop()
    rc, out = check(sb)
    assert rc == EX_UNAVAILABLE, out
    assert "connected:" not in out
    result = field(out, "result")
    assert "connect to localhost[" in result, result
    assert "Connection refused" in result, result
    assert "firewall" in field(out, "what to do")


def test_check_configuration_errors(tls_sandbox):
    """Settings that cannot work: exit 78, the parameter named; no
    relayhost: exit 78 with the line to add."""
    sb = tls_sandbox("good", "verify", smtp_tls_CAfile="/nonexistent/ca.pem")
    rc, out = check(sb)
    assert rc == EX_CONFIG, out
    assert "smtp_tls_CAfile /nonexistent/ca.pem" in out, out
    sb.write_config(smtp_tls_CAfile="", relayhost="")
    rc, out = check(sb)
    assert rc == EX_CONFIG, out
    assert "relayhost = [smtp.example.com]:587" in out, out
    sb.write_config(relayhost=sb.relay,
                    smtp_tls_policy_maps="inline:{ {%s = strict} }" % sb.relay)
    rc, out = check(sb)
    assert rc == EX_CONFIG, out
    assert "unknown TLS security level \"strict\"" in field(out, "result")


def test_daemon_refuses_bad_tls_settings(tls_sandbox):
    """posternd does not start on a TLS setting that cannot work, and
    says which (EX_CONFIG), rather than deferring every message."""
    sb = tls_sandbox("good", "verify",
                     smtp_tls_mandatory_protocols=">=TLSv1.4")
    p = sb.start_daemon(wait_ready=False)
    assert p.wait(30) == EX_CONFIG
    assert "smtp_tls_mandatory_protocols" in sb.log_text()
    sb.daemon = None


# ---- regressions found in review ---------------------------------------

def test_resumed_session_is_checked_again(tls_sandbox):
    """A session accepted under "verify match=other.example" must not
    carry a certificate for other.example past a policy that expects
    localhost: names are matched on every connection, resumed or not."""
    sb = tls_sandbox("wrong_name", "verify")
    path = os.path.join(sb.confdir, "tls_policy")
    with open(path, "w") as f:
        f.write("%s verify match=other.example\n" % sb.relay)
    sb.write_config(smtp_tls_policy_maps="texthash:" + path)
    sb.start_daemon()
    delivered(sb, send(sb, "first@example.com"), "first@example.com")
    # Tighten the policy: the table is re-read without a reload, once
    # its file is seen to change (a stat at most once a second).
    with open(path, "w") as f:
        f.write("%s verify\n" % sb.relay)
    time.sleep(1.1)
    marker = send(sb, "second@example.com")
    deferred(sb, "wrong_name", "second@example.com")
    sh = sb.smarthost
    assert len(sh.messages) == 1, sh.messages
    assert not any(marker.encode() in w for _, w in sh.transcripts)


def test_session_cache_timeout_zero_disables_reuse(tls_sandbox):
    """smtp_tls_session_cache_timeout = 0: every connection does a full
    handshake."""
    sb = tls_sandbox("good", "verify", smtp_tls_session_cache_timeout="0")
    sb.start_daemon()
    delivered(sb, send(sb, "first@example.com"), "first@example.com")
    m2 = delivered(sb, send(sb, "second@example.com"), "second@example.com")
    assert sb.smarthost.connections == 2
    assert m2.tls["session_reused"] is False, m2.tls


@pytest.mark.parametrize("entry", ["may protocols=TLSv9",
                                   "may protocols=TLSv1.2 protocols=TLSv1.3",
                                   "fingerprint"])
def test_bad_policy_entry_defers_before_connecting(tls_sandbox, entry):
    """An entry that cannot work defers the mail with the reason, and no
    connection is made: it never turns into clear text at level may."""
    sb = tls_sandbox("good", "none")
    sb.write_config(smtp_tls_policy_maps=policy_map(sb, "texthash", entry))
    sb.start_daemon()
    send(sb)
    line = sb.wait_log(status_re(RCPT, "deferred"))[0]
    assert "bad entry for %s in smtp_tls_policy_maps" % sb.relay in line
    assert sb.smarthost.connections == 0
    assert sb.smarthost.messages == []
