"""MX lookups: relayhost = domain (no brackets) means the domain's mail
exchangers, tried in order of preference; [domain] means the host itself.

Every test runs in its own network namespace (netns.py) with a test DNS
server (test/dnsserver.py) on 127.0.0.1:53 and smarthosts on real
addresses and real ports (127.0.0.2:25, 127.0.0.3:25, 127.0.0.2:587), as
on a real network. The names are under test.example (RFC 2606).

What the tests expect posternd to log:
  "QID: to=<...>, relay=mail1.test.example[127.0.0.2]:25, ... status=sent"
      the MX host actually used, not the relay's domain
  "connect to mail1.test.example[127.0.0.2]:25: Connection refused
   (trying the next mail exchanger, mail2.test.example)"
  "... dsn=5.4.4, status=bounced (Host or domain name not found. Name
   service error for name=X type=MX: Host not found)" for a domain that
   does not exist; dsn=5.1.10 "... does not accept mail (nullMX)" for a
   null MX (RFC 7505); dsn=4.4.3, status=deferred for a DNS server
   failure.
"""

import os
import re
import socket
import threading
import time

import pytest

from conftest import (Sandbox, check_sanitizer, removed_re, status_re,
                      wait_for)
from dnsserver import DnsServer
from netns import run_in_netns
from smarthost import Smarthost
from tlscerts import _openssl, server_context

RCPT = "bob@example.com"
MSG = b"Subject: via MX\n\nhello over a real port\n"
FAST_RETRY = dict(minimal_backoff_time="2s", maximal_backoff_time="4s",
                  queue_run_delay="1s")

ZONE = {
    "mx.test.example": {"MX": [(10, "mail1.test.example"),
                               (20, "mail2.test.example")],
                        "A": ["127.0.0.5"]},
    "mail1.test.example": {"A": ["127.0.0.2"]},
    "mail2.test.example": {"A": ["127.0.0.3"]},
    "plain.test.example": {"A": ["127.0.0.4"]},
    "nomail.test.example": {"MX": [(0, ".")]},
    "broken.test.example": "SERVFAIL",
}


def relay_re(host, addr, port):
    return r"%s\[%s\]:%d" % (re.escape(host), re.escape(addr), port)


def line_re(status, relay):
    """posternd's line for RCPT with the given status and relay= regex."""
    return status_re(RCPT, status).replace(r"relay=\S+", "relay=" + relay)


class Net:
    """A scenario's world inside the namespace: the DNS server, the
    smarthosts {(addr, port): Smarthost}, and a sandbox whose relayhost
    is relay. Closing it makes the `sandbox` fixture's checks."""

    def __init__(self, bins, root, relay, servers=(), zone=None,
                 **config):
        self.root = root
        self.dns = DnsServer(ZONE if zone is None else zone).start()
        self.smarthosts = {}
        self.sb = None
        try:
            for addr, port, opts in servers:
                d = os.path.join(root, "received-%s-%d" % (addr, port))
                self.smarthosts[(addr, port)] = Smarthost(
                    d, host=addr, port=port, **opts).start()
            # The sandbox wants a smarthost; one that is never used will do.
            first = next(iter(self.smarthosts.values()), None)
            if first is None:
                first = Smarthost(os.path.join(root, "unused")).start()
                self.smarthosts[("unused", 0)] = first
            self.sb = Sandbox(os.path.join(root, "sb"), bins, first)
            self.sb.write_config(relayhost=relay, **config)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        sb, died, status = self.sb, False, None
        if sb is not None:
            died = sb.daemon is not None and sb.daemon.poll() is not None
            status = sb.daemon.returncode if died else None
            sb.cleanup()
        for sh in self.smarthosts.values():
            sh.close()
        self.dns.stop()
        if sb is not None:
            text = sb.log_text()
            check_sanitizer(text, "posternd")
            if died:
                pytest.fail("posternd exited by itself (status %r); log:\n%s"
                            % (status, text[-6000:]), pytrace=False)

    def send(self):
        self.sb.start_daemon()
        self.sb.send_ok(["-i", "-f", "alice", RCPT], MSG)


