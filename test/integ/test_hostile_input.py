"""A local user's input that becomes header text or SMTP syntax (issue 15
items 5 and 6, issue 14 item 7; sendmail(8) SECURITY): each attack is
performed with the real sendmail and shown to fail, the relay receives no
injected header and no smuggled ESMTP parameter, and every other message
still arrives exactly once.
"""

import email
import email.header
import email.policy
import os
import re

import pytest

from conftest import EX_DATAERR, EX_USAGE, status_re

MSG = b"Subject: hostile input\n\nhello\n"
INJECTED = re.compile(rb"^(X-Injected|Bcc|Reply-To):", re.I | re.M)


def queued(sb):
    """Every queue file anywhere in the spool."""
    return sum(len(v) for v in sb.all_queued().values())


def refused(sb, args, status, why, input=MSG):
    """sendmail ARGS must exit with status, say why, queue nothing."""
    before = queued(sb)
    cp = sb.send(args, input)
    err = cp.stderr.decode(errors="replace")
    assert cp.returncode == status, (args, cp.returncode, err)
    assert re.search(why, err), (args, err)
    # One line, the control characters shown as '?': no forged output.
    assert err.count("\n") == 1 and err.startswith("sendmail: fatal: "), err
    assert queued(sb) == before, sb.all_queued()
    return err


# -F (issue 15 item 5): a line break would start new header fields.
FULL_NAME_ATTACKS = [
    "Eve\nBcc: victim@example.com",
    "Eve\r\nX-Injected: yes",
    "Eve\rReply-To: eve@evil.example",
    "Eve\n\nforged body",
    "Eve\tTab",
    "Eve\x1b[2J",
    "Eve\u0085Bcc: victim@example.com",     # NEL, a C1 control
    "Eve\udcff",                            # the byte 0xff: not UTF-8
    "E" * 300,
]

# -f and recipients (issue 15 item 6, issue 14 item 7): anything after a
# space would reach a lenient relay as an ESMTP parameter.
ADDRESS_ATTACKS = [
    (["-f", "x@y BODY=8BITMIME", "bob@example.com"], "sender",
     "space outside quotes at byte 4"),
    (["-f", "alice@example.com", "bob@example.com NOTIFY=NEVER"],
     "recipient", "space outside quotes at byte 16"),
    (["-f", "alice@example.com", "bob@example.com>NOTIFY=NEVER"],
     "recipient", "unbalanced <>"),
    (["-f", "alice@example.com", "bob@example.com\tORCPT=rfc822;x"],
     "recipient", "control character"),
    (["-f", "alice@example.com", "bad address@@x"], "recipient",
     "space outside quotes at byte 4"),
    (["-f", "alice@example.com", "bob@@example.com"], "recipient",
     "'@' at byte 5"),
    (["-f", "alice@example.com", "bob@example..com"], "recipient",
     "empty label"),
    (["-f", "alice@example.com", "a..b@example.com"], "recipient",
     "two dots"),
    (["-f", "alice@example.com", "bob@example.com\nrecipient eve@x"],
     "recipient", "newline"),
    (["-f", "alice@example.com\nrecipient eve@x", "bob@example.com"],
     "sender", "newline"),
]


@pytest.mark.parametrize("name", FULL_NAME_ATTACKS)
def test_full_name_injection_refused(sandbox, name):
    sb = sandbox
    sb.make_spool()
    # subprocess passes the bytes as given (0xff through surrogateescape).
    cp = sb.send(["-F", name, "-f", "alice@example.com", "bob@example.com"],
                 MSG)
    err = cp.stderr.decode(errors="replace")
    assert cp.returncode == EX_USAGE, (name, cp.returncode, err)
    assert "bad -F option value" in err, err
    assert err.count("\n") == 1, err
    assert queued(sb) == 0, sb.all_queued()


@pytest.mark.parametrize("args,which,why", ADDRESS_ATTACKS)
def test_address_smuggling_refused(sandbox, args, which, why):
    sb = sandbox
    sb.make_spool()
    err = refused(sb, args, EX_DATAERR,
                  "bad address syntax in %s \"" % which)
    assert why in err, err


