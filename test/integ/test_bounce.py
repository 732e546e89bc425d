"""Notices to the sender: bounces (RFC 3464 multipart/report from <>),
lifetime expiry, bounces that cannot be delivered, -N and -R, delay
warnings, soft_bounce, and DSN parameters passed to the relay (RFC 3461).
"""

import os
import re
import time

import pytest

from conftest import parse_msg, removed_re, status_re

FAST = dict(minimal_backoff_time="1s", maximal_backoff_time="2s",
            queue_run_delay="1s")
SENDER = "alice@example.org"


def notices(sh):
    """Messages from the null sender that reached the smarthost."""
    return [m for m in sh.messages if m.mail_from == ""]


def originals(sh):
    return [m for m in sh.messages if m.mail_from != ""]


def flat(v):
    """A header-like value unfolded."""
    return " ".join(str(v).split())


def report(data):
    """(message, text part, per-message block, [per-recipient blocks],
    returned part) of a delivery status notification, checked to be an
    RFC 3464 multipart/report."""
    msg = parse_msg(data)
    assert msg.get_content_type() == "multipart/report", msg
    assert msg.get_param("report-type") == "delivery-status", msg
    parts = msg.get_payload()
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    text, status, orig = parts
    assert text.get_content_type() == "text/plain"
    assert status.get_content_type() == "message/delivery-status"
    blocks = status.get_payload()
    return msg, text, blocks[0], blocks[1:], orig


def wait_notices(sb, sh, n=1):
    sb.wait(lambda: len(notices(sh)) >= n, what="%d notice(s) from <>" % n)
    return notices(sh)


def test_one_of_three_refused_bounced(sandbox, smarthost):
    sb = sandbox
    sb.write_config(**FAST)
    smarthost.rcpt_replies["bad@example.net"] = "550 5.1.1 no such user"
    sb.start_daemon()
    sb.send_ok(["-i", "-f", SENDER, "a@example.com", "bad@example.net",
                "b@example.com"],
               b"Subject: three\nFrom: Alice <alice@example.org>\n\nbody\n")
    qid = re.search(status_re("bad@example.net", "bounced"),
                    sb.wait_log(status_re("bad@example.net",
                                          "bounced"))[0]).group(1)
    bounce = wait_notices(sb, smarthost)[0]
    assert bounce.rcpt_tos == [SENDER]
    msg, text, per_msg, per_rcpt, orig = report(bounce.data)
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert "MAILER-DAEMON@client.test.example" in msg["From"]
    assert msg["To"] == SENDER
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Message-ID"] and msg["Date"] and msg["MIME-Version"]
    body = text.get_payload()
    assert "client.test.example" in body
    assert "<bad@example.net>" in body and "no such user" in flat(body)
    assert "a@example.com" not in body
    assert flat(per_msg["Reporting-MTA"]) == "dns; client.test.example"
    assert per_msg["Arrival-Date"]
    assert len(per_rcpt) == 1
    r = per_rcpt[0]
    assert flat(r["Final-Recipient"]) == "rfc822; bad@example.net"
    assert r["Action"] == "failed"
    assert r["Status"] == "5.1.1"
    assert flat(r["Remote-MTA"]) == "dns; 127.0.0.1"
    assert flat(r["Diagnostic-Code"]) == "smtp; 550 5.1.1 no such user"
    # -R not given: the whole message comes back (Postfix's default).
    assert orig.get_content_type() == "message/rfc822"
    returned = orig.get_payload()[0]
    assert returned["Subject"] == "three"
    assert returned.get_payload() == "body\n"

    # The other two delivered once; the original is gone.
    sb.wait_log(removed_re(qid))
    sb.wait_log(r"postern/bounce\[\d+\]: %s: sender non-delivery "
                r"notification: [0-9A-F]+$" % qid)
    bqid = re.search(r"notification: ([0-9A-F]+)$", sb.log_lines(
        r"sender non-delivery notification")[0]).group(1)
    sb.wait_log(r"%s: from=<>, size=\d+, nrcpt=1" % bqid)
    sb.wait_log(removed_re(bqid))
    sb.settle()
    assert len(originals(smarthost)) == 1, smarthost.messages
    assert originals(smarthost)[0].rcpt_tos == ["a@example.com",
                                                "b@example.com"]
    assert len(notices(smarthost)) == 1
    assert sb.all_queued() == {}, sb.all_queued()
    assert sb.queue_files("state") == []


