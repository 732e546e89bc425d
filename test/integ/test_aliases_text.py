"""Aliases before newaliases (issue 14, item 3): on a host another MTA
left behind, /etc/aliases exists without postern's GDBM .db (exim reads
it as text), with a Berkeley DB .db (Postfix's), or with a .db older
than the file. The mail to root must reach the alias target at once: the
daemon, postern route and postern check read the source text, log it
once with the command that compiles it, and use the compiled table as
soon as it is there (no SIGHUP)."""

import dbm.ndbm
import os
import re
import time

from conftest import status_re

# Tables look at their files at most once a second (map_db.c).
RECHECK = 1.1

ALIASES = ("# /etc/aliases as Debian ships it, plus root\n"
           "mailer-daemon: postmaster\n"
           "postmaster: root\n"
           "nobody: root\n"
           "root: you@example.com\n")


def aliases_sandbox(sb, text=ALIASES):
    path = os.path.join(sb.root, "aliases")
    with open(path, "w") as f:
        f.write(text)
    sb.write_config(alias_maps="hash:" + path)
    return path


def root_goes_to(sb, target):
    """sendmail root, as cron does; the relay gets it for target."""
    before = len(sb.smarthost.messages)
    logged = len(sb.log_lines(status_re(target, "sent")))
    sb.send_ok(["-i", "root"], b"Subject: cron\n\nout\n")
    sb.wait(lambda: len(sb.smarthost.messages) > before,
            what="root's mail at the relay")
    m = sb.smarthost.messages[before]
    assert m.rcpt_tos == [target], m.rcpt_tos
    line = sb.wait_log(status_re(target, "sent"), count=logged + 1)[-1]
    assert "orig_to=<root>" in line, line


def fallback_logged(sb, path, why):
    lines = sb.log_lines(r"until then the lookups read %s as text"
                         % re.escape(path))
    assert len(lines) == 1, sb.log_text()
    assert why in lines[0], lines[0]
    assert "newaliases, or postern map -a hash:" + path in lines[0]


def test_aliases_without_db_delivered_at_once(sandbox):
    sb = sandbox
    path = aliases_sandbox(sb)
    sb.start_daemon()
    root_goes_to(sb, "you@example.com")
    fallback_logged(sb, path, "cannot open %s.db: No such file" % path)
    # Nothing waits: no deferral on the way.
    assert not sb.log_lines("status=deferred"), sb.log_text()
    # newaliases later: the daemon uses the .db from then on, no SIGHUP.
    with open(path, "a") as f:
        f.write("root: ignored-duplicate@example.com\n")
    cp = sb.postern(["map", "-a", "hash:" + path])
    assert cp.returncode == 0, cp
    time.sleep(RECHECK)
    root_goes_to(sb, "you@example.com")
    sb.wait_log(r"aliases\.db is up to date; the lookups use it again")
    fallback_logged(sb, path, "No such file")


def test_berkeley_db_left_by_postfix(sandbox):
    sb = sandbox
    path = aliases_sandbox(sb)
    # What Postfix's postalias leaves: a Berkeley DB hash file, keys and
    # values with their NUL.
    with dbm.ndbm.open(path, "c") as db:
        db[b"root\0"] = b"old@example.com\0"
    assert os.path.exists(path + ".db")
    os.utime(path, (1000000000, 1000000000))    # the .db is newer
    sb.start_daemon()
    root_goes_to(sb, "you@example.com")
    fallback_logged(sb, path, "not a table made by postern map")


def test_stale_db_reads_the_newer_text(sandbox):
    sb = sandbox
    path = aliases_sandbox(sb, "root: old@example.com\n")
    cp = sb.postern(["map", "-a", "hash:" + path])
    assert cp.returncode == 0, cp
    os.utime(path + ".db", (1000000000, 1000000000))
    with open(path, "w") as f:
        f.write("root: new@example.com\n")
    sb.start_daemon()
    root_goes_to(sb, "new@example.com")
    fallback_logged(sb, path, "aliases.db is older than its source")
    # The source edited again is read again; no second warning.
    with open(path, "w") as f:
        f.write("root: newer@example.com\n")
    os.utime(path, (2000000000, 2000000000))
    time.sleep(RECHECK)
    root_goes_to(sb, "newer@example.com")
    fallback_logged(sb, path, "older than its source")


def test_route_and_check_read_the_text(sandbox):
    sb = sandbox
    path = aliases_sandbox(sb)
    cp = sb.postern(["route", "root"])
    out = cp.stdout.decode()
    assert cp.returncode == 0, (out, cp.stderr)
    assert "alias_maps:      root@client.test.example -> you@example.com" \
        in out, out
    err = cp.stderr.decode()
    assert err.count("until then the lookups read %s as text" % path) == 1, \
        err
    assert "compile it with: newaliases" in err, err
    # check opens the table without looking in it: one line, on stdout.
    cp = sb.postern(["check"])
    out = cp.stdout.decode()
    assert out.count("until then the lookups read %s as text" % path) == 1, \
        out
    assert "as text" not in cp.stderr.decode(), cp.stderr


def test_unreadable_source_and_no_db_defers_with_the_fix(sandbox):
    sb = sandbox
    path = os.path.join(sb.root, "aliases")      # neither file exists
    sb.write_config(alias_maps="hash:" + path)
    sb.start_daemon()
    sb.send_ok(["-i", "root"], b"Subject: x\n\nx\n")
    line = sb.wait_log(r"status=deferred")[0]
    assert "compile it with: newaliases" in line, line
    assert "cannot be read as text either" in line, line
    assert sb.smarthost.messages == []
