"""The first cron mail from a stock Debian box leaves right (issue 14,
item 1): the address headers of locally submitted mail without a domain
(Debian cron's "From: root (Cron Daemon)", bsd-mailx's "To: root", a
script's bare names with sendmail -t) are qualified with $myorigin and
then rewritten by smtp_generic_maps; display names, comments and groups
stay byte for byte. Checked at the relay."""

import email
import email.policy
import os
import time

from conftest import status_re

ADDRESS_FIELDS = ("From", "Sender", "Reply-To", "To", "Cc", "Bcc",
                  "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc")
ORIGIN = "nas.home.example"
ME = "me@example.com"

# Debian cron 3.0pl1 (do_command.c) writes these headers and pipes them
# to "/usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem root".
CRON_ARGS = ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"]
CRON_MSG = ("From: root (Cron Daemon)\n"
            "To: root\n"
            "Subject: Cron <root@nas> /usr/local/bin/backup\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=UTF-8\n"
            "Content-Transfer-Encoding: 8bit\n"
            "X-Cron-Env: <SHELL=/bin/sh>\n"
            "X-Cron-Env: <HOME=/root>\n"
            "X-Cron-Env: <PATH=/usr/bin:/bin>\n"
            "X-Cron-Env: <LOGNAME=root>\n"
            "\n"
            "backup: 3 files copied\n")


def cron_sandbox(sb, generic=True, **extra):
    """myorigin as a Debian satellite has it; a generic table that sends
    everything from this host as the one mailbox the provider knows."""
    params = dict(myorigin=ORIGIN, **extra)
    if generic:
        path = os.path.join(sb.root, "generic")
        with open(path, "w") as f:
            f.write("@%s  %s\n" % (ORIGIN, ME))
        cp = sb.postern(["map", "hash:" + path])
        assert cp.returncode == 0, cp
        params["smtp_generic_maps"] = "hash:" + path
    sb.write_config(**params)


def header_block(m):
    return m.data.decode().split("\r\n\r\n", 1)[0]


def sent_one(sb, rcpt):
    sb.wait_log(status_re(rcpt, "sent"))
    (m,) = sb.smarthost.messages
    return m


def every_address_has_a_domain(m):
    """Python's own RFC 5322 parser finds a domain in every address."""
    msg = email.message_from_bytes(m.data, policy=email.policy.default)
    n = 0
    for field in ADDRESS_FIELDS:
        for v in msg.get_all(field, []):
            for a in v.addresses:
                assert a.domain, (field, str(v))
                n += 1
    assert n > 0


def test_debian_cron_mail_headers_qualified_then_generic(sandbox):
    sb = sandbox
    cron_sandbox(sb)
    sb.start_daemon()
    sb.send_ok(CRON_ARGS, CRON_MSG.encode())
    m = sent_one(sb, "root@" + ORIGIN)
    assert m.mail_from == ME and m.rcpt_tos == [ME], (m.mail_from,
                                                      m.rcpt_tos)
    hdr = header_block(m)
    # The comment stays, byte for byte; only the address changes.
    assert "\r\nFrom: %s (Cron Daemon)\r\n" % ME in "\r\n" + hdr, hdr
    assert "\r\nTo: %s\r\n" % ME in hdr, hdr
    assert "Subject: Cron <root@nas> /usr/local/bin/backup\r\n" in hdr
    assert "X-Cron-Env: <LOGNAME=root>\r\n" in hdr
    every_address_has_a_domain(m)


def test_cron_mail_without_generic_maps_gets_myorigin(sandbox):
    sb = sandbox
    cron_sandbox(sb, generic=False)
    sb.start_daemon()
    qid = sb.send_ok(CRON_ARGS, CRON_MSG.encode())
    m = sent_one(sb, "root@" + ORIGIN)
    hdr = header_block(m)
    assert "From: root@%s (Cron Daemon)\r\n" % ORIGIN in hdr, hdr
    assert "\r\nTo: root@%s\r\n" % ORIGIN in hdr, hdr
    # The queue file keeps the message as received (nothing rewritten
    # on disk); it is gone once sent, so look at a second copy.
    sb.stop_daemon()
    qid = sb.send_ok(CRON_ARGS, CRON_MSG.encode())
    with open(os.path.join(sb.spool, "incoming/new", qid), "rb") as f:
        assert b"\nFrom: root (Cron Daemon)\n" in f.read()


