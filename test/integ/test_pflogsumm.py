"""pflogsumm reads postern's log.

A real run: messages delivered, one recipient refused for good (550),
one deferred once and then delivered. Debian's pflogsumm (with
--syslog-name=postern, as for any Postfix instance with its own
syslog_name) must count what the test knows it produced: received,
delivered, deferred (with its deferrals), bounced, and the per-domain
table of deliveries.
"""

import re
import shutil
import subprocess

import pytest

from conftest import status_re


def grand_total(report, what):
    m = re.search(r"^\s*(\d+)\s+%s\b" % what, report, re.M)
    assert m, "no %r line in:\n%s" % (what, report)
    return int(m.group(1))


def domain_rows(report):
    """{domain: (sent, defers)} from "Host/Domain Summary: Message
    Delivery" (columns: sent cnt, bytes, defers, avg dly, max dly,
    host/domain)."""
    part = report.split("Host/Domain Summary: Message Delivery", 1)[1]
    rows = {}
    for line in part.splitlines()[4:]:
        f = line.split()
        if not f:
            break
        rows[f[-1]] = (int(f[0]), int(f[2]))
    return rows


def test_pflogsumm_counts_a_real_run(sandbox, smarthost):
    if shutil.which("pflogsumm") is None:
        pytest.fail("pflogsumm is missing: scripts/install-deps installs it")
    sandbox.write_config(minimal_backoff_time="1s",
                         maximal_backoff_time="2s")
    smarthost.rcpt_replies["x@bad.example"] = "550 5.1.1 no such user"
    smarthost.rcpt_replies["y@slow.example"] = "451 4.3.0 try later"
    sandbox.start_daemon()
    sender = "alice@client.test.example"
    sandbox.send_ok(["-f", sender, "a@one.example", "b@two.example"],
                    b"Subject: 1\n\none\n")
    sandbox.send_ok(["-f", sender, "c@one.example", "x@bad.example"],
                    b"Subject: 2\n\ntwo\n")
    sandbox.send_ok(["-f", sender, "y@slow.example"], b"Subject: 3\n\nx\n")
    sandbox.wait_log(status_re("x@bad.example", "bounced"))
    sandbox.wait_log(status_re("y@slow.example", "deferred"))
    del smarthost.rcpt_replies["y@slow.example"]
    sandbox.wait_log(status_re("y@slow.example", "sent"))
    sandbox.stop_daemon()

    log = sandbox.log_text()
    # What the run produced, from the test's own knowledge.
    picked_up = len(re.findall(r"postern/pickup\[\d+\]: [0-9A-F]+: uid=",
                               log))
    sent = len(re.findall(r"status=sent", log))
    assert picked_up >= 3 and sent >= 4

    r = subprocess.run(["pflogsumm", "--syslog-name=postern",
                        "--problems-first", sandbox.logfile],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rep = r.stdout
    assert grand_total(rep, "received") == picked_up
    assert grand_total(rep, "delivered") == sent
    assert grand_total(rep, "deferred") == 1
    assert re.search(r"^\s*1\s+deferred\s+\(1\s+deferrals\)", rep, re.M), rep
    assert grand_total(rep, "bounced") == 1
    rows = domain_rows(rep)
    assert rows["one.example"] == (2, 0), rows
    assert rows["two.example"] == (1, 0), rows
    assert rows["slow.example"] == (1, 1), rows
    # The reasons are in the problem sections.
    assert "no such user" in rep
    assert "try later" in rep
