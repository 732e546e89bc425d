"""postern map, newaliases, and compiled tables (hash:, btree:) in use.

The real `postern map` binary compiles, queries (-q) and lists (-s)
tables; a failed compile names the file and line, exits EX_DATAERR and
leaves the old .db and no temporary file; the .db gets the source's mode
and owner. newaliases runs as `postern newaliases`, as a program named
newaliases, and as `sendmail -bi`. posternd reads smtp_sasl_password_maps
from a hash: table, picks up a re-compiled table without a restart,
keeps the mail while the .db is missing (the log names the file and the
command that compiles it), and refuses a world-readable .db; postern
check reports a .db older than its source.

What these tests assume of postern (Postfix's postmap/postalias):
  postern map [-a] [type:]FILE      compile FILE into FILE.db (GDBM)
  postern map [-a] -q KEY type:NAME print the value, exit 0; not found 1
  postern map [-a] -s type:NAME     "key value" lines ("key: value" -a)
  exit codes: 64 usage/unsupported type, 65 syntax error, 66 no input
"""

import os
import re
import time

import pytest

from test_sasl import (auth_sandbox, delivered, new_secret,  # noqa: F401
                       no_secret_leaked, send)

EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_CONFIG = 78


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def pmap(sb, *args, input=b""):
    """postern -C confdir map ARGS; (status, stdout, stderr) as text."""
    cp = sb.run("postern", ["-C", sb.confdir, "map"] + list(args),
                input=input)
    return cp.returncode, cp.stdout.decode(), cp.stderr.decode()


def listing(d):
    return sorted(os.listdir(d))


# ---- compile, query, list ------------------------------------------------

@pytest.mark.parametrize("kind", ["hash", "btree", "bare"])
def test_compile_query_show(sandbox, kind):
    """A table compiled by postern map answers -q (keys folded as lookups
    are, exit 1 when not found) and -s lists every record."""
    d = os.path.join(sandbox.root, "tables")
    os.makedirs(d)
    src = write(os.path.join(d, "generic"),
                "# outgoing addresses\n"
                "Alice@Example.COM   alice@isp.example\n"
                "@example.com        catchall@isp.example\n"
                "long   first\n"
                "   second\n")
    arg = src if kind == "bare" else "%s:%s" % (kind, src)
    qarg = "%s:%s" % ("hash" if kind == "bare" else kind, src)
    st, out, err = pmap(sandbox, arg)
    assert (st, out, err) == (0, "", "")
    assert listing(d) == ["generic", "generic.db"]

    assert pmap(sandbox, "-q", "ALICE@example.com", qarg) == \
        (0, "alice@isp.example\n", "")
    assert pmap(sandbox, "-q", "@EXAMPLE.COM", qarg)[:2] == \
        (0, "catchall@isp.example\n")
    assert pmap(sandbox, "-q", "long", qarg)[:2] == (0, "first   second\n")
    assert pmap(sandbox, "-q", "bob@example.com", qarg) == (1, "", "")

    st, out, err = pmap(sandbox, "-s", qarg)
    assert (st, err) == (0, "")
    assert sorted(out.splitlines()) == [
        "@example.com catchall@isp.example",
        "alice@example.com alice@isp.example",
        "long first   second"]

    # Keys on standard input: one "key value" line per key found.
    st, out, err = pmap(sandbox, "-q", "-", qarg,
                        input="nobody\nAlice@example.com\n\n@example.com\n")
    assert (st, err) == (0, "")
    assert out.splitlines() == ["Alice@example.com alice@isp.example",
                                "@example.com catchall@isp.example"]
    assert pmap(sandbox, "-q", "-", qarg, input="x\ny\n") == (1, "", "")


def test_query_any_table_type(sandbox):
    """-q is a general query: texthash: and inline: too, several tables
    searched in order as the daemon does."""
    src = write(os.path.join(sandbox.confdir, "t"), "k text-value\n")
    assert pmap(sandbox, "-q", "K", "texthash:" + src) == \
        (0, "text-value\n", "")
    assert pmap(sandbox, "-q", "k", "inline:{k=first}", "texthash:" + src
                )[:2] == (0, "first\n")
    assert pmap(sandbox, "-q", "k", "inline:{x=y}", "texthash:" + src
                )[:2] == (0, "text-value\n")
    # texthash lists in the file's order.
    assert pmap(sandbox, "-s", "texthash:" + src) == (0, "k text-value\n", "")


