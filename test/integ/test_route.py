"""Routing and aliases: transport_maps, sender_dependent_relayhost_maps,
relayhost, smtp_fallback_relay, alias_maps; each checked at the relay that
must (and must not) receive the mail, and in the log."""

import re
import socket

from conftest import status_re

MSG = b"Subject: route test\n\nhello\n"


def free_port():
    """A local port that nothing listens on (closed again at once)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def local_re(service, addr, status, orig=None):
    """A line logged by the daemon itself for a recipient (relay=none)."""
    o = r"orig_to=<%s>, " % re.escape(orig) if orig else ""
    return (r"postern/%s\[\d+\]: ([0-9A-F]+): to=<%s>, %srelay=none, "
            r"delay=[\d.]+, delays=[\d.]+/0/0/0, dsn=[\d.]+, status=%s "
            % (service, re.escape(addr), o, status))


def envelope(sh):
    return [(m.mail_from, sorted(m.rcpt_tos)) for m in sh.messages]


# ---- alias_maps -------------------------------------------------------------

def test_root_alias_reaches_the_owner_with_orig_to(sandbox):
    sb = sandbox
    sb.write_config(alias_maps="inline:{ root=you@example.com }")
    sb.start_daemon()
    sb.send_ok(["-f", "cron", "root"], MSG)
    sb.wait(lambda: sb.smarthost.delivered_to("you@example.com"),
            what="root's mail at you@example.com")
    assert envelope(sb.smarthost) == [("cron@client.test.example",
                                       ["you@example.com"])]
    line = sb.wait_log(status_re("you@example.com", "sent"))[0]
    assert "orig_to=<root>" in line, line
    assert "alias_maps: 1 recipient(s) expanded to 1" in sb.log_text()


def test_aliases_recursive_with_a_loop_and_duplicates(sandbox):
    sb = sandbox
    # root -> admin, ops; admin -> a@x, root (a loop back to root);
    # ops -> a@x again (a duplicate) and b@y.
    sb.write_config(alias_maps="inline:{ {root = admin, ops}, "
                    "{admin = a@x.example, root}, "
                    "{ops = a@x.example, b@y.example} }")
    sb.start_daemon()
    sb.send_ok(["-f", "cron", "root"], MSG)
    sb.wait_log(status_re("b@y.example", "sent"))
    sb.wait_log(status_re("root@client.test.example", "sent"))
    got = sorted(r for m in sb.smarthost.messages for r in m.rcpt_tos)
    # root met again inside its own expansion stays root (qualified).
    assert got == ["a@x.example", "b@y.example",
                   "root@client.test.example"], got
    for a in got:
        line = sb.log_lines(status_re(a, "sent"))[0]
        assert "orig_to=<root>" in line, line


def test_only_local_recipients_are_expanded(sandbox):
    sb = sandbox
    sb.write_config(alias_maps="inline:{ bob=carol@example.org }",
                    mydestination="client.test.example, other.local")
    sb.start_daemon()
    # Remote bob: relayed as it is. bob@other.local: local (mydestination).
    sb.send_ok(["-f", "alice", "bob@example.com", "bob@other.local",
                "bob@localhost"], MSG)
    sb.wait_log(status_re("bob@example.com", "sent"))
    sb.wait_log(status_re("carol@example.org", "sent"))
    got = sorted(r for m in sb.smarthost.messages for r in m.rcpt_tos)
    # Both local bobs became one carol.
    assert got == ["bob@example.com", "carol@example.org"], got


def test_alias_to_a_command_is_skipped_with_a_warning(sandbox):
    sb = sandbox
    sb.write_config(alias_maps="inline:{ {root = |/usr/bin/procmail, "
                    "you@example.com} }")
    sb.start_daemon()
    sb.send_ok(["-f", "cron", "root"], MSG)
    sb.wait_log(status_re("you@example.com", "sent"))
    assert re.search(r"alias_maps: root: \"\|/usr/bin/procmail\" delivers "
                     r"to a command", sb.log_text())


# ---- transport_maps ---------------------------------------------------------

def test_transport_maps_relay_error_discard_retry(sandbox, smarthost_factory):
    sb = sandbox
    other = smarthost_factory()
    sb.write_config(transport_maps=(
        "inline:{ {special.example = smtp:[127.0.0.1]:%d}, "
        "{.sub.example = relay:[127.0.0.1]:%d}, "
        "{bad.example = error:5.1.2 this domain is gone}, "
        "{gone.example = discard:}, "
        "{later.example = retry:4.2.0 not today}, "
        "{pipe.example = local:} }" % (other.port, other.port)))
    sb.start_daemon()
    sb.send_ok(["-f", "alice", "bob@special.example", "eve@a.sub.example",
                "carol@example.com", "dave@bad.example", "frank@gone.example",
                "gina@later.example", "hal@pipe.example"], MSG)
    sb.wait_log(status_re("bob@special.example", "sent", other.port))
    sb.wait_log(status_re("eve@a.sub.example", "sent", other.port))
    sb.wait_log(status_re("carol@example.com", "sent", sb.smarthost.port))
    line = sb.wait_log(local_re("error", "dave@bad.example", "bounced"))[0]
    assert "dsn=5.1.2, status=bounced (this domain is gone)" in line, line
    line = sb.wait_log(local_re("discard", "frank@gone.example", "sent"))[0]
    assert "(discarded)" in line
    line = sb.wait_log(local_re("retry", "gina@later.example",
                                "deferred"))[0]
    assert "dsn=4.2.0, status=deferred (not today)" in line, line
    line = sb.wait_log(local_re("retry", "hal@pipe.example", "deferred"))[0]
    assert 'the "local" transport, which postern does not have' in line
    assert envelope(other) == [("alice@client.test.example",
                                ["bob@special.example",
                                 "eve@a.sub.example"])]
    assert envelope(sb.smarthost) == [("alice@client.test.example",
                                       ["carol@example.com"])]


def test_transport_full_address_wins_over_domain(sandbox, smarthost_factory):
    sb = sandbox
    other = smarthost_factory()
    sb.write_config(recipient_delimiter="+", transport_maps=(
        "inline:{ {boss@example.com = smtp:[127.0.0.1]:%d}, "
        "{example.com = smtp:} }" % other.port))
    sb.start_daemon()
    sb.send_ok(["-f", "alice", "boss+news@example.com", "staff@example.com"],
               MSG)
    sb.wait_log(status_re("boss+news@example.com", "sent", other.port))
    # "smtp:" without a next hop falls through to relayhost.
    sb.wait_log(status_re("staff@example.com", "sent", sb.smarthost.port))


# ---- sender_dependent_relayhost_maps -----------------------------------------

def test_sender_dependent_relay(sandbox, smarthost_factory):
    sb = sandbox
    work = smarthost_factory()
    home = smarthost_factory()
    sb.write_config(sender_dependent_relayhost_maps=(
        "inline:{ {alice@work.example = [127.0.0.1]:%d}, "
        "{@home.example = [127.0.0.1]:%d}, "
        "{dunno@work.example = DUNNO} }" % (work.port, home.port)))
    sb.start_daemon()
    sb.send_ok(["-f", "alice@work.example", "x@example.com"], MSG)
    sb.send_ok(["-f", "bob@home.example", "y@example.com"], MSG)
    sb.send_ok(["-f", "dunno@work.example", "z@example.com"], MSG)
    sb.wait_log(status_re("x@example.com", "sent", work.port))
    sb.wait_log(status_re("y@example.com", "sent", home.port))
    sb.wait_log(status_re("z@example.com", "sent", sb.smarthost.port))
    assert envelope(work) == [("alice@work.example", ["x@example.com"])]
    assert envelope(home) == [("bob@home.example", ["y@example.com"])]


def test_one_message_two_relays(sandbox, smarthost_factory):
    sb = sandbox
    other = smarthost_factory()
    sb.write_config(transport_maps="inline:{ b.example=smtp:[127.0.0.1]:%d }"
                    % other.port)
    sb.start_daemon()
    sb.send_ok(["-f", "alice", "x@a.example", "y@b.example"], MSG)
    sb.wait_log(status_re("x@a.example", "sent", sb.smarthost.port))
    sb.wait_log(status_re("y@b.example", "sent", other.port))
    line = sb.wait_log(r"postern/qmgr\[\d+\]: ([0-9A-F]+): removed$")[0]
    assert len(sb.smarthost.messages) == 1 and len(other.messages) == 1
    assert line


# ---- smtp_fallback_relay ----------------------------------------------------

def test_fallback_relay_when_the_relay_is_unreachable(sandbox):
    sb = sandbox
    dead = free_port()
    sb.write_config(relayhost="[127.0.0.1]:%d" % dead,
                    smtp_fallback_relay="[127.0.0.1]:%d" % sb.smarthost.port)
    sb.start_daemon()
    sb.send_ok(["-f", "alice", "bob@example.com"], MSG)
    sb.wait_log(status_re("bob@example.com", "sent", sb.smarthost.port))
    assert re.search(r"\[127\.0\.0\.1\]:%d cannot be reached; trying "
                     r"smtp_fallback_relay \[127\.0\.0\.1\]:%d"
                     % (dead, sb.smarthost.port), sb.log_text())


def test_fallback_not_used_when_the_relay_answers(sandbox, smarthost_factory):
    sb = sandbox
    # The relay answers but refuses TLS it does not offer: the fallback
    # must not get the mail (a refusal is not "unreachable").
    fb = smarthost_factory()
    sb.write_config(smtp_tls_security_level="encrypt",
                    smtp_fallback_relay="[127.0.0.1]:%d" % fb.port)
    sb.start_daemon()
    sb.send_ok(["-f", "alice", "bob@example.com"], MSG)
    sb.wait_log(status_re("bob@example.com", "deferred"))
    assert fb.messages == [] and sb.smarthost.messages == []
    assert "trying smtp_fallback_relay" not in sb.log_text()


def test_no_relayhost_defers_with_the_fix(sandbox):
    sb = sandbox
    sb.write_config(relayhost="")
    sb.start_daemon()
    sb.send_ok(["-f", "alice", "bob@example.com"], MSG)
    line = sb.wait_log(local_re("qmgr", "bob@example.com", "deferred"))[0]
    assert "set relayhost = [smtp.example.com]:587" in line, line


# ---- postern route ----------------------------------------------------------

def test_postern_route_explains_every_step(sandbox, smarthost_factory):
    sb = sandbox
    other = smarthost_factory()
    sb.write_config(
        alias_maps="inline:{ {root = admin}, {admin = you@example.com} }",
        sender_dependent_relayhost_maps="inline:{ @work.example="
        "[127.0.0.1]:%d }" % other.port,
        smtp_fallback_relay="[backup.example]:25",
        smtp_sasl_auth_enable="yes",
        smtp_sasl_password_maps="inline:{ {alice@work.example = "
        "alice1:s3cret-pw} }",
        smtp_sender_dependent_authentication="yes",
        transport_maps="inline:{ {bad.example = error:5.1.2 gone} }")
    cp = sb.postern(["route", "-f", "alice@work.example", "root",
                     "x@bad.example"])
    out = cp.stdout.decode()
    assert cp.returncode == 0, (out, cp.stderr)
    assert "sender alice@work.example" in out
    assert "qualified:       root@client.test.example" in out
    assert "root@client.test.example -> admin@client.test.example" in out
    assert "admin@client.test.example -> you@example.com" in out
    assert ("relay:           [127.0.0.1]:%d (sender_dependent_relayhost_"
            "maps, key @work.example)" % other.port) in out
    assert 'user "alice1" (smtp_sasl_password_maps, key alice@work.example)' \
        in out
    assert "fallback:        [backup.example]:25" in out
    assert "TLS level:       none (smtp_tls_security_level)" in out
    assert "none: returned to the sender, 5.1.2 gone (transport_maps, key " \
        "bad.example)" in out
    assert "s3cret-pw" not in out + cp.stderr.decode()


def test_postern_route_bad_input(sandbox):
    sb = sandbox
    cp = sb.postern(["route"])
    assert cp.returncode == 64 and b"usage: postern route" in cp.stderr
    cp = sb.postern(["route", "bad\naddress"])
    assert cp.returncode == 65, cp
    assert b'recipient "bad\naddress"' in cp.stderr
    sb.write_config(transport_maps="nosuchtype:/x")
    cp = sb.postern(["route", "bob@example.com"])
    assert cp.returncode == 78, cp
    assert b'transport_maps: unknown table type "nosuchtype"' in cp.stderr


def test_two_relays_one_defers_no_busy_loop(sandbox, smarthost_factory):
    sb = sandbox
    other = smarthost_factory()
    sb.smarthost.rcpt_replies = {"x@a.example": "451 4.3.0 try later"}
    sb.write_config(transport_maps="inline:{ b.example=smtp:[127.0.0.1]:%d }"
                    % other.port)
    sb.start_daemon()
    sb.send_ok(["-f", "alice", "x@a.example", "y@b.example"], MSG)
    sb.wait_log(status_re("x@a.example", "deferred", sb.smarthost.port))
    sb.wait_log(status_re("y@b.example", "sent", other.port))
    # The deferred recipient keeps its backoff (1h here): one attempt.
    import time
    time.sleep(1.5)
    assert len(sb.log_lines(status_re("x@a.example", "deferred"))) == 1
    assert len(sb.log_lines(status_re("y@b.example", "sent"))) == 1


def test_aliases_file_with_newaliases(sandbox):
    """The classic: root's mail reaches the owner through /etc/aliases
    compiled by newaliases; before it is compiled the file is read as
    text (test_aliases_text.py has the details)."""
    import os
    sb = sandbox
    path = os.path.join(sb.root, "aliases")
    with open(path, "w") as f:
        f.write("# See aliases(5)\npostmaster: root\n"
                "root:\tyou@example.com\n")
    sb.write_config(alias_maps="hash:" + path, alias_database="hash:" + path)
    cp = sb.postern(["newaliases"])
    assert cp.returncode == 0, cp
    sb.start_daemon()
    sb.send_ok(["-f", "cron", "postmaster"], MSG)
    line = sb.wait_log(status_re("you@example.com", "sent"))[0]
    assert "orig_to=<postmaster>" in line, line
    assert "as text" not in sb.log_text()


def test_broken_table_keeps_the_mail_until_fixed(sandbox, smarthost_factory):
    """A table edited into a syntax error while the daemon runs: the mail
    waits, the log names the file and line; fixed, it goes."""
    import os
    sb = sandbox
    other = smarthost_factory()
    path = os.path.join(sb.root, "transport")
    with open(path, "w") as f:
        f.write("special.example  smtp:[127.0.0.1]:%d\n" % other.port)
    sb.write_config(transport_maps="texthash:" + path)
    sb.start_daemon()
    with open(path, "w") as f:
        f.write("# edited\nspecial.example  smtp:[127.0.0.1]:%d\n"
                "oops-no-value\n" % other.port)
    sb.postern(["flush"])
    sb.send_ok(["-f", "alice", "bob@special.example"], MSG)
    line = sb.wait_log(local_re("qmgr", "bob@special.example",
                                "deferred"))[0]
    assert "transport_maps: texthash:%s" % path in line, line
    assert "line 3" in line, line
    assert other.messages == [] and sb.smarthost.messages == []
    with open(path, "w") as f:
        f.write("special.example  smtp:[127.0.0.1]:%d\n" % other.port)
    sb.postern(["flush"])
    sb.wait_log(status_re("bob@special.example", "sent", other.port))


def test_unknown_table_type_refused_at_start(sandbox):
    sb = sandbox
    sb.write_config(sender_dependent_relayhost_maps="hash_typo:/etc/x")
    cp = sb.run("posternd", ["-f", "-C", sb.confdir], timeout=20)
    assert cp.returncode == 78, cp
    assert (b'sender_dependent_relayhost_maps: unknown table type '
            b'"hash_typo"') in cp.stderr, cp.stderr


# ---- regressions from the review -------------------------------------------

def test_every_relay_gets_its_turn_on_each_retry(sandbox, smarthost_factory):
    sb = sandbox
    other = smarthost_factory()
    sb.smarthost.rcpt_replies = {"x@a.example": "451 4.3.0 later"}
    other.rcpt_replies = {"y@b.example": "451 4.3.0 later"}
    sb.write_config(transport_maps="inline:{ b.example=smtp:[127.0.0.1]:%d }"
                    % other.port)
    sb.start_daemon()
    sb.send_ok(["-f", "alice", "x@a.example", "y@b.example"], MSG)
    for n in (1, 2, 3):
        sb.wait_log(status_re("y@b.example", "deferred", other.port),
                    count=n)
        sb.wait_log(status_re("x@a.example", "deferred", sb.smarthost.port),
                    count=n)
        if n < 3:
            sb.postern(["flush"])
    assert len(sb.log_lines(status_re("x@a.example", "deferred"))) == 3
    assert len(sb.log_lines(status_re("y@b.example", "deferred"))) == 3


def test_expansion_after_partial_delivery_keeps_what_was_sent(sandbox):
    """A message half delivered before alias_maps existed: after a
    restart with aliases, the deferred local recipient is expanded and
    the one already delivered is not sent again."""
    sb = sandbox
    sb.smarthost.rcpt_replies = {"root@client.test.example":
                                 "451 4.3.0 no root here"}
    sb.start_daemon()
    sb.send_ok(["-f", "cron", "a@example.com", "root"], MSG)
    sb.wait_log(status_re("a@example.com", "sent"))
    sb.wait_log(status_re("root@client.test.example", "deferred"))
    sb.stop_daemon()
    sb.write_config(alias_maps="inline:{ root=you@example.com }")
    sb.start_daemon()
    # The old control socket is still there until the new daemon is up.
    sb.wait_log(r"daemon started", count=2)
    assert sb.postern(["flush"]).returncode == 0
    line = sb.wait_log(status_re("you@example.com", "sent"))[0]
    assert "orig_to=<root>" in line
    assert len(sb.log_lines(status_re("a@example.com", "sent"))) == 1
    got = sorted(r for m in sb.smarthost.messages for r in m.rcpt_tos)
    assert got == ["a@example.com", "you@example.com"], got


def test_quoted_command_and_backslash_alias_entries(sandbox):
    sb = sandbox
    sb.write_config(alias_maps='inline:{ {root = "|/usr/bin/procmail -a x",'
                    ' \\root, you@example.com} }')
    sb.start_daemon()
    sb.send_ok(["-f", "cron", "root"], MSG)
    sb.wait_log(status_re("you@example.com", "sent"))
    sb.wait_log(status_re("root@client.test.example", "sent"))
    got = sorted(r for m in sb.smarthost.messages for r in m.rcpt_tos)
    assert got == ["root@client.test.example", "you@example.com"], got
    assert "delivers to a command" in sb.log_text()


def test_one_senders_bad_login_entry_does_not_hold_the_others(sandbox):
    sb = sandbox
    sb.write_config(smtp_sasl_auth_enable="yes",
                    smtp_sender_dependent_authentication="yes",
                    smtp_sasl_password_maps="inline:{ alice@x.example="
                    "no-colon-here }",
                    smtp_destination_concurrency_limit="1")
    sb.smarthost.data_delay = 0.3
    sb.start_daemon(wait_ready=True)
    sb.send_ok(["-f", "alice@x.example", "a@example.com"], MSG)
    sb.send_ok(["-f", "bob@x.example", "b@example.com"], MSG)
    line = sb.wait_log(local_re("qmgr", "a@example.com", "deferred")
                       .replace("qmgr", r"(?:qmgr|smtp)")
                       .replace("relay=none, delay=[\\d.]+, "
                                "delays=[\\d.]+/0/0/0", r"relay=none, "
                                r"delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/"
                                r"[\d.]+"))[0]
    assert "must be username:password" in line, line
    sb.wait_log(status_re("b@example.com", "sent"))