def delivered(net, addr, port, host):
    """Wait for the message at (addr, port), logged with relay=host[addr]:
    port; the log line."""
    sh = net.smarthosts[(addr, port)]
    net.sb.wait(lambda: sh.delivered_to(RCPT), what="delivery at %s:%d" %
                (addr, port))
    line = net.sb.wait_log(line_re("sent", relay_re(host, addr, port)))[0]
    assert len(sh.messages) == 1, sh.messages
    assert sh.messages[0].data.endswith(b"hello over a real port\r\n")
    for other, osh in net.smarthosts.items():
        if other != (addr, port):
            assert not osh.messages, (other, osh.messages)
    return line


# ---- found: the MX hosts, in order ------------------------------------

def _mx_delivered(bins, root):
    with Net(bins, root, "mx.test.example",
             [("127.0.0.2", 25, {}), ("127.0.0.3", 25, {})]) as net:
        net.send()
        delivered(net, "127.0.0.2", 25, "mail1.test.example")
        assert net.dns.asked("mx.test.example", "MX") >= 1
        # The MX host's own address, not the domain's A record.
        assert net.dns.asked("mail1.test.example", "A") >= 1
        assert not net.dns.asked("mx.test.example", "A")


def test_mx_delivered_to_best_mx(bins, tmp_path):
    """relayhost = mx.test.example: the MX with the lowest preference,
    on port 25, gets the mail; the log names that host."""
    run_in_netns(_mx_delivered, bins, str(tmp_path))


def _first_mx_down(bins, root):
    # Nothing listens on mail1 (127.0.0.2:25): connection refused.
    with Net(bins, root, "mx.test.example",
             [("127.0.0.3", 25, {})]) as net:
        net.send()
        delivered(net, "127.0.0.3", 25, "mail2.test.example")
        net.sb.wait_log(r"connect to mail1\.test\.example\[127\.0\.0\.2\]:25:"
                        r" Connection refused \(trying the next mail "
                        r"exchanger, mail2\.test\.example\)")


def test_first_mx_down_second_gets_it(bins, tmp_path):
    run_in_netns(_first_mx_down, bins, str(tmp_path))


def _greeting_server(addr, port, reply, stop):
    """A server that answers every connection with reply and hangs up."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(8)
    srv.settimeout(0.2)
    count = [0]

    def loop():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except socket.timeout:
                continue
            count[0] += 1
            c.sendall(reply)
            c.close()
        srv.close()
    threading.Thread(target=loop, daemon=True).start()
    return count


def _first_mx_refuses(bins, root):
    stop = threading.Event()
    count = _greeting_server("127.0.0.2", 25, b"554 5.3.2 not today\r\n",
                             stop)
    try:
        with Net(bins, root, "mx.test.example",
                 [("127.0.0.3", 25, {})]) as net:
            net.send()
            delivered(net, "127.0.0.3", 25, "mail2.test.example")
            assert count[0] >= 1
            net.sb.wait_log(r"host mail1\.test\.example\[127\.0\.0\.2\] "
                            r"refused to talk to me: 554 5\.3\.2 not today "
                            r"\(trying the next mail exchanger")
    finally:
        stop.set()


def test_first_mx_refuses_greeting_second_gets_it(bins, tmp_path):
    """A 5xx greeting is not the end: the next MX is tried (Postfix's
    smtp_skip_5xx_greeting)."""
    run_in_netns(_first_mx_refuses, bins, str(tmp_path))


def _all_mx_down(bins, root):
    with Net(bins, root, "mx.test.example", [], **FAST_RETRY) as net:
        net.send()
        line = net.sb.wait_log(line_re("deferred", "none"))[0]
        # The last failure is the one reported.
        assert "dsn=4.4.1" in line, line
        assert ("connect to mail2.test.example[127.0.0.3]:25: Connection "
                "refused" in line), line
        qid = re.search(status_re(RCPT, "deferred"), line).group(1)
        net.sb.wait(lambda: net.sb.find_qid(qid) == ["deferred"],
                    what="%s in deferred/" % qid)
        assert not net.sb.log_lines("status=bounced")


def test_all_mx_down_deferred(bins, tmp_path):
    run_in_netns(_all_mx_down, bins, str(tmp_path))


# ---- no MX records: the host itself -------------------------------------

def _no_mx(bins, root):
    with Net(bins, root, "plain.test.example",
             [("127.0.0.4", 25, {})]) as net:
        net.send()
        delivered(net, "127.0.0.4", 25, "plain.test.example")
        assert net.dns.asked("plain.test.example", "MX") >= 1


def test_no_mx_uses_address_record(bins, tmp_path):
    """No MX records (NODATA): the domain's own A record (RFC 5321 5.1)."""
    run_in_netns(_no_mx, bins, str(tmp_path))