def test_syntax_error_keeps_old_db(sandbox):
    """A syntax error names file and line, exits 65, prints no value, and
    leaves the old .db as it was and nothing else behind."""
    d = os.path.join(sandbox.root, "tables")
    os.makedirs(d)
    src = write(os.path.join(d, "sasl_passwd"),
                "[relay.example]:587 user:old-secret\n")
    assert pmap(sandbox, "hash:" + src)[0] == 0
    db = src + ".db"
    before = os.stat(db)
    with open(db, "rb") as f:
        old = f.read()
    write(src, "# 1\n# 2\n[relay.example]:587 user:new-secret\n\n# 5\n"
          "[other.example]:587\n   \n# 8\n")
    st, out, err = pmap(sandbox, "hash:" + src)
    assert st == EX_DATAERR, err
    assert "%s: line 6: missing value after the key" % src in err, err
    assert "secret" not in err
    assert listing(d) == ["sasl_passwd", "sasl_passwd.db"]
    after = os.stat(db)
    assert (after.st_ino, after.st_mtime_ns) == \
        (before.st_ino, before.st_mtime_ns)
    with open(db, "rb") as f:
        assert f.read() == old
    assert pmap(sandbox, "-q", "[relay.example]:587", "hash:" + src)[:2] == \
        (0, "user:old-secret\n")


def test_duplicate_key_warning(sandbox):
    """A duplicate key is a warning with file and line; the first value
    is kept, as postmap does."""
    src = write(os.path.join(sandbox.confdir, "t"), "k first\nx y\nK second\n")
    st, out, err = pmap(sandbox, "hash:" + src)
    assert st == 0
    assert re.search(r"warning: %s: line 3: duplicate entry" %
                     re.escape(src), err), err
    assert pmap(sandbox, "-q", "k", "hash:" + src)[:2] == (0, "first\n")


def test_error_exits(sandbox):
    """Missing source: 66; types that are not compiled: 64; a missing .db
    on query: 66 with the command that compiles it; usage errors: 64."""
    d = os.path.join(sandbox.root, "tables")
    os.makedirs(d)
    missing = os.path.join(d, "missing")
    st, out, err = pmap(sandbox, "hash:" + missing)
    assert st == EX_NOINPUT
    assert "%s: cannot open the file: No such file or directory" % missing \
        in err
    assert listing(d) == []

    src = write(os.path.join(d, "t"), "a b\n")
    st, out, err = pmap(sandbox, "texthash:" + src)
    assert st == EX_USAGE and "needs no compiling" in err, err
    st, out, err = pmap(sandbox, "regexp:" + src)
    assert st == EX_USAGE
    assert "postern map compiles hash: and btree: tables only" in err
    assert listing(d) == ["t"]

    st, out, err = pmap(sandbox, "-q", "a", "hash:" + src)
    assert st == EX_NOINPUT
    assert ("cannot open %s.db: No such file or directory; compile it "
            "with: postern map hash:%s" % (src, src)) in err, err
    st, out, err = pmap(sandbox, "-s", "btree:" + src)
    assert st == EX_NOINPUT
    assert "compile it with: postern map btree:%s" % src in err, err
    st, out, err = pmap(sandbox, "-a", "-q", "root", "hash:" + src)
    assert st == EX_NOINPUT
    assert "compile it with: newaliases, or postern map -a hash:" in err

    # A .db that is not GDBM (Postfix's Berkeley DB): the lookup fails.
    with open(src + ".db", "wb") as f:
        f.write(b"\0" * 4096)
    st, out, err = pmap(sandbox, "-q", "a", "hash:" + src)
    assert st == EX_UNAVAILABLE
    assert "not a table made by postern map" in err, err
    assert "compile it with: postern map hash:%s" % src in err

    assert pmap(sandbox)[0] == EX_USAGE
    assert pmap(sandbox, "-q")[0] == EX_USAGE
    assert pmap(sandbox, "-q", "a", "-s", "hash:" + src)[0] == EX_USAGE
    assert pmap(sandbox, "-x", "hash:" + src)[0] == EX_USAGE


def test_mode_and_owner_copied(sandbox):
    """The .db gets the source's permission bits, owner and group."""
    src = write(os.path.join(sandbox.confdir, "sasl_passwd"),
                "[relay]:587 u:secret\n", mode=0o600)
    assert pmap(sandbox, "hash:" + src)[0] == 0
    assert os.stat(src + ".db").st_mode & 0o7777 == 0o600
    os.chmod(src, 0o640)
    if os.geteuid() == 0:
        os.chown(src, 1234, 5678)
    assert pmap(sandbox, "hash:" + src)[0] == 0
    st = os.stat(src + ".db")
    assert st.st_mode & 0o7777 == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 5678)


# ---- aliases and newaliases ------------------------------------------------

ALIASES = ("# aliases\n"
           "Root: you@example.com\n"
           "postmaster: root\n"
           "\"mail admin\": a@example.com,\n"
           "    b@example.com\n")


