"""Garbage in the queue is quarantined in corrupt/, logged, and does not
stop a good message sent alongside."""

import os

from conftest import removed_re

ENVELOPE = (b"POSTERN-QUEUE 1\n"
            b"arrival 1763740025.123456\n"
            b"uid 0\n"
            b"sender alice@client.test.example\n"
            b"recipient bob@example.com\n"
            b"size 2048\n"
            b"end-of-envelope\n")

BAD = {
    # before posternd starts, in active/ (start-up recovery)
    ("active", "ABCDE101"): ENVELOPE + b"Subject: truncated\n\nonly a bit\n",
    ("active", "ABCDE102"): b"\x00\x01this is not a queue file\n",
    # while it runs, in incoming/new (inotify)
    ("incoming/new", "ABCDE103"): ENVELOPE[:60],
    ("incoming/new", "ABCDE104"): b"POSTERN-QUEUE 999\ngarbage\n",
    ("incoming/new", "ABCDE105"): b"",
}


def plant(sb, where, name, data):
    # Written beside the spool and renamed in, like sendmail's commit.
    tmp = os.path.join(sb.root, name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(sb.spool, where, name))


def test_corrupt_files_quarantined(sandbox, smarthost):
    sb = sandbox
    sb.make_spool()
    for (where, name), data in BAD.items():
        if where == "active":
            plant(sb, where, name, data)
    sb.start_daemon()
    for (where, name), data in BAD.items():
        if where != "active":
            plant(sb, where, name, data)
    sb.send_ok(["-i", "bob@example.com"], b"Subject: good\n\nstill sent\n")
    sb.wait(lambda: smarthost.messages, what="the good message")
    names = sorted(n for _, n in BAD)
    sb.wait(lambda: sb.queue_files("corrupt") == names, what="corrupt/")
    for (where, name), data in BAD.items():
        with open(os.path.join(sb.spool, "corrupt", name), "rb") as f:
            assert f.read() == data, "%s changed in corrupt/" % name
        sb.wait_log(r"corrupt.*%s|%s.*corrupt" % (name, name))
    m = smarthost.messages[0]
    assert m.rcpt_tos == ["bob@example.com"]
    assert m.data.endswith(b"\r\n\r\nstill sent\r\n")
    # The relay's 250 can arrive before the worker has logged it.
    sb.wait_log(r": ([0-9A-F]+): to=<bob@example.com>, .*status=sent")
    lines = sb.log_lines(r": ([0-9A-F]+): to=<bob@example.com>, .*status=sent")
    assert len(lines) == 1, lines
    good = lines[0].split(": to=<")[0].rsplit(" ", 1)[1]
    sb.wait_log(removed_re(good))
    # Nothing but the quarantined files is left, and posternd still runs.
    sb.wait(lambda: sb.all_queued() == {"corrupt": names},
            what="only corrupt/ left")
    assert sb.daemon_running()
    assert smarthost.delivered_to("bob@example.com") == [m]