# ---- permanent and temporary DNS failures -------------------------------

def _permanent(bins, root, relay, dsn, text):
    with Net(bins, root, relay, [], **FAST_RETRY) as net:
        net.send()
        line = net.sb.wait_log(line_re("bounced", "none"))[0]
        assert "dsn=%s," % dsn in line, line
        assert text in line, line
        qid = re.search(status_re(RCPT, "bounced"), line).group(1)
        # Not deferred to be tried again: returned to the sender at once.
        # The bounce goes through the same relayhost and fails the same
        # way: it is never returned itself, and kept in hold/.
        nqid = net.sb.wait_log(r"%s: sender non-delivery notification: "
                               % qid)[0].split()[-1]
        net.sb.wait_log(r"%s: undeliverable notice placed on hold" % nqid)
        net.sb.wait(lambda: net.sb.all_queued() == {"hold": [nqid]},
                    what="the notice alone, in hold/")
        time.sleep(4)
        assert len(net.sb.log_lines(status_re(RCPT, r"\w+"))) == 1, \
            net.sb.log_text()


def test_nxdomain_bounced(bins, tmp_path):
    run_in_netns(_permanent, bins, str(tmp_path), "nowhere.test.example",
                 "5.4.4", "(Host or domain name not found. Name service "
                 "error for name=nowhere.test.example type=MX: Host not "
                 "found)")


def test_null_mx_bounced(bins, tmp_path):
    run_in_netns(_permanent, bins, str(tmp_path), "nomail.test.example",
                 "5.1.10", "(Domain nomail.test.example does not accept "
                 "mail (nullMX))")


def _servfail(bins, root):
    with Net(bins, root, "broken.test.example", [], **FAST_RETRY) as net:
        net.send()
        lines = net.sb.wait_log(line_re("deferred", "none"), count=2)
        for line in lines:
            assert "dsn=4.4.3," in line, line
            assert ("name=broken.test.example type=MX: Host not found, "
                    "try again" in line), line
        assert not net.sb.log_lines("status=bounced")


def test_dns_server_failure_deferred(bins, tmp_path):
    """SERVFAIL is temporary: deferred and tried again, never bounced."""
    run_in_netns(_servfail, bins, str(tmp_path))


def _no_dns_server(bins, root):
    with Net(bins, root, "mx.test.example", [], **FAST_RETRY) as net:
        net.dns.stop()
        net.send()
        line = net.sb.wait_log(line_re("deferred", "none"))[0]
        assert "dsn=4.4.3," in line, line
        assert "type=MX: Host not found, try again" in line, line


def test_no_dns_server_deferred(bins, tmp_path):
    """No answer at all (nothing on port 53): temporary."""
    run_in_netns(_no_dns_server, bins, str(tmp_path))


# ---- brackets: no MX lookup ---------------------------------------------