@pytest.mark.parametrize("header", [
    "To: bob@example.com NOTIFY=NEVER",
    "To: Bob <bob@example.com NOTIFY=NEVER>",
    "Cc: \"x\"@y BODY=8BITMIME",
    "Bcc: bad address@@x",
])
def test_header_recipients_checked(sandbox, header):
    """-t: recipients from To/Cc/Bcc pass the same syntax check."""
    sb = sandbox
    sb.make_spool()
    refused(sb, ["-t", "-f", "alice@example.com"], EX_DATAERR,
            "bad address syntax", input=(header + "\n" + MSG.decode()))


def test_other_option_values_refused(sandbox):
    """-V, -R and -N go into the envelope and onto the wire (ENVID=,
    RET=, NOTIFY=): only their few legal values pass."""
    sb = sandbox
    sb.make_spool()
    for opt, val in (("-V", "id\nrecipient eve@x"), ("-V", "a b"),
                     ("-V", "x=y"), ("-R", "full\nx"), ("-N", "never x"),
                     ("-N", "success\n")):
        refused(sb, [opt, val, "-f", "alice@example.com", "bob@example.com"],
                EX_USAGE, "bad %s option value" % opt)


def test_attacks_leave_relay_clean(sandbox):
    """With the daemon running: every attack above is refused, the good
    messages sent in between arrive exactly once each, the relay never
    sees an injected header or a smuggled parameter."""
    sb = sandbox
    sb.start_daemon()
    good = 0
    for name in FULL_NAME_ATTACKS[:4]:
        cp = sb.send(["-F", name, "-f", "alice@example.com",
                      "bob@example.com"], MSG)
        assert cp.returncode == EX_USAGE, cp.stderr
        sb.send_ok(["-F", "Alice", "-f", "alice@example.com",
                    "good%d@example.com" % good], MSG)
        good += 1
    for args, _, _ in ADDRESS_ATTACKS:
        assert sb.send(args, MSG).returncode == EX_DATAERR, args
        sb.send_ok(["-f", "alice@example.com", "good%d@example.com" % good],
                   MSG)
        good += 1
    sb.wait(lambda: len(sb.smarthost.messages) >= good, what="the good mail")
    sb.wait(lambda: sb.all_queued() == {}, what="an empty queue")
    got = sorted(r for m in sb.smarthost.messages for r in m.rcpt_tos)
    assert got == sorted("good%d@example.com" % i for i in range(good))
    for m in sb.smarthost.messages:
        assert not INJECTED.search(m.data.split(b"\r\n\r\n")[0]), m.data
        assert all(o.startswith("SIZE=") for o in m.mail_options), m
        assert m.rcpt_options == [], m
    wire = b"".join(t for _, t in sb.smarthost.transcripts)
    for bad in (b"NOTIFY", b"BODY=8BITMIME", b"ORCPT", b"X-Injected",
                b"victim", b"eve@"):
        assert bad not in wire, bad
    assert sb.stop_daemon() == 0