def test_bsd_mailx_to_root(sandbox):
    """bsd-mailx `mail -s subj root` runs `sendmail -i -- root` with
    To: and Subject: headers only."""
    sb = sandbox
    cron_sandbox(sb)
    sb.start_daemon()
    sb.send_ok(["-i", "--", "root"],
               b"To: root\nSubject: disk almost full\n\n/ is at 93%\n")
    m = sent_one(sb, "root@" + ORIGIN)
    hdr = header_block(m)
    assert "To: %s\r\n" % ME in hdr, hdr
    # sendmail adds From: from the qualified envelope sender.
    every_address_has_a_domain(m)


def test_sendmail_t_bare_names_in_to_and_cc(sandbox):
    """A script with sendmail -t: bare names, display names, comments and
    a group; only the bare addresses change, qualified (no generic table
    here) with $myorigin."""
    sb = sandbox
    cron_sandbox(sb, generic=False)
    sb.start_daemon()
    msg = ("From: \"Backup Script\" <backup>\n"
           "To: root, \"Doe, Jane\" <jane> (ops),\n"
           " alice@example.org\n"
           "Cc: team: bob, carol@example.net;\n"
           "Reply-To: noreply\n"
           "Subject: nightly\n"
           "\n"
           "done\n")
    sb.send_ok(["-t", "-i"], msg.encode())
    sb.wait_log(status_re("carol@example.net", "sent"))
    (m,) = sb.smarthost.messages
    assert sorted(m.rcpt_tos) == sorted([
        "root@" + ORIGIN, "jane@" + ORIGIN, "alice@example.org",
        "bob@" + ORIGIN, "carol@example.net"]), m.rcpt_tos
    hdr = header_block(m)
    assert 'From: "Backup Script" <backup@%s>\r\n' % ORIGIN in hdr, hdr
    assert ('To: root@%s, "Doe, Jane" <jane@%s> (ops),\r\n'
            ' alice@example.org\r\n' % (ORIGIN, ORIGIN)) in hdr, hdr
    assert "Cc: team: bob@%s, carol@example.net;\r\n" % ORIGIN in hdr, hdr
    assert "Reply-To: noreply@%s\r\n" % ORIGIN in hdr, hdr
    every_address_has_a_domain(m)


def test_other_address_headers_and_append_dot_mydomain(sandbox):
    """Sender, Resent-*, Errors-To, Return-Receipt-To and
    Disposition-Notification-To are address headers too; with
    append_dot_mydomain = yes a dotless domain gets .$mydomain."""
    sb = sandbox
    cron_sandbox(sb, generic=False, append_dot_mydomain="yes",
                 mydomain="home.example")
    sb.start_daemon()
    msg = ("From: ops@nas\n"
           "Sender: root\n"
           "Resent-From: admin\n"
           "Resent-To: ops\n"
           "Errors-To: postmaster\n"
           "Return-Receipt-To: root\n"
           "Disposition-Notification-To: root (me)\n"
           "X-Not-An-Address: root\n"
           "Subject: root\n"
           "\nx\n")
    sb.send_ok(["-i", "you@example.com"], msg.encode())
    m = sent_one(sb, "you@example.com")
    hdr = header_block(m)
    for want in ("From: ops@nas.home.example", "Sender: root@" + ORIGIN,
                 "Resent-From: admin@" + ORIGIN,
                 "Resent-To: ops@" + ORIGIN,
                 "Errors-To: postmaster@" + ORIGIN,
                 "Return-Receipt-To: root@" + ORIGIN,
                 "Disposition-Notification-To: root@%s (me)" % ORIGIN,
                 "X-Not-An-Address: root", "Subject: root"):
        assert want + "\r\n" in hdr, (want, hdr)


