"""posternd killed (SIGKILL, workers too) while the relay is receiving
DATA: after a restart the message is delivered; at most a duplicate."""

import signal

from conftest import TIMEOUT, removed_re, status_re


def test_sigkill_during_data(sandbox, smarthost):
    sb = sandbox
    smarthost.hold_data = True          # no answer to the final dot
    sb.start_daemon()
    sb.send_ok(["-i", "-f", "alice", "bob@example.com"],
               b"Subject: crash\n\nsurvive a crash\n")
    sb.wait(lambda: smarthost.held == 1, what="the final dot held")
    first_conn = smarthost.attempts[0]["conn"]
    # The message is being delivered: it is in active/.
    assert len(sb.queue_files("active")) == 1, sb.all_queued()
    qid = sb.queue_files("active")[0]
    sb.kill_daemon(signal.SIGKILL)
    assert smarthost.wait(lambda s: s.attempts[0]["outcome"] == "lost",
                          TIMEOUT), smarthost.attempts
    assert smarthost.messages == []
    assert qid in sb.queue_files("active"), sb.all_queued()

    smarthost.release()
    sb.start_daemon()
    sb.wait(lambda: smarthost.messages, what="delivery after restart")
    sb.wait_log(removed_re(qid))
    sb.wait_log(status_re("bob@example.com", "sent", smarthost.port))
    n = len(smarthost.delivered_to("bob@example.com"))
    assert 1 <= n <= 2, smarthost.messages
    m = smarthost.messages[-1]
    assert m.conn > first_conn
    assert m.mail_from == "alice@client.test.example"
    assert m.data.endswith(b"\r\n\r\nsurvive a crash\r\n")
    assert sb.find_qid(qid) == []
    assert qid not in sb.queue_files("state")