def test_full_name_encoded(sandbox):
    """What -F may hold arrives as a correct display name: specials in a
    quoted string, non-ASCII as RFC 2047 encoded-words (UTF-8, lines
    within 76 characters)."""
    sb = sandbox
    sb.start_daemon()
    names = ["Alice Example", "Smith, John", 'J. R. "Bob" Dobbs',
             "J\u00f6rg M\u00fcller", "\u5c71\u7530\u592a\u90ce",
             "Zo\u00eb " + "\u00c9" * 40]
    for i, name in enumerate(names):
        sb.send_ok(["-F", name, "-f", "alice@example.com",
                    "n%d@example.com" % i], MSG)
    sb.wait(lambda: len(sb.smarthost.messages) == len(names),
            what="delivery")
    by_rcpt = {m.rcpt_tos[0]: m for m in sb.smarthost.messages}
    for i, name in enumerate(names):
        data = by_rcpt["n%d@example.com" % i].data
        head = data.split(b"\r\n\r\n")[0]
        # 7-bit headers: the name never leaves as raw UTF-8.
        assert all(b < 0x80 for b in head), head
        raw_from = re.search(rb"^From: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*", head,
                             re.M)
        for line in raw_from.group(0).split(b"\r\n"):
            assert len(line) <= 76, line
        # email.header: RFC 2047 decoding that drops the folding
        # between adjacent encoded-words, as the RFC says.
        value = raw_from.group(0)[len(b"From: "):].decode()
        shown = str(email.header.make_header(
            email.header.decode_header(value.replace("\r\n", "\n"))))
        assert shown.endswith(" <alice@example.com>"), shown
        dn = shown[:-len(" <alice@example.com>")]
        if dn.startswith('"'):
            dn = re.sub(r'\\(.)', r"\1", dn[1:-1])
        assert dn == name, (name, raw_from.group(0))
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg["From"].addresses[0].addr_spec == "alice@example.com"
    assert sb.stop_daemon() == 0


def test_quoted_local_part_accepted(sandbox):
    """RFC 5321 allows a space in a quoted local part: accepted, and it
    goes to the relay quoted, inside the brackets, as one address."""
    sb = sandbox
    sb.start_daemon()
    sb.send_ok(["-f", "\"alice smith\"@example.com",
                "\"bob jones\"@example.com"], MSG)
    sb.wait(lambda: sb.smarthost.messages, what="delivery")
    (m,) = sb.smarthost.messages
    wire = b"".join(t for _, t in sb.smarthost.transcripts)
    assert b'MAIL FROM:<"alice smith"@example.com>' in wire, wire
    assert b'RCPT TO:<"bob jones"@example.com>' in wire, wire
    assert sb.stop_daemon() == 0


def test_generic_map_result_with_space_not_sent(sandbox):
    """An smtp_generic_maps result with a space (an admin's typo, or an
    attempt) is not an address: the message is deferred with the fix
    named, and nothing is sent."""
    sb = sandbox
    path = os.path.join(sb.root, "generic")
    with open(path, "w") as f:
        f.write("carol@example.com   carol@example.com NOTIFY=NEVER\n")
    sb.write_config(smtp_generic_maps="texthash:" + path)
    sb.start_daemon()
    sb.send_ok(["-f", "alice@example.com", "carol@example.com"], MSG)
    line = sb.wait_log(status_re("carol@example.com", "deferred"))[0]
    assert "not an address" in line and "fix the table" in line, line
    wire = b"".join(t for _, t in sb.smarthost.transcripts)
    assert b"NOTIFY=NEVER" not in wire, wire
    assert sb.smarthost.messages == []
    assert sb.stop_daemon() == 0


