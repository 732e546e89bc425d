"""The relay says no, or is not there: deferral, the queue listing, flush,
retries after minimal_backoff_time, and 5xx returned to the sender."""

import re
import time

import pytest

from conftest import EX_UNAVAILABLE, removed_re, status_re

FAST_RETRY = dict(minimal_backoff_time="2s", maximal_backoff_time="4s",
                  queue_run_delay="1s")


def qid_of(sb, addr, status):
    line = sb.wait_log(status_re(addr, status))[0]
    return re.search(status_re(addr, status), line).group(1)


def test_relay_down_then_flush(sandbox, smarthost):
    sb = sandbox
    smarthost.stop()
    sb.start_daemon()
    sb.send_ok(["-i", "-f", "alice", "bob@example.com"],
               b"Subject: relay down\n\nwaiting\n")
    qid = qid_of(sb, "bob@example.com", "deferred")
    sb.wait(lambda: sb.find_qid(qid) == ["deferred"], what="deferred/")
    q = sb.postern(["queue"])
    out = q.stdout.decode()
    assert q.returncode == 0, q.stderr
    assert qid in out and "bob@example.com" in out, out
    assert "alice@client.test.example" in out, out
    reasons = re.findall(r"\(([^()]*(?:\([^()]*\)[^()]*)*)\)", out)
    assert any("refused" in r.lower() for r in reasons), out
    assert "Mail queue is empty" not in out

    smarthost.start()
    # Backoff is 1h: nothing is retried until the flush.
    sb.settle()
    assert smarthost.messages == [] and sb.find_qid(qid) == ["deferred"]
    f = sb.postern(["flush"])
    assert f.returncode == 0, f.stderr
    sb.wait(lambda: smarthost.messages, what="delivery")
    sb.wait_log(removed_re(qid))
    sb.wait_log(status_re("bob@example.com", "sent", smarthost.port))
    # Delivered exactly once, even after another flush.
    assert sb.postern(["flush"]).returncode == 0
    sb.settle()
    assert len(smarthost.messages) == 1, smarthost.messages
    assert smarthost.messages[0].rcpt_tos == ["bob@example.com"]
    assert sb.find_qid(qid) == []
    q = sb.postern(["queue"])
    assert "Mail queue is empty" in q.stdout.decode()
    assert sb.stop_daemon() == 0


def test_tls_default_keeps_mail_queued(sandbox, smarthost):
    """Until TLS exists, the default smtp_tls_security_level = verify must
    defer with 4.7.5 and send nothing: not even MAIL FROM."""
    sb = sandbox
    sb.write_main_cf("".join("%s = %s\n" % kv for kv in
                             sb.base_params().items()
                             if kv[0] != "smtp_tls_security_level"))
    sb.start_daemon()
    sb.send_ok(["-i", "bob@example.com"], b"Subject: secret\n\nnot in clear\n")
    line = sb.wait_log(status_re("bob@example.com", "deferred"))[0]
    assert "dsn=4.7.5" in line, line
    qid = re.search(status_re("bob@example.com", "deferred"), line).group(1)
    sb.wait(lambda: sb.find_qid(qid) == ["deferred"], what="deferred/")
    sb.stop_daemon()
    smarthost.stop()
    assert smarthost.messages == [] and smarthost.attempts == []
    # It did talk to the relay (EHLO), and we hold every byte it sent.
    assert smarthost.connections >= 1
    sb.wait(lambda: len(smarthost.transcripts) == smarthost.connections,
            what="the transcripts")
    assert any(b"EHLO" in w for _, w in smarthost.transcripts)
    for serial, wire in smarthost.transcripts:
        assert b"MAIL FROM" not in wire.upper(), wire
        assert b"not in clear" not in wire, wire


@pytest.mark.parametrize("reply", ["451 4.3.0 try again later",
                                   "452 4.2.2 mailbox full, try later"])
