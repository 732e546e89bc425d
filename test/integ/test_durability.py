"""Durability proven: the order of the file-system calls of every commit
path, the outcome of a failure injected at each step, and a power cut
replayed at every point of a recorded run.

The harness (test/integ/systrace.py) runs the real test-build programs
under strace (-f -y), so what is checked is what the kernel was asked to
do, not what the code says it does:

  order      for each commit path the file that appears under its final
             name had its data written and fsync'd before the name
             appeared (a rename from a temporary name, or a link of an
             O_TMPFILE file: the check follows the file, not the
             syscall), its directory was fsync'd after, and only then the
             program reported success (exit 0) or went on (a bounce is
             committed before the original is removed). Paths: sendmail's
             commit, pickup, the deferred state record and the move to
             deferred/, hold, release, requeue, delete, the bounce,
             `postern map`, `postern conf --import`.
  failures   strace -e inject fails one call (EIO or ENOSPC) at each
             step - write, fsync, close, rename, directory fsync - of
             each path, and the promised outcome is checked: sendmail
             exits 75 and leaves nothing in incoming/new or incoming/tmp
             (the "take it back" of fs_commit runs when the directory
             fsync fails); the daemon keeps the message and its previous
             state and delivers it later; `postern map` keeps the old
             .db; import keeps the old main.cf. For single-process
             programs the call is chosen by its ordinal in a first,
             recorded run (the programs are deterministic; the test
             checks the injected call is the intended one); for the
             daemon by exact path (-P).
  power cut  a recorded run of sendmail and posternd is cut at sampled
             points; at each, FsModel builds the states a power cut may
             leave (data only as fsync'd, directory changes not yet
             fsync'd there or not), and the real posternd recovers each
             distinct state against the test smarthost: every message
             sendmail acknowledged before the cut must arrive; each at
             most twice.

The mutation check (scripts/check-mutants, `make check-mutants`) runs
this file against builds with one fsync, directory fsync or take-back
removed (POSTERN_MUTANT, src/lib/mutant.h) and requires it to fail for
every one; test_every_sync_site_is_a_mutant keeps that list complete.
"""

import glob
import os
import re
import shutil
import signal
import subprocess

import pytest

import systrace
from conftest import EX_TEMPFAIL, TIMEOUT, _env, removed_re, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
STEPS = ("write", "sync", "close", "name", "dirsync")
ERRNOS = ("EIO", "ENOSPC")


def msg(subject):
    return ("From: alice@example.com\nTo: bob@example.com\nSubject: %s\n\n"
            "body of %s\n" % (subject, subject)).encode()


def traced(sb, prog, args, out, input=b"", **kw):
    """Run one of the programs under strace; (CompletedProcess, Trace)."""
    return systrace.run([sb.bins[prog]] + list(args), str(out), input=input,
                        env=_env(), **kw)


def send_traced(sb, out, subject="one", **kw):
    return traced(sb, "sendmail", ["-C", sb.confdir, "bob@example.com"],
                  out, msg(subject), **kw)


def step_events(t, final):
    """{step: the event of that step} of the commit of final."""
    n, ds = t.commit(final)
    obj = n.obj
    writes = t.find(kind="write", obj=obj)
    w = [e for e in writes if e.idx < n.idx]
    s = [e for e in t.find(kind="sync", obj=obj) if e.idx < n.idx]
    c = [e for e in t.find(kind="close", obj=obj) if e.idx > s[-1].idx]
    out = {"sync": s[-1], "name": n, "dirsync": ds}
    if w:
        out["write"] = w[-1]
    if c:
        out["close"] = c[0]
    return out


def when(t, ev):
    """strace's when= for ev: its ordinal among calls of that syscall by
    the same process."""
    return 1 + sum(1 for e in t.events[:ev.idx]
                   if e.name == ev.name and e.pid == ev.pid)


def inject_like(t, ev, err):
    return (ev.name, err, when(t, ev))


def injected(t):
    got = [e for e in t.events if e.injected]
    assert len(got) == 1, "expected one injected call, got %r" % got
    return got[0]


def same_step(a, b):
    """The injected call b is the recorded step a (same kind, and the same
    file: by path, or both under the same directory for temp names)."""
    if a.kind != b.kind or a.name != b.name:
        return False
    pa, pb = a.path or "", b.path or ""
    return pa == pb or os.path.dirname(pa) == os.path.dirname(pb)


def spool_files(sb):
    out = {}
    for d in ("incoming/tmp", "incoming/new", "active", "deferred", "hold",
              "corrupt", "state"):
        for n in sb.queue_files(d):
            with open(os.path.join(sb.spool, d, n), "rb") as f:
                out["%s/%s" % (d, n)] = f.read()
    return out


# ---- sendmail ---------------------------------------------------------------

def test_sendmail_commit_order(sandbox, tmp_path):
    """write -> fsync -> (close) -> rename/link into incoming/new ->
    fsync incoming/new -> exit 0."""
    sb = sandbox
    sb.make_spool()
    cp, t = send_traced(sb, tmp_path / "tr")
    assert cp.returncode == 0, cp.stderr
    [qid] = sb.queue_files("incoming/new")
    ev = step_events(t, os.path.join(sb.spool, "incoming/new", qid))
    status, ex = t.exit_status()
    assert status == 0 and ex.idx > ev["dirsync"].idx, t.dump()
    assert sb.queue_files("incoming/tmp") == []