def test_lifetime_exceeded_bounced(sandbox, smarthost):
    sb = sandbox
    sb.write_config(maximal_queue_lifetime="3s", **FAST)
    smarthost.stop()
    sb.start_daemon()
    sb.send_ok(["-i", "-f", SENDER, "bob@example.com"],
               b"Subject: too old\n\nnever\n")
    line = sb.wait_log(status_re("bob@example.com", "bounced"))[0]
    qid = re.search(status_re("bob@example.com", "bounced"), line).group(1)
    assert "dsn=4.4.1" in line, line
    sb.wait_log(removed_re(qid))
    assert sb.find_qid(qid) == []
    smarthost.start()
    bounce = wait_notices(sb, smarthost)[0]
    assert bounce.rcpt_tos == [SENDER]
    _, _, _, per_rcpt, _ = report(bounce.data)
    assert per_rcpt[0]["Action"] == "failed"
    assert per_rcpt[0]["Status"] == "4.4.1"
    assert "refused" in flat(per_rcpt[0]["Diagnostic-Code"]).lower()
    sb.settle()
    assert originals(smarthost) == [], smarthost.messages


def held_notice(sb):
    """Wait for the undeliverable notice to be placed on hold: its queue
    ID; it is in hold/, `postern queue` lists it as held, and the log line
    says how long it is kept and how to release or delete it."""
    line = sb.wait_log(r"postern/qmgr\[\d+\]: warning: [0-9A-F]+: "
                       r"undeliverable notice placed on hold")[0]
    qid = re.search(r"warning: ([0-9A-F]+):", line).group(1)
    assert "maximal_queue_lifetime" in line, line
    assert "postern release %s" % qid in line, line
    assert "postern delete %s" % qid in line, line
    sb.wait(lambda: sb.all_queued() == {"hold": [qid]},
            what="only the notice, in hold/")
    cp = sb.postern(["queue"])
    out = cp.stdout.decode()
    assert cp.returncode == 0, out
    assert re.search(r"(?m)^%s!" % qid, out), out
    assert "MAILER-DAEMON" in out or "<>" in out, out
    assert sb.log_lines("postmaster notification discarded") == []
    return qid


def bounce_to_refused_sender(sb, smarthost, sender_reply, **params):
    """posternd with FAST and params; one message to a refused recipient
    from SENDER, whose own address gets sender_reply at the relay."""
    sb.write_config(**dict(FAST, **params))
    smarthost.rcpt_replies["bad@example.net"] = "550 5.1.1 no such user"
    smarthost.rcpt_replies[SENDER] = sender_reply
    sb.start_daemon()
    sb.send_ok(["-i", "-f", SENDER, "bad@example.net"], b"Subject: x\n\ny\n")


def test_undeliverable_bounce_held(sandbox, smarthost):
    """The sender's own address is refused: the bounce is never returned
    itself, and never discarded either: it goes to hold/."""
    sb = sandbox
    bounce_to_refused_sender(sb, smarthost, "550 5.1.1 sender unknown here")
    qid = held_notice(sb)
    sb.settle()
    assert len(sb.log_lines("sender non-delivery notification:")) == 1
    assert len(sb.log_lines(status_re(SENDER, "bounced"))) == 1
    assert smarthost.messages == []
    # Once the relay takes it, postern release delivers it.
    del smarthost.rcpt_replies[SENDER]
    cp = sb.postern(["release", qid])
    assert cp.returncode == 0, cp.stderr
    bounce = smarthost.wait_messages(1)[0]
    assert bounce.rcpt_tos == [SENDER]
    sb.wait(lambda: sb.all_queued() == {}, what="an empty queue")


