"""pflogsumm and logwatch read postern's log.

A real run: messages delivered, one recipient refused for good (550),
one deferred once and then delivered. Debian's pflogsumm (with
--syslog-name=postern, as for any Postfix instance with its own
syslog_name) must count what the test knows it produced: received,
delivered, deferred (with its deferrals), bounced, and the per-domain
table of deliveries. logwatch's postfix service (from Debian's package,
unpacked by `make integ`: the package itself would pull in an MTA), set
up as README.md tells, must count the same and find no line it does not
understand.
"""

import os
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


def real_run(sandbox, smarthost):
    """Deliver, bounce and defer; returns (log text, messages picked up,
    recipients sent)."""
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
    return log, picked_up, sent


def test_pflogsumm_counts_a_real_run(sandbox, smarthost):
    if shutil.which("pflogsumm") is None:
        pytest.fail("pflogsumm is missing: scripts/install-deps installs it")
    log, picked_up, sent = real_run(sandbox, smarthost)
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


def logwatch_env(share):
    """The environment logwatch gives its postfix service: the package's
    $postfix_* settings (Yes/No as 1/0, names lower-cased, as logwatch
    exports them), with the one line README.md tells users to add:
    $postfix_Syslog_Name = postern."""
    env = dict(os.environ, LOGWATCH_DETAIL_LEVEL="10", LOGWATCH_DEBUG="0",
               PERL5LIB=os.path.join(share, "lib"))
    conf = os.path.join(share, "default.conf", "services", "postfix.conf")
    for line in open(conf):
        m = re.match(r"\s*\$(postfix_\w+)\s*=\s*(.*?)\s*$", line)
        if m:
            v = m.group(2).strip('"')
            v = {"yes": "1", "no": "0"}.get(v.lower(), v)
            env[m.group(1).lower()] = v
    env["postfix_syslog_name"] = "postern"
    return env


def logwatch_count(report, what):
    m = re.search(r"^\s*(\d+)\s+%s\s" % re.escape(what), report, re.M)
    return int(m.group(1)) if m else 0


def test_logwatch_reads_a_real_run(sandbox, smarthost):
    root = os.environ.get("LOGWATCH_ROOT", "")
    share = os.path.join(root, "usr", "share", "logwatch")
    if not root or not os.path.isdir(share):
        pytest.fail("logwatch is missing: `make integ` unpacks it with "
                    "scripts/unpack-deb logwatch test/build/deps and "
                    "sets LOGWATCH_ROOT")
    log, picked_up, sent = real_run(sandbox, smarthost)
    env = logwatch_env(share)
    # logwatch's pipeline for this service: its OnlyService filter with
    # the pattern README.md gives, then the service script.
    only = subprocess.run(
        ["perl", os.path.join(share, "scripts", "shared", "onlyservice"),
         r"postern(?:[-/\w]*)?"], input=log, capture_output=True,
        text=True, env=env)
    assert only.returncode == 0, only.stderr
    assert only.stdout.count("\n") == log.count("\n")
    r = subprocess.run(["perl", os.path.join(share, "scripts", "services",
                                             "postfix")],
                       input=only.stdout, capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr
    rep = r.stdout
    assert "Unmatched Entries" not in rep, rep
    assert logwatch_count(rep, "Accepted") == picked_up, rep
    assert logwatch_count(rep, "Sent via SMTP") == sent, rep
    assert logwatch_count(rep, "Deferred") == 1, rep
    assert logwatch_count(rep, "Deferrals") == 1, rep
    assert (logwatch_count(rep, "Bounced (local)") +
            logwatch_count(rep, "Bounced (remote)")) == 1, rep
    assert logwatch_count(rep, "Notifications sent") == 1, rep
    assert "no such user" in rep