def alias_sandbox(sandbox):
    d = os.path.join(sandbox.root, "mail")
    os.makedirs(d)
    src = write(os.path.join(d, "aliases"), ALIASES, mode=0o644)
    sandbox.write_config(alias_database="hash:" + src)
    return src


def check_aliases(sandbox, src):
    assert pmap(sandbox, "-a", "-q", "ROOT", "hash:" + src)[:2] == \
        (0, "you@example.com\n")
    st, out, err = pmap(sandbox, "-a", "-s", "hash:" + src)
    assert st == 0, err
    assert sorted(out.splitlines()) == [
        '"mail admin": a@example.com,    b@example.com',
        "postmaster: root", "root: you@example.com"]


def test_newaliases_subcommand(sandbox):
    """postern newaliases compiles alias_database (aliases(5) format)."""
    src = alias_sandbox(sandbox)
    cp = sandbox.postern(["newaliases"])
    assert (cp.returncode, cp.stderr) == (0, b""), cp.stderr
    check_aliases(sandbox, src)

    # A syntax error: file and line, 65, the old .db kept.
    write(src, ALIASES + "broken line\n", mode=0o644)
    cp = sandbox.postern(["newaliases"])
    assert cp.returncode == EX_DATAERR
    assert "%s: line 6: white space in the alias name" % src in \
        cp.stderr.decode()
    check_aliases(sandbox, src)
    assert listing(os.path.dirname(src)) == ["aliases", "aliases.db"]
    assert sandbox.postern(["newaliases", "extra"]).returncode == EX_USAGE


def test_newaliases_program_and_sendmail_bi(sandbox, tmp_path):
    """postern installed as "newaliases", and sendmail -bi, do the same."""
    src = alias_sandbox(sandbox)
    link = str(tmp_path / "newaliases")
    os.symlink(sandbox.bins["postern"], link)
    sandbox.bins["newaliases"] = link
    cp = sandbox.run("newaliases", ["-C", sandbox.confdir])
    assert (cp.returncode, cp.stderr) == (0, b""), cp.stderr
    check_aliases(sandbox, src)

    os.unlink(src + ".db")
    cp = sandbox.send(["-bi"])
    assert (cp.returncode, cp.stderr) == (0, b""), cp.stderr
    check_aliases(sandbox, src)

    os.unlink(src)
    cp = sandbox.run("newaliases", ["-C", sandbox.confdir])
    assert cp.returncode == EX_NOINPUT
    assert cp.stderr.decode().startswith("newaliases: %s: cannot open" % src)


# ---- the daemon with a hash: password table -------------------------------

def hash_password_table(sb, entries):
    """Write sb.confdir/sasl_passwd (mode 600) and compile it; the
    parameter value "hash:PATH"."""
    path = os.path.join(sb.confdir, "sasl_passwd")
    write(path, "".join("%s  %s\n" % (k.replace("{relay}", sb.relay), v)
                        for k, v in entries))
    cp = sb.postern(["map", "hash:" + path])
    assert cp.returncode == 0, cp.stderr
    return "hash:" + path


def test_daemon_uses_recompiled_table(auth_sandbox):
    """posternd logs in with the password of a hash: table; after the
    table is compiled again with another login, the next message uses
    it, without a restart or a reload."""
    pw1, pw2 = new_secret(), new_secret()
    sb = auth_sandbox({"alice": pw1, "bob": pw2}, ["PLAIN"],
                      smtp_sasl_tls_security_options="noanonymous")
    sb.secrets = {pw1, pw2}
    sb.write_config(smtp_sasl_password_maps=hash_password_table(
        sb, [("{relay}", "alice:" + pw1)]))
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.auth == {"user": "alice", "mechanism": "PLAIN"}, m.auth

    path = os.path.join(sb.confdir, "sasl_passwd")
    hash_password_table(sb, [("{relay}", "bob:" + pw2)])
    time.sleep(1.2)         # the daemon stats a table at most once a second
    marker = send(sb)
    sb.wait_log(r"sent", count=2)
    msgs = [x for x in sb.smarthost.messages if marker.encode() in x.data]
    assert len(msgs) == 1, sb.smarthost.messages
    assert msgs[0].auth == {"user": "bob", "mechanism": "PLAIN"}, msgs[0].auth
    assert sb.log_lines(r"sasl_passwd\.db changed, opened again")

    # Edited but not compiled: one warning with the command to run.
    future = time.time() + 100
    os.utime(path, (future, future))
    time.sleep(1.2)
    send(sb)
    sb.wait_log(r"sent", count=3)
    stale = sb.log_lines(r"sasl_passwd\.db is older than its source")
    assert len(stale) == 1, sb.log_text()
    assert "run: postern map hash:%s" % path in stale[0]
    no_secret_leaked(sb)