def test_held_notice_expires(sandbox, smarthost):
    """A notice in hold/ is kept until maximal_queue_lifetime after its
    arrival, then removed with a log line (the periodic rescan)."""
    sb = sandbox
    bounce_to_refused_sender(sb, smarthost, "550 5.1.1 sender unknown here",
                             maximal_queue_lifetime="4s")
    qid = held_notice(sb)
    sb.wait_log(r"%s: removed: undeliverable notice held for "
                r"maximal_queue_lifetime" % qid)
    sb.wait(lambda: sb.all_queued() == {}, what="an empty queue")


def test_notice_held_after_its_lifetime_keeps_a_full_lifetime(sandbox,
                                                              smarthost):
    """A notice held because it outlived bounce_queue_lifetime is old
    already: its time in hold/ counts from the hold, not from its arrival
    (else the next rescan would remove it at once)."""
    sb = sandbox
    bounce_to_refused_sender(sb, smarthost, "450 4.2.0 mailbox busy",
                             bounce_queue_lifetime="2s",
                             maximal_queue_lifetime="5s")
    qid = held_notice(sb)
    held_at = time.time()
    # Past arrival + maximal_queue_lifetime (arrival <= held_at - 2 s),
    # with rescans every second (queue_run_delay): still held.
    time.sleep(3.5)
    assert sb.find_qid(qid) == ["hold"], sb.log_text()[-3000:]
    sb.wait_log(r"%s: removed: undeliverable notice held for "
                r"maximal_queue_lifetime" % qid)
    print("held notice removed %.1f s after the hold (lifetime 5 s)" %
          (time.time() - held_at))
    assert time.time() - held_at >= 4.5


def test_mail_from_null_sender_held_by_the_administrator_stays(sandbox,
                                                               smarthost):
    """Only notices posternd placed on hold expire: a <> message the
    administrator holds stays however old it is."""
    sb = sandbox
    sb.write_config(**dict(FAST, maximal_queue_lifetime="1s"))
    smarthost.rcpt_replies["bob@example.com"] = "450 4.2.0 busy"
    sb.make_spool()
    qid = sb.send_ok(["-i", "-f", "<>", "bob@example.com"],
                     b"Subject: x\n\ny\n")
    assert sb.postern(["hold", qid]).returncode == 0
    sb.start_daemon()
    time.sleep(3)
    sb.settle()
    assert sb.find_qid(qid) == ["hold"]
    assert sb.log_lines("%s: removed" % qid) == []


def test_deferred_bounce_held_after_bounce_queue_lifetime(sandbox,
                                                          smarthost):
    sb = sandbox
    bounce_to_refused_sender(sb, smarthost, "450 4.2.0 mailbox busy",
                             bounce_queue_lifetime="3s")
    sb.wait_log(status_re(SENDER, "deferred"), count=2)
    line = sb.wait_log(status_re(SENDER, "bounced"))[0]
    assert "dsn=4.2.0" in line, line
    held_notice(sb)
    sb.settle()
    assert len(sb.log_lines("sender non-delivery notification:")) == 1
    assert smarthost.messages == []


@pytest.mark.parametrize("notify", ["never", "delay,success"])
def test_notify_without_failure_no_bounce(sandbox, smarthost, notify):
    sb = sandbox
    sb.write_config(**FAST)
    smarthost.rcpt_replies["bad@example.net"] = "550 5.1.1 no such user"
    sb.start_daemon()
    sb.send_ok(["-i", "-N", notify, "-f", SENDER, "bad@example.net"],
               b"Subject: x\n\ny\n")
    line = sb.wait_log(status_re("bad@example.net", "bounced"))[0]
    qid = re.search(status_re("bad@example.net", "bounced"), line).group(1)
    sb.wait_log(removed_re(qid))
    sb.wait_log(r"%s: sender non-delivery notification not sent: the "
                r"sender asked for NOTIFY=%s" % (qid, notify.upper()))
    sb.settle()
    assert smarthost.messages == []
    assert sb.all_queued() == {}


