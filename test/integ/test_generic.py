"""smtp_generic_maps on the way out: envelope sender and recipients and
the address headers, with display names, comments, groups and folding
kept; the queue file itself is not changed."""

import email
import email.policy
import os
import re

from conftest import status_re

GENERIC = ("his@localdomain.local             hisaccount@hisisp.example\n"
           "her@localdomain.local             heraccount@herisp.example\n"
           "@localdomain.local                hisaccount+local@hisisp.example\n")


def generic_sandbox(sb, **extra):
    path = os.path.join(sb.root, "generic")
    with open(path, "w") as f:
        f.write(GENERIC)
    cp = sb.postern(["map", "hash:" + path])
    assert cp.returncode == 0, cp
    sb.write_config(smtp_generic_maps="hash:" + path, **extra)
    return path


def test_envelope_and_headers_rewritten(sandbox):
    sb = sandbox
    generic_sandbox(sb)
    sb.start_daemon()
    to = ",\n ".join("user%d@localdomain.local" % i for i in range(50))
    head = ('From: "Doe, John" <his@localdomain.local> (work)\n'
            "To: " + to + "\n"
            "Cc: team: her@localdomain.local, bob@example.com;\n"
            "Reply-To: nobody@elsewhere.example\n"
            "Subject: his@localdomain.local stays in the subject\n"
            "\nbody his@localdomain.local\n")
    sb.send_ok(["-f", "his@localdomain.local", "her@localdomain.local",
                "bob@example.com"], head.encode())
    sb.wait_log(status_re("bob@example.com", "sent"))
    (m,) = sb.smarthost.messages
    assert m.mail_from == "hisaccount@hisisp.example"
    assert sorted(m.rcpt_tos) == ["bob@example.com",
                                  "heraccount@herisp.example"]
    data = m.data.decode()
    hdr, body = data.split("\r\n\r\n", 1)
    assert ('From: "Doe, John" <hisaccount@hisisp.example> (work)\r\n'
            in hdr), hdr
    assert ("Cc: team: heraccount@herisp.example, bob@example.com;\r\n"
            in hdr), hdr
    assert "Subject: his@localdomain.local stays in the subject" in hdr
    assert "Reply-To: nobody@elsewhere.example" in hdr
    assert body.startswith("body his@localdomain.local")
    # The folded To: of 50 stays folded the same way and valid.
    want = "To: " + ",\r\n ".join(["hisaccount+local@hisisp.example"] * 50)
    assert want + "\r\n" in hdr, hdr
    msg = email.message_from_bytes(m.data, policy=email.policy.default)
    assert len(msg["To"].addresses) == 50
    assert msg["From"].addresses[0].display_name == "Doe, John"
    # The log names the recipients as queued, before rewriting.
    assert sb.log_lines(status_re("her@localdomain.local", "sent"))


def test_generic_lookup_error_defers(sandbox):
    sb = sandbox
    path = generic_sandbox(sb)
    # Neither the .db nor its source (with the source alone, the daemon
    # reads it as text: test_aliases_text.py).
    os.unlink(path + ".db")
    os.unlink(path)
    sb.start_daemon()
    sb.send_ok(["-f", "his@localdomain.local", "bob@example.com"],
               b"Subject: x\n\nx\n")
    line = sb.wait_log(status_re("bob@example.com", "deferred"))[0]
    assert re.search(r"dsn=4\.3\.0, status=deferred \(.*cannot open "
                     r".*generic\.db", line), line
    assert sb.smarthost.messages == []


def test_header_checks_drop_received_and_user_agent(sandbox):
    """The classic smtp_header_checks: no Received: or User-Agent: leaves
    the machine; REPLACE and WARN work; the body is never looked at."""
    sb = sandbox
    path = os.path.join(sb.root, "header_checks")
    with open(path, "w") as f:
        f.write("/^Received:/            IGNORE\n"
                "/^User-Agent:/          IGNORE\n"
                "/^X-Mailer: (.*)$/      REPLACE X-Mailer: postern ($1)\n"
                "/^Subject:.*secret/     WARN subject mentions a secret\n"
                "/^X-Action:/            REJECT no\n")
    sb.write_config(smtp_header_checks="regexp:" + path)
    sb.start_daemon()
    head = (b"Received: from laptop\n\tby host; Sat, 21 Nov 2026 10:00:00 "
            b"+0000\n"
            b"User-Agent: Mutt/2.2\n"
            b"X-Mailer: cron 3.0\n"
            b"X-Action: kept\n"
            b"Subject: the secret plan\n"
            b"\nReceived: in the body stays\n")
    sb.send_ok(["-f", "alice", "bob@example.com"], head)
    sb.wait_log(status_re("bob@example.com", "sent"))
    (m,) = sb.smarthost.messages
    hdr, body = m.data.decode().split("\r\n\r\n", 1)
    assert "Received:" not in hdr, hdr
    assert "User-Agent" not in hdr and "by host" not in hdr, hdr
    assert "X-Mailer: postern (cron 3.0)\r\n" in hdr, hdr
    assert "X-Action: kept\r\n" in hdr
    assert body.startswith("Received: in the body stays")
    text = sb.log_text()
    assert "warning: header Subject: the secret plan" in text, text
    assert re.search(r"REJECT.*smtp_header_checks|smtp_header_checks.*REJECT",
                     text), text


def test_header_checks_bad_table_refused_at_start(sandbox):
    sb = sandbox
    path = os.path.join(sb.root, "header_checks")
    with open(path, "w") as f:
        f.write("/^Received:/ IGNORE\n/^(unclosed/ IGNORE\n")
    sb.write_config(smtp_header_checks="regexp:" + path)
    cp = sb.run("posternd", ["-f", "-C", sb.confdir], timeout=20)
    assert cp.returncode == 78, cp
    err = cp.stderr.decode()
    assert "smtp_header_checks" in err and "line 2" in err, err


def test_postern_route_shows_generic_rewriting(sandbox):
    sb = sandbox
    generic_sandbox(sb)
    cp = sb.postern(["route", "-f", "his@localdomain.local",
                     "her@localdomain.local", "bob@example.com"])
    out = cp.stdout.decode()
    assert cp.returncode == 0, (out, cp.stderr)
    assert ("  MAIL FROM:       his@localdomain.local -> "
            "hisaccount@hisisp.example (smtp_generic_maps)") in out, out
    assert ("  From: header:    his@localdomain.local -> "
            "hisaccount@hisisp.example (smtp_generic_maps)") in out, out
    assert ("    RCPT TO:         her@localdomain.local -> "
            "heraccount@herisp.example (smtp_generic_maps)") in out, out
    assert "    RCPT TO:         bob@example.com (unchanged)" in out, out
    assert "  To/Cc header:    bob@example.com (unchanged)" in out, out