def _brackets(bins, root):
    # mx.test.example's MX hosts are mail1 and mail2; its A record is
    # 127.0.0.5. All three listen: only the A record may get the mail.
    with Net(bins, root, "[mx.test.example]",
             [("127.0.0.5", 25, {}), ("127.0.0.2", 25, {}),
              ("127.0.0.3", 25, {})]) as net:
        net.send()
        delivered(net, "127.0.0.5", 25, "mx.test.example")
        assert not net.dns.asked("mx.test.example", "MX"), net.dns.queries


def test_brackets_no_mx_lookup(bins, tmp_path):
    run_in_netns(_brackets, bins, str(tmp_path))


def _hosts_file(bins, root):
    # A name only /etc/hosts knows, in brackets: no DNS at all.
    with Net(bins, root, "[mail.isp.example]",
             [("127.0.0.6", 25, {})]) as net:
        net.send()
        delivered(net, "127.0.0.6", 25, "mail.isp.example")
        assert not net.dns.asked("mail.isp.example"), net.dns.queries


def test_brackets_name_from_hosts_file(bins, tmp_path):
    run_in_netns(_hosts_file, bins, str(tmp_path),
                 hosts={"mail.isp.example": "127.0.0.6"})


# ---- a port with an MX lookup -------------------------------------------

def _port_587(bins, root):
    with Net(bins, root, "mx.test.example:587",
             [("127.0.0.2", 587, {}), ("127.0.0.2", 25, {})]) as net:
        net.send()
        delivered(net, "127.0.0.2", 587, "mail1.test.example")
        assert net.dns.asked("mx.test.example", "MX") >= 1


def test_mx_lookup_with_port_587(bins, tmp_path):
    """relayhost = mx.test.example:587: MX lookup, then port 587 on the
    MX host."""
    run_in_netns(_port_587, bins, str(tmp_path))


# ---- TLS: hostname is the MX host, nexthop the relay's domain -----------

def make_leaf(certs, directory, name, dns_names):
    """A server certificate for dns_names, signed by the test CA."""
    os.makedirs(directory, exist_ok=True)
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    cert = os.path.join(directory, name + ".pem")
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints = critical, CA:FALSE\n"
                "keyUsage = critical, digitalSignature\n"
                "extendedKeyUsage = serverAuth\n"
                "subjectAltName = %s\n" %
                ", ".join("DNS:" + n for n in dns_names))
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out",
             csr, "-subj", "/CN=%s" % dns_names[0])
    _openssl("x509", "-req", "-in", csr, "-CA", certs.ca, "-CAkey",
             certs.ca_key, "-set_serial", str(int(time.time() * 1000)),
             "-days", "30", "-sha256", "-extfile", ext, "-out", cert)
    return cert, key


# One MX host only, so that a refusal is the final word (with a second
# MX host, the refusal would be logged and the next host tried).
TLS_ZONE = {
    "mx.test.example": {"MX": [(10, "mail1.test.example")]},
    "mail1.test.example": {"A": ["127.0.0.2"]},
}


def _tls(bins, root, cert, key, ca, level, expect_ok, match=None):
    ctx = server_context(cert, key)
    sni = []
    ctx.sni_callback = lambda sslobj, name, c: sni.append(name)
    config = dict(smtp_tls_security_level=level, smtp_tls_CAfile=ca)
    if match is not None:
        config["smtp_tls_%s_cert_match" % level] = match
    with Net(bins, root, "mx.test.example",
             [("127.0.0.2", 25, {"tls_context": ctx})], zone=TLS_ZONE,
             **config) as net:
        net.send()
        if expect_ok:
            delivered(net, "127.0.0.2", 25, "mail1.test.example")
            net.sb.wait_log(r"Verified TLS connection established to "
                            r"mail1\.test\.example\[127\.0\.0\.2\]:25")
        else:
            line = net.sb.wait_log(line_re("deferred", r"\S+"))[0]
            assert "dsn=4.7.5," in line, line
            assert ("TLS with mail1.test.example[127.0.0.2]:25 failed: "
                    in line), line
            assert "hostname mismatch" in line, line
            assert not net.smarthosts[("127.0.0.2", 25)].messages
        # SNI (smtp_tls_servername = hostname): the MX host's name.
        assert sni and set(sni) == {"mail1.test.example"}, sni
        return open(net.sb.logfile).read()