def test_ret_hdrs_and_size_limit_return_headers(sandbox, smarthost):
    sb = sandbox
    sb.write_config(bounce_size_limit="2000", **FAST)
    smarthost.rcpt_replies["bad@example.net"] = "550 5.1.1 no such user"
    sb.start_daemon()
    sb.send_ok(["-i", "-R", "hdrs", "-f", SENDER, "bad@example.net"],
               b"Subject: headers only\n\nsecret body\n")
    sb.send_ok(["-i", "-f", SENDER, "bad@example.net"],
               b"Subject: too big\n\n" + b"x" * 70 + b"\n" * 1 +
               (b"y" * 70 + b"\n") * 60)
    bounces = wait_notices(sb, smarthost, 2)
    by_subject = {}
    for b in bounces:
        _, _, _, _, orig = report(b.data)
        assert orig.get_content_type() == "text/rfc822-headers"
        text = orig.get_payload()
        assert "secret body" not in text and "yyyy" not in text
        subj = re.search(r"^Subject: (.*)$", text, re.M).group(1)
        by_subject[subj] = text
    assert sorted(by_subject) == ["headers only", "too big"]


def test_delay_warning_once(sandbox, smarthost):
    sb = sandbox
    sb.write_config(delay_warning_time="2s", **FAST)
    smarthost.rcpt_replies["slow@example.net"] = "450 4.2.1 try later"
    sb.start_daemon()
    sb.send_ok(["-i", "-f", SENDER, "slow@example.net"],
               b"Subject: slow\n\nwait\n")
    warning = wait_notices(sb, smarthost)[0]
    assert warning.rcpt_tos == [SENDER]
    msg, _, _, per_rcpt, orig = report(warning.data)
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    assert per_rcpt[0]["Action"] == "delayed"
    assert per_rcpt[0]["Status"] == "4.2.1"
    assert per_rcpt[0]["Will-Retry-Until"]
    assert orig.get_content_type() == "text/rfc822-headers"
    qid = re.search(r"([0-9A-F]+): sender delay notification", sb.wait_log(
        r"sender delay notification: ")[0]).group(1)
    with open(os.path.join(sb.spool, "state", qid)) as f:
        assert re.search(r"^warned 1$", f.read(), re.M)
    n = len(sb.log_lines(status_re("slow@example.net", "deferred")))
    sb.wait_log(status_re("slow@example.net", "deferred"), count=n + 2)
    assert sb.stop_daemon() == 0
    sb.start_daemon()
    sb.wait_log(status_re("slow@example.net", "deferred"), count=n + 4)
    sb.settle()
    assert len(notices(smarthost)) == 1, smarthost.messages
    assert len(sb.log_lines("sender delay notification")) == 1


def test_soft_bounce_defers(sandbox, smarthost):
    sb = sandbox
    sb.write_config(soft_bounce="yes", **FAST)
    smarthost.rcpt_replies["bad@example.net"] = "550 5.1.1 no such user"
    sb.start_daemon()
    sb.send_ok(["-i", "-f", SENDER, "bad@example.net"], b"Subject: x\n\ny\n")
    lines = sb.wait_log(status_re("bad@example.net", "deferred"), count=2)
    qid = re.search(status_re("bad@example.net", "deferred"),
                    lines[0]).group(1)
    assert "550 5.1.1 no such user" in lines[0]
    assert sb.find_qid(qid) in (["deferred"], ["active"])
    assert not sb.log_lines("status=bounced")
    assert not sb.log_lines("notification")
    assert smarthost.messages == []


