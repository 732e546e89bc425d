"""posternd and its signals: SIGHUP re-reads main.cf and the tables with
the queue kept; SIGTERM lets a transaction under way finish, within a
bound, and the daemon exits with nothing lost or sent twice."""

import os
import re
import signal

from conftest import removed_re, status_re


def test_hup_switches_relayhost_without_losing_mail(sandbox,
                                                    smarthost_factory):
    sb = sandbox
    second = smarthost_factory()
    sb.smarthost.stop()
    sb.start_daemon()
    for tag in ("a", "b"):
        sb.send_ok(["-i", "%s@example.com" % tag],
                   ("Subject: hup %s\n\nx\n" % tag).encode())
    sb.wait_log(status_re("a@example.com", "deferred"))
    sb.wait_log(status_re("b@example.com", "deferred"))
    sb.write_config(relayhost="[127.0.0.1]:%d" % second.port)
    sb.daemon.send_signal(signal.SIGHUP)
    sb.wait_log(r"reload configuration ")
    f = sb.postern(["flush"])
    assert f.returncode == 0, f.stderr
    sb.wait(lambda: len(second.messages) == 2, what="both at the new relay")
    for tag in ("a", "b"):
        sb.wait_log(status_re("%s@example.com" % tag, "sent", second.port))
    sb.wait(lambda: sb.all_queued() == {}, what="an empty queue")
    assert sorted(m.rcpt_tos[0] for m in second.messages) == [
        "a@example.com", "b@example.com"]
    assert sb.smarthost.messages == []
    assert sb.stop_daemon() == 0


def test_hup_with_a_broken_main_cf_keeps_running(sandbox, smarthost):
    sb = sandbox
    sb.start_daemon()
    sb.write_main_cf("this is not a parameter line\n")
    sb.daemon.send_signal(signal.SIGHUP)
    sb.wait_log(r"SIGHUP: keeping the running configuration")
    sb.write_config()   # sendmail needs a main.cf it can read
    sb.send_ok(["-i", "c@example.com"], b"Subject: still\n\nhere\n")
    sb.wait(lambda: smarthost.messages, what="delivery after a bad HUP")
    assert sb.stop_daemon() == 0


def term_during_data(sb, smarthost, to_group):
    """The relay holds its answer to the final dot; TERM arrives then,
    and the daemon waits for the worker before the relay answers."""
    smarthost.hold_data = True
    sb.start_daemon()
    sb.send_ok(["-i", "t@example.com"], b"Subject: term\n\nslow\n")
    sb.wait(lambda: smarthost.held, what="the final dot held at the relay")
    qid = sb.queue_files("active")[0]
    if to_group:
        # As systemd (KillMode=control-group) or ^C do: every process.
        os.killpg(sb.daemon.pid, signal.SIGTERM)
    else:
        sb.daemon.send_signal(signal.SIGTERM)
    sb.wait_log(r"postern/qmgr\[\d+\]: waiting up to \d+ s for 1 delivery "
                r"processes$")
    # TERM was taken while the worker waited for the relay's answer.
    assert smarthost.held == 1 and smarthost.messages == []
    smarthost.release()
    assert sb.stop_daemon() == 0
    text = sb.log_text()
    assert "terminating on signal" in text, text
    assert re.search(status_re("t@example.com", "sent", smarthost.port),
                     text, re.M), text
    assert re.search(removed_re(qid), text, re.M), text
    assert [a["outcome"] for a in smarthost.attempts] == ["accepted"]
    assert len(smarthost.messages) == 1
    assert sb.all_queued() == {} and sb.queue_files("state") == []
    # Started again, it has nothing to send.
    sb.start_daemon()
    sb.wait_log(r"daemon started", count=2)
    f = sb.postern(["flush"])
    assert f.returncode == 0, f.stderr
    sb.settle()
    assert len(smarthost.messages) == 1
    assert sb.stop_daemon() == 0


def test_term_lets_the_transaction_finish(sandbox, smarthost):
    term_during_data(sandbox, smarthost, to_group=False)


def test_term_to_the_process_group_lets_the_transaction_finish(sandbox,
                                                               smarthost):
    term_during_data(sandbox, smarthost, to_group=True)
