"""postern log: the mail log's lines about one message or one address.

Real logs from a real delivery run (the daemon's log file), and a
written log for what the sources of the log are (maillog_file, -f).
"""

import re

from conftest import EX_UNAVAILABLE, EX_USAGE, status_re

EX_NOINPUT = 66
EX_NOPERM = 77


class Result:
    def __init__(self, r):
        self.returncode = r.returncode
        self.stdout = r.stdout.decode()
        self.stderr = r.stderr.decode()


def plog(sandbox, args):
    """postern log ARGS, with text output."""
    return Result(sandbox.postern(["log"] + args))


def qid_of(sandbox, rcpt):
    m = re.search(r"postern/smtp\[\d+\]: ([0-9A-F]+): to=<%s>" %
                  re.escape(rcpt), sandbox.log_text())
    assert m, sandbox.log_text()
    return m.group(1)


def test_log_by_queue_id_and_address(sandbox):
    sandbox.start_daemon()
    sandbox.send_ok(["-f", "alice@client.test.example", "bob@example.com"],
                    b"Subject: one\n\nbody\n")
    sandbox.wait_log(status_re("bob@example.com", "sent"))
    sandbox.send_ok(["-f", "carol@client.test.example", "dave@example.com"],
                    b"Subject: two\n\nbody\n")
    sandbox.wait_log(status_re("dave@example.com", "sent"))
    q1 = qid_of(sandbox, "bob@example.com")
    q2 = qid_of(sandbox, "dave@example.com")

    r = plog(sandbox, ["-f", sandbox.logfile, q1])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # Every line is about q1, and its whole story is there.
    assert lines and all((" %s: " % q1) in ln for ln in lines), r.stdout
    text = r.stdout
    assert re.search(r"postern/pickup\[\d+\]: %s: uid=" % q1, text)
    assert "%s: from=<alice@client.test.example>, size=" % q1 in text
    assert re.search(r"%s: to=<bob@example.com>, relay=.*status=sent" % q1,
                     text)
    assert "%s: removed" % q1 in text
    assert q2 not in text

    # By address: the sender or a recipient finds the same message.
    for addr in ("bob@example.com", "ALICE@client.test.example"):
        r = plog(sandbox, ["-f", sandbox.logfile, addr])
        assert r.returncode == 0, r.stderr
        assert "%s: removed" % q1 in r.stdout and q2 not in r.stdout

    # Without an argument: the last lines, -n of them.
    r = plog(sandbox, ["-f", sandbox.logfile, "-n", "2"])
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2
    assert q2 in r.stdout.splitlines()[-1]

    # Nothing known about an address or an ID: said, and exit 69.
    r = plog(sandbox, ["-f", sandbox.logfile, "nobody@example.org"])
    assert r.returncode == EX_UNAVAILABLE
    assert "no lines about nobody@example.org" in r.stderr
    r = plog(sandbox, ["-f", sandbox.logfile, "ABCDEF0123"])
    assert r.returncode == EX_UNAVAILABLE and r.stdout == ""


LOG = """\
Nov 21 10:00:00 host postern/pickup[10]: AAAAAA1: uid=0 from=<root@host>
Nov 21 10:00:00 host postern/qmgr[11]: AAAAAA1: from=<root@host>, size=10, nrcpt=1 (queue active)
Nov 21 10:00:01 host postern/smtp[12]: AAAAAA1: to=<x@example.com>, relay=r[1.2.3.4]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (550 no)
Nov 21 10:00:01 host postern/bounce[11]: AAAAAA1: sender non-delivery notification: BBBBBB2
Nov 21 10:00:01 host postern/qmgr[11]: AAAAAA1: removed
Nov 21 10:00:01 host otherd[13]: AAAAAA1: not postern's line
Nov 21 10:00:02 host postern/qmgr[11]: BBBBBB2: from=<>, size=900, nrcpt=1 (queue active)
Nov 21 10:00:03 host postern/smtp[14]: BBBBBB2: to=<root@host>, relay=r[1.2.3.4]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)
Nov 21 10:00:04 host postern/qmgr[11]: CCCCCC3: from=<other@host>, size=10, nrcpt=1 (queue active)
"""


def test_log_follows_notifications_and_reads_maillog_file(sandbox):
    path = sandbox.root + "/mail.log"
    with open(path, "w") as f:
        f.write(LOG)
    sandbox.write_config(maillog_file=path)
    r = plog(sandbox, ["AAAAAA1"])
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    # The message, then its bounce; never another program's line.
    assert len(out) == 7, r.stdout
    assert "not postern's line" not in r.stdout
    assert out[-1].endswith("BBBBBB2: to=<root@host>, relay=r[1.2.3.4]:25, "
                            "delay=1, delays=0/0/0/1, dsn=2.0.0, "
                            "status=sent (250 ok)")
    assert "CCCCCC3" not in r.stdout
    r = plog(sandbox, ["x@example.com"])
    assert r.returncode == 0 and "BBBBBB2: from=<>" in r.stdout
    # Another syslog_name: these lines are not its.
    sandbox.write_config(maillog_file=path, syslog_name="postern-two")
    r = plog(sandbox, ["AAAAAA1"])
    assert r.returncode == EX_UNAVAILABLE


def test_log_errors(sandbox):
    r = plog(sandbox, ["-x"])
    assert r.returncode == EX_USAGE and "usage: postern log" in r.stderr
    r = plog(sandbox, ["a", "b"])
    assert r.returncode == EX_USAGE
    r = plog(sandbox, ["<bad address>"])
    assert r.returncode == EX_USAGE
    assert "neither a queue ID" in r.stderr
    r = plog(sandbox, ["-n", "0"])
    assert r.returncode == EX_USAGE
    r = plog(sandbox, ["-f", sandbox.root + "/missing.log"])
    assert r.returncode == EX_NOINPUT
    assert "cannot read %s/missing.log" % sandbox.root in r.stderr
