"""Delivery at scale: a backlog goes out over few connections, exactly
once; smtp_destination_recipient_limit splits a message into several
transactions over one session; a 421 ends the session, defers what was
not answered, and the rest of the batch goes on over a new connection."""

import concurrent.futures
import re

from conftest import removed_re, status_re

FAST_RETRY = dict(minimal_backoff_time="2s", maximal_backoff_time="4s",
                  queue_run_delay="1s")


def message(n):
    return (b"Subject: scale %d\nMessage-ID: <scale-%d@client.test.example>"
            b"\n\nmessage %d\n" % (n, n, n))


def message_ids(smarthost):
    ids = []
    for m in smarthost.messages:
        found = re.search(rb"^Message-ID: <([^>]+)>", m.data, re.M | re.I)
        assert found, m.data[:200]
        ids.append(found.group(1).decode())
    return ids


def test_backlog_few_connections_exactly_once(sandbox, smarthost):
    """1,000 messages queued while the relay is down: after the relay is
    back and a flush, every one arrives once, over a handful of
    connections (not one per message, nor one per small batch)."""
    sb = sandbox
    sb.write_config(smtp_destination_concurrency_limit="3")
    smarthost.stop()
    sb.start_daemon()
    total = 1000
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for cp in pool.map(lambda n: sb.send(["-i", "rcpt%d@example.com" %
                                              (n % 7)], message(n)),
                           range(total)):
            assert cp.returncode == 0, cp.stderr
    sb.wait(lambda: len(sb.queue_files("deferred")) == total,
            timeout=120, what="all deferred")
    smarthost.start()
    assert sb.postern(["flush"]).returncode == 0
    smarthost.wait_messages(total, timeout=180)
    sb.wait(lambda: not sb.all_queued(), timeout=60, what="empty queue")
    ids = message_ids(smarthost)
    assert sorted(ids) == sorted("scale-%d@client.test.example" % n
                                 for n in range(total))
    assert len(set(ids)) == total
    # Far fewer connections than messages: at most twice the limit.
    assert smarthost.connections <= 6, smarthost.connections
    assert sb.stop_daemon() == 0


def test_recipient_limit_splits_transactions(sandbox, smarthost):
    sb = sandbox
    sb.write_config(smtp_destination_recipient_limit="3")
    sb.make_spool()
    rcpts = ["r%d@example.com" % i for i in range(7)]
    qid = sb.send_ok(["-i"] + rcpts, b"Subject: seven\n\nto seven\n")
    sb.start_daemon()
    sb.wait_log(removed_re(qid))
    msgs = smarthost.messages
    assert [len(m.rcpt_tos) for m in msgs] == [3, 3, 1], msgs
    assert sorted(r for m in msgs for r in m.rcpt_tos) == sorted(rcpts)
    # One session carried all three transactions.
    assert len({m.conn for m in msgs}) == 1
    assert smarthost.connections == 1
    for r in rcpts:
        assert len(sb.log_lines(status_re(r, "sent"))) == 1


def test_421_to_rcpt_defers_rest_new_connection(sandbox, smarthost):
    """421 in reply to a RCPT: the server closes; the recipients of that
    message are deferred (also one already accepted: no DATA followed),
    the next message of the batch goes over a new connection, and the
    retry delivers the deferred ones once."""
    sb = sandbox
    sb.write_config(**FAST_RETRY)
    smarthost.rcpt_replies["c@example.net"] = \
        "421 4.3.2 service shutting down, closing transmission channel"
    sb.make_spool()
    q1 = sb.send_ok(["-i", "a@example.com"], message(1))
    q2 = sb.send_ok(["-i", "b@example.com", "c@example.net"], message(2))
    q3 = sb.send_ok(["-i", "d@example.com"], message(3))
    sb.start_daemon()
    line = sb.wait_log(status_re("c@example.net", "deferred"))[0]
    assert "421 4.3.2" in line, line
    line = sb.wait_log(status_re("b@example.com", "deferred"))[0]
    assert "421 4.3.2" in line, line
    sb.wait_log(removed_re(q1))
    sb.wait_log(removed_re(q3))
    conn_a = smarthost.delivered_to("a@example.com")[0].conn
    conn_d = smarthost.delivered_to("d@example.com")[0].conn
    # One connection of the batch ended at the 421: a new one took d@.
    assert conn_d != conn_a
    smarthost.rcpt_replies.clear()
    sb.wait_log(removed_re(q2))
    for r in ("a@example.com", "b@example.com", "c@example.net",
              "d@example.com"):
        assert len(smarthost.delivered_to(r)) == 1, (r, smarthost.messages)
    assert len(smarthost.messages) == 3
    # The client sent nothing after the 421 on that connection.
    for serial, wire in smarthost.transcripts:
        if b"RCPT TO:<c@example.net>" in wire and serial != \
                smarthost.delivered_to("c@example.net")[0].conn:
            tail = wire.split(b"RCPT TO:<c@example.net>\r\n", 1)[1]
            assert b"QUIT" not in tail and b"MAIL" not in tail, wire


def test_421_after_data_defers_message(sandbox, smarthost):
    """421 in reply to the final dot: the message was refused (a reply,
    not a lost connection): it is deferred, the batch goes on over a new
    connection, and the retry delivers it once."""
    sb = sandbox
    sb.write_config(**FAST_RETRY)
    smarthost.data_reply = "421 4.4.2 closing transmission channel"
    smarthost.data_reply_times = 1
    sb.make_spool()
    q1 = sb.send_ok(["-i", "a@example.com", "b@example.com"], message(1))
    q2 = sb.send_ok(["-i", "c@example.com"], message(2))
    sb.start_daemon()
    for r in ("a@example.com", "b@example.com"):
        line = sb.wait_log(status_re(r, "deferred"))[0]
        assert "421 4.4.2" in line and "possible duplicate" not in line, line
    sb.wait_log(removed_re(q2))
    sb.wait_log(removed_re(q1))
    # The next message did not try the closed connection.
    assert not sb.log_lines(status_re("c@example.com", "deferred"))
    assert len(smarthost.attempts) == 3, smarthost.attempts
    assert smarthost.attempts[0]["outcome"].startswith("421")
    assert smarthost.attempts[1]["conn"] != smarthost.attempts[0]["conn"]
    ids = message_ids(smarthost)
    assert sorted(ids) == ["scale-1@client.test.example",
                           "scale-2@client.test.example"]