@pytest.fixture
def mx_certs(tls_certs, tmp_path):
    """Certificates for the MX host and for the relay's domain."""
    d = str(tmp_path / "certs")
    return {
        "mx_host": make_leaf(tls_certs, d, "mail1", ["mail1.test.example"]),
        "domain": make_leaf(tls_certs, d, "domain", ["mx.test.example"]),
        "below": make_leaf(tls_certs, d, "below",
                           ["smtp.mx.test.example"]),
    }


def test_tls_verify_checks_mx_host_name(bins, tmp_path, tls_certs,
                                        mx_certs):
    """Level verify (smtp_tls_verify_cert_match = hostname): the MX
    host's certificate is for the MX host's name, and that is enough."""
    cert, key = mx_certs["mx_host"]
    run_in_netns(_tls, bins, str(tmp_path / "run"), cert, key, tls_certs.ca,
                 "verify", True)


def test_tls_verify_refuses_domain_only_cert(bins, tmp_path, tls_certs,
                                             mx_certs):
    """A certificate for the relay's domain only does not name the MX
    host: level verify refuses it (the name in the log is what was
    expected)."""
    cert, key = mx_certs["domain"]
    log = run_in_netns(_tls, bins, str(tmp_path / "run"), cert, key,
                       tls_certs.ca, "verify", False)
    assert "expected mail1.test.example" in log, log


def test_tls_secure_checks_nexthop(bins, tmp_path, tls_certs, mx_certs):
    """Level secure (smtp_tls_secure_cert_match = nexthop, dot-nexthop):
    the names come from the configuration, not from DNS, so a
    certificate for the MX host's name alone is refused..."""
    cert, key = mx_certs["mx_host"]
    log = run_in_netns(_tls, bins, str(tmp_path / "run"), cert, key,
                       tls_certs.ca, "secure", False)
    assert "expected mx.test.example, .mx.test.example" in log, log


def test_tls_secure_accepts_domain_cert(bins, tmp_path, tls_certs,
                                        mx_certs):
    """...and one for the relay's domain is accepted, from whichever MX
    host presents it."""
    cert, key = mx_certs["domain"]
    run_in_netns(_tls, bins, str(tmp_path / "run"), cert, key, tls_certs.ca,
                 "secure", True)


def test_tls_dot_nexthop_accepts_name_below(bins, tmp_path, tls_certs,
                                            mx_certs):
    """dot-nexthop: any name below the relay's domain."""
    cert, key = mx_certs["below"]
    run_in_netns(_tls, bins, str(tmp_path / "run"), cert, key, tls_certs.ca,
                 "verify", True, match="dot-nexthop")


def _refused_session_relay(bins, root, cert, key, ca):
    ctx = server_context(cert, key)
    with Net(bins, root, "mx.test.example",
             [("127.0.0.2", 25, {"tls_context": ctx})], zone=TLS_ZONE,
             smtp_tls_security_level="verify", smtp_tls_CAfile=ca) as net:
        net.send()
        line = net.sb.wait_log(line_re("deferred", r"\S+"))[0]
        assert "relay=mail1.test.example[127.0.0.2]:25," in line, line


def test_refused_session_logs_mx_host(bins, tmp_path, tls_certs, mx_certs):
    """A session refused after connecting (here: TLS) logs the MX host it
    reached, as a delivered message does."""
    cert, key = mx_certs["domain"]
    run_in_netns(_refused_session_relay, bins, str(tmp_path / "run"), cert,
                 key, tls_certs.ca)