def test_client_refuses_space_from_forged_queue_file(sandbox):
    """Defence in depth in the SMTP client: a queue file that never went
    through sendmail's check (written into incoming/new by a member of
    the postern group, issue 15 item 3's attacker) with a recipient
    "carol@example.com NOTIFY=NEVER" and a sender with a space: those are
    bounced or failed with a clear reason and never sent; a good
    recipient of the same message is delivered once."""
    sb = sandbox
    sb.start_daemon()
    body = b"Subject: forged\n\nforged\n"
    for n, (sender, rcpts) in enumerate((
            ("alice@example.com", ["bob@example.com",
                                   "carol@example.com NOTIFY=NEVER",
                                   "dave@example.com>"]),
            ("x@y BODY=8BITMIME", ["erin@example.com"]))):
        env = ("POSTERN-QUEUE 1\narrival 1700000000.000000\nuid 0\n"
               "sender %s\n" % sender +
               "".join("recipient %s\n" % r for r in rcpts) +
               "size %d\nend-of-envelope\n" % len(body)).encode()
        tmp = os.path.join(sb.spool, "incoming", "tmp", "F0F0F0F0F%d" % n)
        with open(tmp, "wb") as f:
            f.write(env + body)
        os.rename(tmp, os.path.join(sb.spool, "incoming", "new",
                                    "F0F0F0F0F%d" % n))
    for r in ("carol@example.com NOTIFY=NEVER", "dave@example.com>"):
        line = sb.wait_log(status_re(r, "bounced"))[0]
        assert "invalid recipient address" in line and "not sent" in line, \
            line
    line = sb.wait_log(status_re("erin@example.com", "bounced"))[0]
    assert "invalid sender address" in line and "not sent" in line, line
    sb.wait_log(status_re("bob@example.com", "sent"))
    # The bounce to "x@y BODY=8BITMIME" can never go: it is held, not
    # dropped (postern.conf(5), DIFFERENCES FROM POSTFIX), and not sent.
    line = sb.wait_log(r"warning: [0-9A-F]+: undeliverable notice placed "
                       r"on hold")[0]
    held = re.search(r"warning: ([0-9A-F]+):", line).group(1)
    sb.wait(lambda: sb.all_queued() == {"hold": [held]},
            what="only the undeliverable notice, in hold/")
    # The commands (the bounce to alice quotes the bad addresses in its
    # text, which is fine).
    cmds = [l for _, t in sb.smarthost.transcripts for l in t.split(b"\r\n")
            if l[:5] in (b"MAIL ", b"RCPT ")]
    for bad in (b"NOTIFY", b"BODY=8BITMIME", b"dave@", b"erin@"):
        assert not any(bad in l for l in cmds), cmds
    # bob once; alice, the sender, hears of the two bad recipients.
    delivered = [r for m in sb.smarthost.messages for r in m.rcpt_tos]
    assert sorted(delivered) == ["alice@example.com", "bob@example.com"], \
        delivered
    assert sb.stop_daemon() == 0


def test_forged_notify_never_reaches_the_relay(sandbox):
    """A queue file dropped into incoming/new by a member of the postern
    group with "notify NEVER ORCPT=x X=y" (ESMTP parameters smuggled
    onto RCPT TO through NOTIFY=, which goes out as is) is corrupt: it
    goes to corrupt/ and the relay, which takes DSN parameters, never
    sees it. A file with a good notify record goes out with it."""
    sb = sandbox
    sb.smarthost.dsn = True
    sb.start_daemon()
    body = b"Subject: forged notify\n\nforged\n"
    files = {"F1F1F1F1F0": ("NEVER ORCPT=rfc822;x X=y", "bob@example.com"),
             "F1F1F1F1F1": ("FAILURE,X=y", "carol@example.com"),
             "F1F1F1F1F2": ("never", "dave@example.com")}
    for name, (notify, rcpt) in files.items():
        env = ("POSTERN-QUEUE 1\narrival 1700000000.000000\nuid 0\n"
               "sender alice@example.com\nrecipient %s\nnotify %s\n"
               "size %d\nend-of-envelope\n" % (rcpt, notify,
                                               len(body))).encode()
        tmp = os.path.join(sb.spool, "incoming", "tmp", name)
        with open(tmp, "wb") as f:
            f.write(env + body)
        os.rename(tmp, os.path.join(sb.spool, "incoming", "new", name))
    sb.wait(lambda: sorted(sb.queue_files("corrupt")) ==
            ["F1F1F1F1F0", "F1F1F1F1F1"], what="the forged files in corrupt/")
    sb.wait_log(r"bad notify record")
    sb.wait_log(status_re("dave@example.com", "sent"))
    cmds = [l for _, t in sb.smarthost.transcripts for l in t.split(b"\r\n")
            if l[:5] in (b"MAIL ", b"RCPT ")]
    for bad in (b"X=y", b"ORCPT=rfc822;x", b"bob@", b"carol@"):
        assert not any(bad in l for l in cmds), cmds
    assert [m.rcpt_tos for m in sb.smarthost.messages] == [
        ["dave@example.com"]]
    assert sb.smarthost.messages[0].rcpt_dsn[0]["NOTIFY"].upper() == "NEVER"
    assert sb.stop_daemon() == 0
