"""A message goes in through sendmail and arrives at the smarthost intact:
envelope, added headers, Bcc handling, 8-bit text, dots, long lines, CRLF."""

import email.utils
import os
import re

from conftest import (check_wire, decoded_body, parse_msg, removed_re,
                      status_re)

LONG = "".join(chr(ord("a") + i % 26) for i in range(2000))
BODY_T = ("Grüße aus Köln — 8-bit UTF-8 text: ½ € ✓\n"
          ".\n"
          "..two dots\n"
          ".leading dot\n"
          + LONG + "\n"
          "last line\n").encode()


def wait_delivered(sb, addrs):
    """Wait until every address in addrs got a message; the messages."""
    sb.wait(lambda: all(sb.smarthost.delivered_to(a) for a in addrs),
            what="delivery to %s" % addrs)
    return list(sb.smarthost.messages)


def wait_removed(sb, addr):
    """QID of the message logged as sent to addr, once it is removed."""
    line = sb.wait_log(status_re(addr, "sent", sb.smarthost.port))[0]
    qid = re.search(status_re(addr, "sent"), line).group(1)
    sb.wait_log(removed_re(qid))
    sb.wait(lambda: not sb.find_qid(qid)
            and qid not in sb.queue_files("state"),
            what="%s to leave the spool" % qid)
    return qid


def check_headers_added(msg):
    """Date, Message-ID and exactly one Received."""
    assert len(msg.get_all("Date", [])) == 1, msg.get_all("Date")
    assert email.utils.parsedate_to_datetime(msg["Date"]) is not None
    mids = msg.get_all("Message-ID", [])
    assert len(mids) == 1, mids
    assert re.match(r"^<[^<>@\s]+@[^<>@\s]+>$", mids[0].strip()), mids[0]
    assert len(msg.get_all("Received", [])) == 1, msg.get_all("Received")


def test_sendmail_t_headers_bcc_body(sandbox):
    sb = sandbox
    sb.start_daemon()
    head = (b"To: Bob <bob@example.com>\n"
            b"Cc: carol@example.org\n"
            b"Bcc: dave@example.net\n"
            b"Subject: test -t\n"
            b"\n")
    sb.send_ok(["-t", "-i", "-f", "alice", "-F", "Alice Example"],
               head + BODY_T)
    rcpts = ["bob@example.com", "carol@example.org", "dave@example.net"]
    msgs = wait_delivered(sb, rcpts)
    qid = wait_removed(sb, "bob@example.com")
    for a in rcpts[1:]:
        assert sb.log_lines(r": %s: to=<%s>, .*status=sent \(250 " %
                            (qid, re.escape(a)))
    # One transaction, every recipient once, nothing else.
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m.mail_from == "alice@client.test.example"
    assert sorted(m.rcpt_tos) == sorted(rcpts)
    assert m.helo == "client.test.example"
    # 8-bit body over a server offering 8BITMIME: say so.
    assert "BODY=8BITMIME" in m.mail_options, m.mail_options
    assert any(re.match(r"^SIZE=\d+$", o) for o in m.mail_options), \
        m.mail_options
    check_wire(m.raw)
    msg = parse_msg(m.data)
    assert msg.get_all("Bcc") is None
    assert b"dave@example.net" not in m.data.split(b"\r\n\r\n", 1)[0]
    assert msg["To"] == "Bob <bob@example.com>"
    assert msg["Cc"] == "carol@example.org"
    assert msg["Subject"] == "test -t"
    froms = msg.get_all("From", [])
    assert len(froms) == 1, froms
    assert email.utils.parseaddr(froms[0]) == \
        ("Alice Example", "alice@client.test.example")
    check_headers_added(msg)
    assert decoded_body(m.data) == BODY_T