def _tls_refused_then_next(bins, root, bad, good, ca):
    ctx1 = server_context(*bad)
    ctx2 = server_context(*good)
    with Net(bins, root, "mx.test.example",
             [("127.0.0.2", 25, {"tls_context": ctx1}),
              ("127.0.0.3", 25, {"tls_context": ctx2})],
             smtp_tls_security_level="verify", smtp_tls_CAfile=ca) as net:
        net.send()
        delivered(net, "127.0.0.3", 25, "mail2.test.example")
        net.sb.wait_log(r"TLS with mail1\.test\.example\[127\.0\.0\.2\]:25 "
                        r"failed: certificate verify failed: hostname "
                        r"mismatch.*\(trying the next mail exchanger, "
                        r"mail2\.test\.example\)$")
        # The refused host saw nothing after STARTTLS.
        mail1 = net.smarthosts[("127.0.0.2", 25)]
        for _, data in mail1.transcripts:
            assert b"MAIL FROM" not in data, data


def test_tls_refused_mx_then_next(bins, tmp_path, tls_certs, mx_certs):
    """An MX host whose certificate fails the check is skipped, and the
    next one, whose certificate names it, gets the mail."""
    good = make_leaf(tls_certs, str(tmp_path / "certs"), "mail2",
                     ["mail2.test.example"])
    run_in_netns(_tls_refused_then_next, bins, str(tmp_path / "run"),
                 mx_certs["domain"], good, tls_certs.ca)


def _login_refused(bins, root):
    opts = {"auth": {"alice": "the-right-one"}, "auth_require_tls": False,
            "auth_mechanisms": ["PLAIN"]}
    pw = os.path.join(root, "sasl_passwd")
    with open(pw, "w") as f:
        f.write("mx.test.example  alice:not-the-password\n")
    os.chmod(pw, 0o600)
    with Net(bins, root, "mx.test.example",
             [("127.0.0.2", 25, dict(opts)), ("127.0.0.3", 25, dict(opts))],
             smtp_tls_security_level="none", smtp_sasl_auth_enable="yes",
             smtp_sasl_password_maps="texthash:" + pw,
             smtp_sasl_security_options="noanonymous",
             smtp_sasl_allow_unencrypted="yes") as net:
        net.send()
        line = net.sb.wait_log(line_re("deferred", r"\S+"))[0]
        assert "SASL authentication failed" in line, line
        assert "mail1.test.example[127.0.0.2]" in line, line
        # The relay records the refused AUTH on its own thread.
        assert net.smarthosts[("127.0.0.2", 25)].wait(
            lambda s: s.auth_attempts), "mail1 was never asked"
        # One refusal is enough: the same login is not tried at mail2.
        assert net.smarthosts[("127.0.0.3", 25)].connections == 0
        assert "not-the-password" not in net.sb.log_text()


def test_refused_login_not_tried_at_next_mx(bins, tmp_path):
    run_in_netns(_login_refused, bins, str(tmp_path))


def _no_mx_for(bins, root, relay, addr, host):
    with Net(bins, root, relay, [(addr, 25, {})]) as net:
        net.send()
        delivered(net, addr, 25, host)
        assert not [q for q in net.dns.queries if q[1] == "MX"], \
            net.dns.queries


@pytest.mark.parametrize("relay,addr,host", [
    ("localhost", "127.0.0.1", "localhost"),
    ("127.0.0.2", "127.0.0.2", "127.0.0.2"),
    ("127.0.0.2:25", "127.0.0.2", "127.0.0.2"),
], ids=["localhost", "address", "address-port"])
def test_no_mx_lookup_for_address_or_localhost(bins, tmp_path, relay, addr,
                                               host):
    """Without brackets, but nothing to look up: an address, or localhost
    (which the test DNS server, like many, does not know: an MX lookup
    would bounce the mail)."""
    run_in_netns(_no_mx_for, bins, str(tmp_path), relay, addr, host)