def test_rcpt_4xx_retried_after_backoff(sandbox, smarthost, reply):
    """One recipient refused for now: it alone is retried after the
    backoff and delivered; the other is never sent twice."""
    sb = sandbox
    sb.write_config(**FAST_RETRY)
    smarthost.rcpt_replies["slow@example.net"] = reply
    sb.start_daemon()
    sb.send_ok(["-i", "ok@example.com", "slow@example.net"],
               b"Subject: 4xx\n\nretry me\n")
    qid = qid_of(sb, "slow@example.net", "deferred")
    line = sb.log_lines(status_re("slow@example.net", "deferred"))[0]
    assert reply in line, line
    sb.wait(lambda: smarthost.delivered_to("ok@example.com"))
    first = smarthost.attempts[0]["time"]
    smarthost.rcpt_replies.clear()
    sb.wait(lambda: smarthost.delivered_to("slow@example.net"),
            what="the retry")
    sb.wait_log(removed_re(qid))
    retry = smarthost.delivered_to("slow@example.net")[0].time
    assert retry - first >= 1.0, "retried %.2fs after the first attempt" % (
        retry - first)
    time.sleep(3)
    assert len(smarthost.delivered_to("ok@example.com")) == 1
    assert len(smarthost.delivered_to("slow@example.net")) == 1
    assert smarthost.delivered_to("slow@example.net")[0].rcpt_tos == \
        ["slow@example.net"]


def test_data_4xx_deferred_then_delivered(sandbox, smarthost):
    sb = sandbox
    sb.write_config(**FAST_RETRY)
    smarthost.data_reply = "452 4.3.1 insufficient system storage"
    sb.start_daemon()
    sb.send_ok(["-i", "a@example.com", "b@example.com"],
               b"Subject: data 4xx\n\nlater\n")
    qid = qid_of(sb, "a@example.com", "deferred")
    lines = sb.wait_log(status_re("b@example.com", "deferred"))
    assert "452 4.3.1" in lines[0], lines
    smarthost.data_reply = None
    sb.wait(lambda: smarthost.messages, what="delivery")
    sb.wait_log(removed_re(qid))
    time.sleep(2)
    assert len(smarthost.messages) == 1, smarthost.messages
    assert sorted(smarthost.messages[0].rcpt_tos) == \
        ["a@example.com", "b@example.com"]


def test_rcpt_5xx_bounced_and_returned(sandbox, smarthost):
    sb = sandbox
    sb.write_config(**FAST_RETRY)
    smarthost.rcpt_replies["bad@example.net"] = "550 5.1.1 no such user"
    sb.start_daemon()
    sb.send_ok(["-i", "good@example.com", "bad@example.net"],
               b"Subject: 5xx\n\nhalf of it\n")
    qid = qid_of(sb, "bad@example.net", "bounced")
    line = sb.log_lines(status_re("bad@example.net", "bounced"))[0]
    assert "dsn=5.1.1" in line and "550 5.1.1 no such user" in line, line
    sb.wait(lambda: smarthost.delivered_to("good@example.com"))
    # Returned to the sender (test_bounce.py looks at the notice), then
    # removed; the good recipient is never sent again.
    sb.wait_log(removed_re(qid))
    sb.wait(lambda: smarthost.delivered_to("root@client.test.example"),
            what="the bounce")
    time.sleep(3)
    assert [m.rcpt_tos for m in smarthost.messages] == [
        ["good@example.com"], ["root@client.test.example"]]
    assert smarthost.messages[1].mail_from == ""
    assert sb.find_qid(qid) == []
    assert qid not in sb.queue_files("state")
    assert len(sb.log_lines(status_re("bad@example.net", "bounced"))) == 1


def test_flush_without_daemon(sandbox):
    sb = sandbox
    sb.make_spool()
    f = sb.postern(["flush"])
    assert f.returncode == EX_UNAVAILABLE, (f.returncode, f.stderr)
    err = f.stderr.decode()
    assert len(err.splitlines()) == 1 and err.startswith("postern: "), err