def test_dsn_parameters_passed_to_relay(sandbox, smarthost):
    sb = sandbox
    smarthost.dsn = True
    sb.start_daemon()
    sb.send_ok(["-i", "-N", "success,failure", "-R", "hdrs", "-V",
                "id-1.x", "-f", SENDER, "bob@example.com", "carol+tag"],
               b"Subject: dsn\n\nhi\n")
    sb.wait(lambda: smarthost.messages, what="delivery")
    sb.settle()
    assert len(smarthost.messages) == 1, smarthost.messages
    m = smarthost.messages[0]
    assert m.mail_dsn == {"RET": "HDRS", "ENVID": "id-1.x"}, m.mail_dsn
    assert m.rcpt_tos == ["bob@example.com", "carol+tag@client.test.example"]
    # ORCPT: the address as submitted, xtext-encoded ("+" is "+2B").
    assert m.rcpt_dsn == [
        {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;bob@example.com"},
        {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;carol+2Btag"}], \
        m.rcpt_dsn
    # The relay reports deliveries itself: no notice from here.
    assert not sb.log_lines("notification")


def test_dsn_not_offered_never_sent_relayed_notice(sandbox, smarthost):
    sb = sandbox
    sb.start_daemon()
    sb.send_ok(["-i", "-N", "success", "-V", "abc", "-f", SENDER,
                "bob@example.com"], b"Subject: relayed\n\nhi\n")
    notice = wait_notices(sb, smarthost)[0]
    orig = originals(smarthost)
    assert len(orig) == 1
    assert orig[0].mail_options == [] or all(
        not o.startswith(("RET", "ENVID")) for o in orig[0].mail_options)
    assert orig[0].rcpt_options == []
    for t in smarthost.transcripts:
        assert b"NOTIFY=" not in t[1] and b"ENVID=" not in t[1]
    msg, _, per_msg, per_rcpt, part3 = report(notice.data)
    assert msg["Subject"] == "Successful Mail Delivery Report"
    assert per_msg["Original-Envelope-Id"] == "abc"
    assert per_rcpt[0]["Action"] == "relayed"
    assert per_rcpt[0]["Status"].startswith("2.")
    assert part3.get_content_type() == "text/rfc822-headers"
    sb.wait_log(r"sender delivery status notification: ")


def test_no_notify_success_no_relayed_notice(sandbox, smarthost):
    sb = sandbox
    sb.start_daemon()
    sb.send_ok(["-i", "-f", SENDER, "bob@example.com"], b"Subject: x\n\ny\n")
    qid = re.search(status_re("bob@example.com", "sent"), sb.wait_log(
        status_re("bob@example.com", "sent"))[0]).group(1)
    sb.wait_log(removed_re(qid))
    sb.settle()
    assert notices(smarthost) == []


def test_failed_reported_once_across_restart(sandbox, smarthost):
    """A recipient that fails while another is still being retried is
    returned once, when the message is done, even after a restart."""
    sb = sandbox
    sb.write_config(**FAST)
    smarthost.rcpt_replies["bad@example.net"] = "550 5.1.1 no such user"
    smarthost.rcpt_replies["slow@example.net"] = "450 4.2.1 try later"
    sb.start_daemon()
    sb.send_ok(["-i", "-f", SENDER, "bad@example.net", "slow@example.net"],
               b"Subject: x\n\ny\n")
    sb.wait_log(status_re("bad@example.net", "bounced"))
    sb.wait_log(status_re("slow@example.net", "deferred"), count=2)
    assert notices(smarthost) == []
    assert sb.stop_daemon() == 0
    del smarthost.rcpt_replies["slow@example.net"]
    sb.start_daemon()
    sb.wait(lambda: smarthost.delivered_to("slow@example.net"),
            what="the retried recipient")
    bounce = wait_notices(sb, smarthost)[0]
    _, _, _, per_rcpt, _ = report(bounce.data)
    assert [flat(r["Final-Recipient"]) for r in per_rcpt] == [
        "rfc822; bad@example.net"]
    sb.wait(lambda: sb.all_queued() == {}, what="an empty queue")
    sb.settle()
    assert len(notices(smarthost)) == 1, smarthost.messages
    assert len(sb.log_lines(status_re("bad@example.net", "bounced"))) == 1


def test_recovery_returns_message_with_nothing_left(sandbox, smarthost):
    """A crash after the last recipient failed but before the message
    was returned and removed (or a queue from before bounces existed):
    at start-up it is returned and removed."""
    sb = sandbox
    sb.make_spool()
    qid = sb.send_ok(["-i", "-f", SENDER, "bad@example.net"],
                     b"Subject: left\n\ny\n")
    os.rename(os.path.join(sb.spool, "incoming/new", qid),
              os.path.join(sb.spool, "deferred", qid))
    with open(os.path.join(sb.spool, "state", qid), "w") as f:
        f.write("POSTERN-STATE 1\nattempts 1\nlast %.6f\nrcpt 0 failed "
                "5.1.1 host mx[192.0.2.1] said: 550 5.1.1 gone (in reply "
                "to RCPT TO command)\nend-of-state\n" % time.time())
    sb.start_daemon()
    bounce = wait_notices(sb, smarthost)[0]
    _, _, _, per_rcpt, _ = report(bounce.data)
    assert flat(per_rcpt[0]["Diagnostic-Code"]) == "smtp; 550 5.1.1 gone"
    assert flat(per_rcpt[0]["Remote-MTA"]) == "dns; mx"
    sb.wait_log(removed_re(qid))
    assert originals(smarthost) == []
    assert sb.find_qid(qid) == []


def test_8bit_original_returned_as_8bitmime(sandbox, smarthost):
    sb = sandbox
    sb.write_config(**FAST)
    smarthost.rcpt_replies["bad@example.net"] = "550 5.1.1 no such user"
    sb.start_daemon()
    body = "Grüße aus Köln\n".encode("utf-8")
    sb.send_ok(["-i", "-f", SENDER, "bad@example.net"],
               b"Subject: 8bit\nContent-Type: text/plain; charset=utf-8\n"
               b"Content-Transfer-Encoding: 8bit\n\n" + body)
    bounce = wait_notices(sb, smarthost)[0]
    assert "BODY=8BITMIME" in bounce.mail_options, bounce.mail_options
    msg, _, _, _, orig = report(bounce.data)
    assert msg["Content-Transfer-Encoding"] == "8bit"
    assert orig["Content-Transfer-Encoding"] == "8bit"
    assert body.replace(b"\n", b"\r\n") in bounce.data


def test_message_kept_until_bounce_can_be_queued(sandbox, smarthost):
    """No place to write the bounce: the original stays in deferred/ and
    the bounce is tried again; nothing is lost."""
    sb = sandbox
    sb.write_config(**FAST)
    smarthost.stop()
    sb.start_daemon()
    sb.send_ok(["-i", "-f", SENDER, "bad@example.net"], b"Subject: x\n\ny\n")
    qid_line = sb.wait_log(status_re("bad@example.net", "deferred"))[0]
    qid = re.search(status_re("bad@example.net", "deferred"),
                    qid_line).group(1)
    tmp = os.path.join(sb.spool, "incoming", "tmp")
    os.rename(tmp, tmp + ".away")
    with open(tmp, "w") as f:       # not a directory: every create fails
        f.write("in the way\n")
    try:
        smarthost.rcpt_replies["bad@example.net"] = "550 5.1.1 no such user"
        smarthost.start()
        sb.wait_log(r"%s: cannot queue a sender non-delivery notification"
                    % qid)
        sb.wait_log(r"%s: kept in the deferred queue until the notice to "
                    r"the sender can be queued" % qid)
        assert os.path.exists(os.path.join(sb.spool, "deferred", qid))
        assert notices(smarthost) == []
    finally:
        os.unlink(tmp)
        os.rename(tmp + ".away", tmp)
    bounce = wait_notices(sb, smarthost)[0]
    assert bounce.rcpt_tos == [SENDER]
    sb.wait_log(removed_re(qid))
    assert len(sb.log_lines(status_re("bad@example.net", "bounced"))) == 1