def test_daemon_keeps_mail_without_db(auth_sandbox):
    """With the .db and its source missing, posternd starts and keeps the
    mail: deferred, the log names the file and the command that compiles
    it; once the table is compiled, a flush delivers it. (With the source
    there, the daemon reads it as text: test_daemon_reads_source_without_db.)
    """
    pw = new_secret()
    sb = auth_sandbox({"alice": pw}, ["PLAIN"],
                      smtp_sasl_tls_security_options="noanonymous")
    sb.secrets = {pw}
    path = os.path.join(sb.confdir, "sasl_passwd")
    sb.write_config(smtp_sasl_password_maps="hash:" + path)
    sb.start_daemon()
    marker = send(sb)
    qid, line = _deferred(sb)
    assert "cannot open %s.db: No such file or directory" % path in line
    assert "compile it with: postern map hash:%s" % path in line
    assert sb.smarthost.messages == []
    sb.wait(lambda: sb.find_qid(qid) == ["deferred"], what="deferred")

    write(path, "%s alice:%s\n" % (sb.relay, pw))
    assert sb.postern(["map", "hash:" + path]).returncode == 0
    time.sleep(1.2)
    assert sb.postern(["flush"]).returncode == 0
    m = delivered(sb, marker)
    assert m.auth == {"user": "alice", "mechanism": "PLAIN"}, m.auth
    no_secret_leaked(sb)


def test_daemon_reads_source_without_db(auth_sandbox):
    """sasl_passwd written but not compiled: the login comes from the
    text at once, and the log says once which command compiles it."""
    pw = new_secret()
    sb = auth_sandbox({"alice": pw}, ["PLAIN"],
                      smtp_sasl_tls_security_options="noanonymous")
    sb.secrets = {pw}
    path = os.path.join(sb.confdir, "sasl_passwd")
    write(path, "%s alice:%s\n" % (sb.relay, pw))
    sb.write_config(smtp_sasl_password_maps="hash:" + path)
    sb.start_daemon()
    m = delivered(sb, send(sb))
    assert m.auth == {"user": "alice", "mechanism": "PLAIN"}, m.auth
    lines = sb.log_lines("until then the lookups read %s as text"
                         % re.escape(path))
    assert len(lines) == 1, sb.log_text()
    assert "compile it with: postern map hash:%s" % path in lines[0]
    no_secret_leaked(sb)


def _deferred(sb):
    """(qid, line) of the first status=deferred line."""
    rx = r"\]: ([0-9A-F]+): to=<bob@example.com>, .*status=deferred \("
    line = sb.wait_log(rx)[0]
    return re.search(rx, line).group(1), line


def test_world_readable_db_is_refused(auth_sandbox):
    """A .db that every user can read makes posternd refuse to start,
    naming the .db and the chmod that fixes it."""
    pw = new_secret()
    sb = auth_sandbox({"alice": pw}, ["PLAIN"],
                      smtp_sasl_tls_security_options="noanonymous")
    sb.write_config(smtp_sasl_password_maps=hash_password_table(
        sb, [("{relay}", "alice:" + pw)]))
    db = os.path.join(sb.confdir, "sasl_passwd.db")
    os.chmod(db, 0o644)
    p = sb.start_daemon(wait_ready=False)
    assert p.wait(30) == EX_CONFIG
    sb.daemon = None
    text = sb.log_text()
    assert "%s is readable by every user (mode 0644)" % db in text, text
    assert "chmod o-rwx %s" % db in text
    os.chmod(db, 0o600)
    sb.start_daemon()
    delivered(sb, send(sb))


def test_check_reports_stale_and_missing_tables(sandbox):
    """postern check names a .db older than its source, and a missing
    one, with the command to run; the relay test still runs."""
    src = write(os.path.join(sandbox.confdir, "tls_policy"),
                "[127.0.0.1]:%d none\n" % sandbox.smarthost.port)
    assert pmap(sandbox, "hash:" + src)[0] == 0
    sandbox.write_config(smtp_tls_policy_maps="hash:" + src)
    cp = sandbox.postern(["check"])
    assert cp.returncode == 0, cp.stdout
    assert b"tables:" not in cp.stdout

    future = time.time() + 100
    os.utime(src, (future, future))
    cp = sandbox.postern(["check"])
    out = cp.stdout.decode()
    assert cp.returncode == 0, out
    assert re.search(r"tables: +smtp_tls_policy_maps: hash:%s: %s\.db is "
                     r"older than its source %s; run: postern map hash:%s"
                     % ((re.escape(src),) * 4), out), out
    assert "result:" in out

    os.unlink(src + ".db")
    out = sandbox.postern(["check"]).stdout.decode()
    assert ("tables:       smtp_tls_policy_maps: hash:%s: cannot open "
            "%s.db: No such file or directory; compile it with: postern "
            "map hash:%s" % (src, src, src)) in out, out