def test_append_at_myorigin_no_leaves_headers(sandbox):
    sb = sandbox
    cron_sandbox(sb, generic=False, append_at_myorigin="no")
    sb.start_daemon()
    sb.send_ok(["-i", "-f", "cron@" + ORIGIN, "you@example.com"],
               b"From: root (Cron Daemon)\nTo: you@example.com\n\nx\n")
    m = sent_one(sb, "you@example.com")
    assert "From: root (Cron Daemon)\r\n" in header_block(m)


def test_postern_route_tells_what_headers_get(sandbox):
    sb = sandbox
    cron_sandbox(sb)
    cp = sb.postern(["route", "-f", "root", "root", "bob@example.org"])
    out = cp.stdout.decode()
    assert cp.returncode == 0, (out, cp.stderr)
    assert ("  MAIL FROM:       root@%s -> %s (smtp_generic_maps)\n"
            % (ORIGIN, ME)) in out, out
    assert ("  From: header:    root -> root@%s (append_at_myorigin) -> %s "
            "(smtp_generic_maps)\n" % (ORIGIN, ME)) in out, out
    assert ("  To/Cc header:    root -> root@%s (append_at_myorigin) -> %s "
            "(smtp_generic_maps)\n" % (ORIGIN, ME)) in out, out
    assert ("    RCPT TO:         root@%s -> %s (smtp_generic_maps)\n"
            % (ORIGIN, ME)) in out, out
    assert "  To/Cc header:    bob@example.org (unchanged)\n" in out, out


def plant_queue_file(sb, name, flags, message):
    """A queue file as a network listener would write it (postern-spool(5)),
    renamed into incoming/new as sendmail commits."""
    env = ("POSTERN-QUEUE 1\narrival %.6f\nuid 0\n"
           "sender printer@lan.example\n%s"
           "recipient you@example.com\nsize %d\nend-of-envelope\n"
           % (time.time(), flags, len(message))).encode()
    tmp = os.path.join(sb.root, name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(env + message)
    os.rename(tmp, os.path.join(sb.spool, "incoming/new", name))


def test_mail_flagged_remote_keeps_its_header_addresses(sandbox):
    """Postfix leaves the headers of mail from remote clients alone
    (local_header_rewrite_clients); the queue flag "remote" says so, and
    the same message without it is qualified."""
    sb = sandbox
    cron_sandbox(sb, generic=False)
    sb.start_daemon()
    msg = b"From: scanner (Office Scanner)\nTo: root\nSubject: scan\n\nx\n"
    plant_queue_file(sb, "ABCDE1F1", "flags remote\n", msg)
    sb.wait_log(status_re("you@example.com", "sent"))
    plant_queue_file(sb, "ABCDE1F2", "", msg)
    sb.wait_log(status_re("you@example.com", "sent"), count=2)
    first, second = sb.smarthost.messages
    assert "From: scanner (Office Scanner)\r\nTo: root\r\n" in \
        header_block(first), header_block(first)
    assert ("From: scanner@%s (Office Scanner)\r\nTo: root@%s\r\n"
            % (ORIGIN, ORIGIN)) in header_block(second)


def test_route_warns_once_about_a_generic_result_with_two_addresses(sandbox):
    """The same address looked up for MAIL FROM, From: and To: gives one
    warning, not three."""
    sb = sandbox
    sb.write_config(myorigin=ORIGIN, smtp_generic_maps="inline:{ "
                    "{@%s = me@example.com, other@example.com} }" % ORIGIN)
    cp = sb.postern(["route", "-f", "root", "root"])
    assert cp.returncode == 0, cp
    err = cp.stderr.decode()
    assert err.count("the result has 2 addresses; using the first") == 1, err
    assert cp.stdout.decode().count("-> me@example.com") == 4, cp.stdout