def test_sendmail_rcpt_args(sandbox):
    sb = sandbox
    sb.write_config(myorigin="origin.test.example")
    sb.start_daemon()
    text = (b"From: Someone <someone@example.org>\n"
            b"To: ignored@example.com\n"
            b"Message-ID: <given.1@example.org>\n"
            b"Subject: recipients from the command line\n"
            b"\n"
            b"plain ascii body\n"
            b".\n"
            b"after the dot\n")
    sb.send_ok(["-i", "rcpt1@example.com", "rcpt2@example.org"], text)
    msgs = wait_delivered(sb, ["rcpt1@example.com", "rcpt2@example.org"])
    wait_removed(sb, "rcpt1@example.com")
    assert len(msgs) == 1, msgs
    m = msgs[0]
    # No -f: the login name (tests run as root), qualified with myorigin.
    assert m.mail_from == "root@origin.test.example"
    assert sorted(m.rcpt_tos) == ["rcpt1@example.com", "rcpt2@example.org"]
    assert not sb.smarthost.delivered_to("ignored@example.com")
    check_wire(m.raw)
    msg = parse_msg(m.data)
    assert msg.get_all("From") == ["Someone <someone@example.org>"]
    assert msg.get_all("Message-ID") == ["<given.1@example.org>"]
    check_headers_added(msg)
    assert decoded_body(m.data) == b"plain ascii body\n.\nafter the dot\n"
    assert b"\r\n..\r\n" in m.raw


def test_crlf_input(sandbox):
    sb = sandbox
    sb.start_daemon()
    text = (b"To: bob@example.com\r\n"
            b"Subject: crlf test\r\n"
            b"\r\n"
            b"line one\r\n"
            b"line two\r\n"
            b"\r\n"
            b"last\r\n")
    sb.send_ok(["-t", "-i"], text)
    m = wait_delivered(sb, ["bob@example.com"])[0]
    wait_removed(sb, "bob@example.com")
    check_wire(m.raw)
    assert b"\r\r" not in m.data
    msg = parse_msg(m.data)
    assert msg["Subject"] == "crlf test"
    assert decoded_body(m.data) == b"line one\nline two\n\nlast\n"
    assert m.data.endswith(b"\r\n\r\nline one\r\nline two\r\n\r\nlast\r\n")


def test_dot_ends_input_without_i(sandbox):
    sb = sandbox
    sb.start_daemon()
    sb.send_ok(["bob@example.com"],
               b"Subject: dot\n\nline1\n.\nline2 must not be sent\n")
    m = wait_delivered(sb, ["bob@example.com"])[0]
    assert decoded_body(m.data) == b"line1\n"


def test_queued_while_down_envelope_options(sandbox):
    """Options that go into the queue file (-N -R -V), the file's format,
    and delivery of mail queued while posternd was not running."""
    sb = sandbox
    sb.make_spool()
    text = b"Subject: options\n\nhello\n"
    qid = sb.send_ok(["-i", "-f", "alice", "-N", "success,delay",
                      "-R", "hdrs", "-V", "envid123", "bob@example.com"],
                     text)
    assert qid and re.match(r"^[0-9A-F]+$", qid), sb.all_queued()
    assert sb.queue_files("incoming/tmp") == []
    with open(os.path.join(sb.spool, "incoming/new", qid), "rb") as f:
        data = f.read()
    env, sep, msg = data.partition(b"\nend-of-envelope\n")
    assert sep, data[:500]
    lines = env.decode().split("\n")
    assert lines[0] == "POSTERN-QUEUE 1"
    assert "sender alice@client.test.example" in lines
    assert "recipient bob@example.com" in lines
    low = [l.lower() for l in lines]
    assert "notify success,delay" in low
    assert "ret hdrs" in low
    assert "envid envid123" in lines
    assert "size %d" % len(msg) in lines
    assert msg.endswith(b"\n\nhello\n")
    sb.start_daemon()
    m = wait_delivered(sb, ["bob@example.com"])[0]
    wait_removed(sb, "bob@example.com")
    assert m.mail_from == "alice@client.test.example"


def test_config_dir_from_environment(sandbox):
    sb = sandbox
    sb.make_spool()
    cp = sb.send(["-i", "bob@example.com"], b"Subject: env\n\nx\n",
                 env={"POSTERN_CONFIG_DIR": sb.confdir}, config=False)
    assert cp.returncode == 0, cp.stderr
    assert len(sb.queue_files("incoming/new")) == 1