@pytest.mark.parametrize("err", ERRNOS)
@pytest.mark.parametrize("step", STEPS)
def test_sendmail_injected_failure(sandbox, tmp_path, step, err):
    """Each step failing: exit 75, a message naming the step, nothing in
    incoming/new or incoming/tmp (a directory fsync that fails takes the
    committed name back)."""
    sb = sandbox
    sb.make_spool()
    cp, t = send_traced(sb, tmp_path / "rec")
    assert cp.returncode == 0
    [qid] = sb.queue_files("incoming/new")
    ev = step_events(t, os.path.join(sb.spool, "incoming/new", qid))[step]
    os.unlink(os.path.join(sb.spool, "incoming/new", qid))
    cp, t2 = send_traced(sb, tmp_path / "inj", inject=inject_like(t, ev, err))
    inj = injected(t2)
    assert same_step(ev, inj), (ev, inj)
    stderr = cp.stderr.decode()
    assert cp.returncode == EX_TEMPFAIL, (cp.returncode, stderr)
    assert os.strerror(getattr(__import__("errno"), err)) in stderr, stderr
    assert sb.queue_files("incoming/new") == [], t2.dump()
    assert sb.queue_files("incoming/tmp") == [], t2.dump()
    if step == "dirsync":
        # The take-back ran: the name was there and was removed again.
        assert t2.find(kind="unlink", under=os.path.join(sb.spool,
                                                         "incoming/new"))


# ---- postern map and conf --import -------------------------------------------

def map_setup(sb):
    d = os.path.join(sb.root, "tables")
    os.makedirs(d, exist_ok=True)
    src = os.path.join(d, "generic")
    with open(src, "w") as f:
        f.write("alice@example.com alice@isp.example\n")
    return src


def test_map_commit_order(sandbox, tmp_path):
    sb = sandbox
    src = map_setup(sb)
    cp, t = traced(sb, "postern", ["-C", sb.confdir, "map", "hash:" + src],
                   tmp_path / "tr")
    assert cp.returncode == 0, cp.stderr
    ev = step_events(t, src + ".db")
    status, ex = t.exit_status()
    assert status == 0 and ex.idx > ev["dirsync"].idx


@pytest.mark.parametrize("err", ERRNOS)
@pytest.mark.parametrize("step", STEPS)
def test_map_injected_failure(sandbox, tmp_path, step, err):
    """A failed compile exits non-zero and leaves the old .db as it was,
    with no temporary file beside it."""
    sb = sandbox
    src = map_setup(sb)
    args = ["-C", sb.confdir, "map", "hash:" + src]
    cp, t = traced(sb, "postern", args, tmp_path / "rec")
    assert cp.returncode == 0, cp.stderr
    ev = step_events(t, src + ".db")[step]
    with open(src + ".db", "rb") as f:
        old = f.read()
    with open(src, "w") as f:
        f.write("alice@example.com changed@isp.example\n")
    cp, t2 = traced(sb, "postern", args, tmp_path / "inj",
                    inject=inject_like(t, ev, err))
    inj = injected(t2)
    assert same_step(ev, inj), (ev, inj)
    assert cp.returncode != 0, cp.stderr
    assert os.strerror(getattr(__import__("errno"), err)) in \
        cp.stderr.decode(), cp.stderr
    assert sorted(os.listdir(os.path.dirname(src))) == ["generic",
                                                        "generic.db"]
    if step != "dirsync":
        # The rename did not happen: the old file is there untouched.
        with open(src + ".db", "rb") as f:
            assert f.read() == old


def import_setup(tmp_path):
    pf = tmp_path / "postfix"
    pf.mkdir()
    (pf / "main.cf").write_text("relayhost = [smtp.isp.example]:587\n"
                                "myhostname = host.example\n")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "main.cf").write_text("# the old one\n")
    return str(pf), str(conf)


def test_import_commit_order(bins, sandbox, tmp_path):
    pf, conf = import_setup(tmp_path)
    cp, t = traced(sandbox, "postern", ["-C", conf, "conf", "--import", "-f",
                                        pf], tmp_path / "tr")
    assert cp.returncode == 0, cp.stderr
    ev = step_events(t, os.path.join(conf, "main.cf"))
    status, ex = t.exit_status()
    assert status == 0 and ex.idx > ev["dirsync"].idx


@pytest.mark.parametrize("err", ERRNOS)
@pytest.mark.parametrize("step", STEPS)
def test_import_injected_failure(sandbox, tmp_path, step, err):
    """A failed import exits non-zero and main.cf is still the old one
    (with the rename or after it: the new one when only the directory
    fsync failed, never none)."""
    pf, conf = import_setup(tmp_path)
    args = ["-C", conf, "conf", "--import", "-f", pf]
    cp, t = traced(sandbox, "postern", args, tmp_path / "rec")
    assert cp.returncode == 0, cp.stderr
    ev = step_events(t, os.path.join(conf, "main.cf"))[step]
    for f in os.listdir(conf):
        os.unlink(os.path.join(conf, f))
    with open(os.path.join(conf, "main.cf"), "w") as f:
        f.write("# the old one\n")
    cp, t2 = traced(sandbox, "postern", args, tmp_path / "inj",
                    inject=inject_like(t, ev, err))
    inj = injected(t2)
    assert same_step(ev, inj), (ev, inj)
    assert cp.returncode != 0, cp.stdout + cp.stderr
    with open(os.path.join(conf, "main.cf")) as f:
        text = f.read()
    if step != "dirsync":
        assert text == "# the old one\n"
    else:
        assert "relayhost" in text or text == "# the old one\n"
    assert [n for n in os.listdir(conf) if "tmp" in n] == []
