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

import errno
import glob
import os
import re
import shutil
import signal

import pytest

import systrace
from conftest import EX_TEMPFAIL, TIMEOUT, _env, check_sanitizer, removed_re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
STEPS = ("write", "sync", "close", "name", "dirsync")
ERRNOS = ("EIO", "ENOSPC")


def msg(subject):
    return ("From: alice@example.com\nTo: bob@example.com\nSubject: %s\n\n"
            "body of %s\n" % (subject, subject)).encode()


def traced(sb, prog, args, out, input=b"", **kw):
    """Run one of the programs under strace; (CompletedProcess, Trace).
    A sanitizer report fails the test, as in Sandbox.run."""
    cp, t = systrace.run([sb.bins[prog]] + list(args), str(out),
                         input=input, env=_env(), **kw)
    check_sanitizer(cp.stderr.decode(errors="replace"), prog)
    return cp, t


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


def run_failing(rerun, t, ev, err):
    """rerun(inject) again with the call of event ev (of the recorded run
    t) failing with err: checks that this very call failed and that the
    program exited non-zero naming the error; (CompletedProcess, Trace)."""
    cp, t2 = rerun(inject_like(t, ev, err))
    inj = injected(t2)
    assert same_step(ev, inj), (ev, inj)
    stderr = cp.stderr.decode(errors="replace")
    assert cp.returncode != 0, stderr
    assert os.strerror(getattr(errno, err)) in stderr, stderr
    return cp, t2


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


def copy_spool(src, dst):
    """A copy of a stopped daemon's spool (its control socket left out)."""
    shutil.copytree(src, dst, symlinks=True,
                    ignore=shutil.ignore_patterns("control"))


# ---- the harness itself -----------------------------------------------------

HARNESS_PROG = r"""
import ctypes, os, sys
d, how, sync = sys.argv[1], sys.argv[2], sys.argv[3] == "sync"
libc = ctypes.CDLL(None, use_errno=True)
if how == "tmpfile":
    fd = os.open(d, os.O_WRONLY | os.O_TMPFILE, 0o640)
else:
    fd = os.open(d + "/.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
os.write(fd, b"message")
if sync:
    os.fsync(fd)
if how == "tmpfile":
    # linkat(AT_FDCWD, "/proc/self/fd/N", AT_FDCWD, d/Q1, AT_SYMLINK_FOLLOW)
    assert libc.linkat(-100, b"/proc/self/fd/%d" % fd, -100,
                       (d + "/Q1").encode(), 0x400) == 0, ctypes.get_errno()
else:
    os.close(fd)
    os.rename(d + "/.tmp", d + "/Q1")
dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
if sync:
    os.fsync(dfd)
"""


@pytest.mark.parametrize("how", ("tmpfile", "rename"))
def test_harness_follows_both_commit_forms(tmp_path, how):
    """Trace.commit follows the file, not the syscall: an O_TMPFILE file
    linked into place and a temporary file renamed both pass when synced,
    and both fail without the fsyncs; FsModel keeps the data only when it
    was synced."""
    for sync in (True, False):
        d = tmp_path / ("%s-%s" % (how, sync))
        d.mkdir()
        cp, t = systrace.run(["/usr/bin/python3", "-c", HARNESS_PROG, str(d),
                              how, "sync" if sync else "nosync"],
                             str(d) + ".tr", data=True)
        assert cp.returncode == 0, cp.stderr
        final = str(d / "Q1")
        state = systrace.FsModel(t, str(d), {}).states(len(t.events))
        if sync:
            t.commit(final)
            assert state == [{"Q1": b"message"}], state
        else:
            with pytest.raises(AssertionError):
                t.commit(final)
            assert {"Q1": b"message"} not in state, state


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
    cp, t2 = run_failing(lambda inj: send_traced(sb, tmp_path / "inj",
                                                 inject=inj), t, ev, err)
    assert cp.returncode == EX_TEMPFAIL, cp.returncode
    assert sb.queue_files("incoming/new") == [], t2.dump()
    assert sb.queue_files("incoming/tmp") == [], t2.dump()
    if step == "dirsync":
        # The take-back ran: the name was there and was removed again.
        assert t2.find(kind="unlink", under=os.path.join(sb.spool,
                                                         "incoming/new"))


# ---- postern map and conf --import ------------------------------------------

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
    run_failing(lambda inj: traced(sb, "postern", args, tmp_path / "inj",
                                   inject=inj), t, ev, err)
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
    run_failing(lambda inj: traced(sandbox, "postern", args,
                                   tmp_path / "inj", inject=inj), t, ev, err)
    with open(os.path.join(conf, "main.cf")) as f:
        text = f.read()
    if step != "dirsync":
        assert text == "# the old one\n"
    else:
        assert "relayhost" in text or text == "# the old one\n"
    assert [n for n in os.listdir(conf) if "tmp" in n] == []


# ---- hold, release, requeue, delete (postern without a daemon) --------------

_DEFERRED_CACHE = {}


def deferred_message(sb):
    """One message in deferred/ with its state record (one attempt, 451),
    made once by a real posternd and copied into later sandboxes."""
    if "spool" not in _DEFERRED_CACHE:
        sb.smarthost.data_reply = "451 4.3.0 try later"
        sb.make_spool()
        qid = sb.send_ok(["bob@example.com"], msg("ops"))
        sb.start_daemon()
        sb.wait(lambda: sb.find_qid(qid) == ["deferred"] and
                sb.queue_files("state") == [qid], what="a deferred message")
        assert sb.stop_daemon() == 0
        sb.smarthost.data_reply = None
        keep = os.path.join(os.path.dirname(sb.root), "deferred-spool")
        copy_spool(sb.spool, keep)
        _DEFERRED_CACHE.update(spool=keep, qid=qid)
        return qid
    shutil.rmtree(sb.spool, ignore_errors=True)
    copy_spool(_DEFERRED_CACHE["spool"], sb.spool)
    return _DEFERRED_CACHE["qid"]


def move_steps(t, sb, qid, src, dst):
    """The rename src/QID -> dst/QID and the fsync of dst, then of src,
    after it: fs_move's order."""
    p = lambda d: os.path.join(sb.spool, d, qid)
    mv = [e for e in t.find(kind="name") if e.src == p(src) and
          e.dst == p(dst)]
    assert mv, "no rename %s -> %s:\n%s" % (p(src), p(dst), t.dump())
    ds = t.dir_sync(os.path.join(sb.spool, dst), mv[0].idx + 1)
    ss = t.dir_sync(os.path.join(sb.spool, src), mv[0].idx + 1)
    assert ds and ss, "move %s -> %s not made durable:\n%s" % (
        src, dst, t.dump(under=sb.spool))
    return {"name": mv[0], "dirsync": ds, "dirsync_from": ss}


def unlink_steps(t, sb, d, qid):
    """The unlink of d/QID and the fsync of d after it."""
    u = t.first(kind="unlink", path=os.path.join(sb.spool, d, qid))
    assert u, "no unlink of %s/%s:\n%s" % (d, qid, t.dump())
    ds = t.dir_sync(os.path.join(sb.spool, d), u.idx + 1)
    assert ds, "unlink of %s/%s not made durable:\n%s" % (d, qid, t.dump())
    return {"unlink": u, "dirsync": ds}


def op_hold(sb, qid, t):
    return move_steps(t, sb, qid, "deferred", "hold")


def op_release(sb, qid, t):
    st = step_events(t, os.path.join(sb.spool, "state", qid))
    mv = move_steps(t, sb, qid, "hold", "deferred")
    assert st["dirsync"].idx < mv["name"].idx, t.dump(under=sb.spool)
    out = {"state_" + k: v for k, v in st.items()}
    out.update({"move_" + k: v for k, v in mv.items()})
    return out


def op_requeue(sb, qid, t):
    un = unlink_steps(t, sb, "state", qid)
    rw = step_events(t, os.path.join(sb.spool, "deferred", qid))
    assert un["dirsync"].idx < rw["name"].idx, t.dump(under=sb.spool)
    out = {"file_" + k: v for k, v in rw.items()}
    out["state_dirsync"] = un["dirsync"]
    return out


def op_delete(sb, qid, t):
    un = unlink_steps(t, sb, "deferred", qid)
    st = unlink_steps(t, sb, "state", qid)
    assert un["dirsync"].idx < st["unlink"].idx
    return {"dirsync": un["dirsync"]}


# op: (commands before it, the spool dir the message starts in, checker)
QUEUE_OPS = {
    "hold": ((), op_hold),
    "release": (("hold",), op_release),
    "requeue": ((), op_requeue),
    "delete": ((), op_delete),
}


def queue_op(sb, op, out, **kw):
    return traced(sb, "postern", ["-C", sb.confdir, op, sb.qid], out, **kw)


def prepare_op(sb, op):
    sb.qid = deferred_message(sb)
    for pre in QUEUE_OPS[op][0]:
        cp = sb.postern([pre, sb.qid])
        assert cp.returncode == 0, cp.stderr


@pytest.mark.parametrize("op", sorted(QUEUE_OPS))
def test_queue_op_order(sandbox, tmp_path, op):
    """Each change is durable (file fsync'd before its name appears, the
    directories fsync'd after each rename or unlink) before exit 0."""
    sb = sandbox
    prepare_op(sb, op)
    cp, t = queue_op(sb, op, tmp_path / "tr")
    assert cp.returncode == 0, cp.stderr
    steps = QUEUE_OPS[op][1](sb, sb.qid, t)
    status, ex = t.exit_status()
    assert status == 0 and all(ex.idx > e.idx for e in steps.values())


def queue_op_cases():
    return [("hold", s) for s in ("name", "dirsync", "dirsync_from")] + \
        [("release", s) for s in ("state_write", "state_sync", "state_close",
                                  "state_name", "state_dirsync",
                                  "move_name", "move_dirsync",
                                  "move_dirsync_from")] + \
        [("requeue", s) for s in ("state_dirsync", "file_write", "file_sync",
                                  "file_close", "file_name",
                                  "file_dirsync")]


@pytest.mark.parametrize("err", ERRNOS)
@pytest.mark.parametrize("op,step", queue_op_cases())
def test_queue_op_injected_failure(sandbox, tmp_path, op, step, err):
    """A step failing: postern exits non-zero naming the error, and the
    message is still in the spool (where it was or where it was going),
    a valid queue file, never gone or truncated; no temporary file is
    left; a daemon started afterwards delivers it unless it is on
    hold."""
    sb = sandbox
    prepare_op(sb, op)
    before = spool_files(sb)
    saved = os.path.join(str(tmp_path), "saved")
    copy_spool(sb.spool, saved)
    cp, t = queue_op(sb, op, tmp_path / "rec")
    assert cp.returncode == 0, cp.stderr
    ev = QUEUE_OPS[op][1](sb, sb.qid, t)[step]
    shutil.rmtree(sb.spool)
    copy_spool(saved, sb.spool)
    assert spool_files(sb) == before
    run_failing(lambda inj: queue_op(sb, op, tmp_path / "inj", inject=inj),
                t, ev, err)
    where = sb.find_qid(sb.qid)
    assert len(where) == 1, where
    with open(os.path.join(sb.spool, where[0], sb.qid), "rb") as f:
        assert f.read().startswith(b"POSTERN-QUEUE")
    left = [n for d in ("state", "deferred", "hold") for n in
            sb.queue_files(d) if n.startswith(".")]
    assert left == [], left
    if where[0] != "hold":
        sb.start_daemon()
        assert sb.postern(["flush"]).returncode == 0
        sb.wait_log(removed_re(sb.qid))
        assert sb.stop_daemon() == 0
        assert len(sb.smarthost.messages) == 1


# ---- the daemon: pickup, the deferred state record, the bounce --------------

def start_traced_daemon(sb, out, **kw):
    """posternd -f under strace, as Sandbox.start_daemon starts it (its
    log in sb.logfile; the sandbox kills the group at the end)."""
    log = open(sb.logfile, "ab")
    try:
        sb.daemon = systrace.popen(
            [sb.bins["posternd"], "-f", "-C", sb.confdir], str(out),
            env=_env(), stdout=log, **kw)
    finally:
        log.close()
    sock = os.path.join(sb.spool, "public", "control")
    sb.wait(lambda: os.path.exists(sock), what="posternd (traced) ready")
    return sb.daemon


def stop_traced_daemon(sb, out):
    """SIGTERM to posternd (strace follows it out); the trace."""
    p = sb.daemon
    os.killpg(p.pid, signal.SIGTERM)
    p.wait(TIMEOUT)
    sb._reap_group(p)
    sb.daemon = None
    return systrace.Trace.load(str(out))


def daemon_pid(t):
    """posternd's own pid: the first process of the trace."""
    return t.events[0].pid


def deferred_scenario(sb, out, **kw):
    """A message deferred once (451) by a traced daemon; its QID."""
    sb.smarthost.data_reply = "451 4.3.0 try later"
    sb.make_spool()
    qid = sb.send_ok(["bob@example.com"], msg("deferred"))
    start_traced_daemon(sb, out, **kw)
    sb.wait_log(r"%s: to=<bob@example.com>.*status=deferred" % qid)
    return qid


def test_daemon_deferred_state_order(sandbox, tmp_path):
    """Pickup is one rename incoming/new -> active (the file keeps its
    data, durable since sendmail); after a 4xx the state record is
    committed (written, fsync'd, renamed, state/ fsync'd) before the
    message moves to deferred/, and that move is made durable (deferred/
    then active/ fsync'd)."""
    sb = sandbox
    out = tmp_path / "tr"
    qid = deferred_scenario(sb, out)
    sb.wait(lambda: sb.find_qid(qid) == ["deferred"], what="deferred/")
    t = stop_traced_daemon(sb, out)
    pid = daemon_pid(t)
    pick = [e for e in t.find(kind="name", pid=pid) if e.src ==
            os.path.join(sb.spool, "incoming/new", qid)]
    # A rename, or a no-replace link and unlink: the same file either way.
    assert pick and pick[0].dst == os.path.join(sb.spool, "active", qid)
    st = step_events(t, os.path.join(sb.spool, "state", qid))
    mv = move_steps(t, sb, qid, "active", "deferred")
    assert pick[0].idx < st["write"].idx
    assert st["dirsync"].idx < mv["name"].idx, t.dump(under=sb.spool)


def daemon_state_cases():
    return ["state_" + s for s in STEPS] + ["move_name", "move_dirsync",
                                            "move_dirsync_from"]


def daemon_inject(sb, qid, case, err):
    """strace options that fail the step case of the deferral of qid."""
    state = os.path.join(sb.spool, "state")
    tmp = os.path.join(state, ".%s.tmp" % qid)
    ren = "rename,renameat,renameat2"
    table = {
        "state_write": ("write", tmp), "state_sync": ("fsync", tmp),
        "state_close": ("close", tmp), "state_name": (ren, tmp),
        "state_dirsync": ("fsync", state),
        # strace -P matches renameat2 by either name: the pickup's
        # incoming/new -> active/ comes first, the move to deferred/ second.
        "move_name": (ren, os.path.join(sb.spool, "active", qid), 2),
        "move_dirsync": ("fsync", os.path.join(sb.spool, "deferred")),
        "move_dirsync_from": ("fsync", os.path.join(sb.spool, "active")),
    }
    name, path, when = (table[case] + (1,))[:3]
    return dict(inject=(name, err, when), paths=(path,))


@pytest.mark.parametrize("err", ERRNOS)
@pytest.mark.parametrize("case", daemon_state_cases())
def test_daemon_deferred_injected_failure(sandbox, tmp_path, case, err):
    """A failed state write or move: one log line naming it, the message
    stays (active/ or deferred/, intact), the previous state (none) or
    the new one, no temporary file; the daemon runs on and delivers the
    message at the next try."""
    sb = sandbox
    sb.make_spool()
    qid = sb.send_ok(["bob@example.com"], msg("inj"))
    with open(os.path.join(sb.spool, "incoming/new", qid), "rb") as f:
        body = f.read()
    sb.smarthost.data_reply = "451 4.3.0 try later"
    out = tmp_path / "tr"
    start_traced_daemon(sb, out, **daemon_inject(sb, qid, case, err))
    sb.wait_log(r"%s: to=<bob@example.com>.*status=deferred" % qid)
    what = "state record" if case.startswith("state") else "deferred/"
    sb.wait_log(r"%s: cannot (write|move to) %s" % (qid, re.escape(what)))
    where = sb.find_qid(qid)
    assert len(where) == 1 and where[0] in ("active", "deferred"), where
    with open(os.path.join(sb.spool, where[0], qid), "rb") as f:
        assert f.read() == body
    assert [n for n in sb.queue_files("state") if n.startswith(".")] == []
    if case != "state_dirsync" and case.startswith("state"):
        assert sb.queue_files("state") == []
    # The next try delivers it (the injected call failed once).
    sb.smarthost.data_reply = None
    assert sb.postern(["flush"]).returncode == 0
    sb.wait_log(removed_re(qid))
    t = stop_traced_daemon(sb, out)
    assert [e for e in t.events if e.injected], "nothing was injected"
    assert [m.data.count(b"Subject: inj") for m in sb.smarthost.messages] \
        == [1]


def test_pickup_of_a_stale_state_record_order(sandbox, tmp_path):
    """A state record under the ID of a new message (an earlier message's)
    is removed and state/ fsync'd before the pickup rename: a crash
    cannot pair the record with the new message."""
    sb = sandbox
    sb.make_spool()
    qid = sb.send_ok(["bob@example.com"], msg("stale"))
    with open(os.path.join(sb.spool, "state", qid), "w") as f:
        f.write("stale\n")
    out = tmp_path / "tr"
    start_traced_daemon(sb, out)
    sb.wait_log(removed_re(qid))
    t = stop_traced_daemon(sb, out)
    un = unlink_steps(t, sb, "state", qid)
    pick = [e for e in t.find(kind="name") if e.src ==
            os.path.join(sb.spool, "incoming/new", qid)]
    assert pick and un["dirsync"].idx < pick[0].idx, t.dump(under=sb.spool)


@pytest.mark.parametrize("err", ERRNOS)
@pytest.mark.parametrize("case", ("pickup_name", "stale_dirsync"))
def test_pickup_injected_failure(sandbox, tmp_path, case, err):
    """A failed pickup (the rename, or the state/ fsync after a stale
    record's removal) leaves the message in incoming/new, logged; the
    next scan picks it up and delivers it."""
    sb = sandbox
    sb.make_spool()
    qid = sb.send_ok(["bob@example.com"], msg("pickup"))
    ren = "rename,renameat,renameat2"
    if case == "stale_dirsync":
        with open(os.path.join(sb.spool, "state", qid), "w") as f:
            f.write("stale\n")
        kw = dict(inject=("fsync", err, 1),
                  paths=(os.path.join(sb.spool, "state"),))
        line = r"%s: cannot sync state/; pickup postponed" % qid
    else:
        kw = dict(inject=(ren, err, 1),
                  paths=(os.path.join(sb.spool, "incoming/new", qid),))
        line = r"%s: cannot move incoming/new/%s to active/" % (qid, qid)
    out = tmp_path / "tr"
    start_traced_daemon(sb, out, **kw)
    sb.wait_log(line)
    assert sb.find_qid(qid) == ["incoming/new"]
    assert sb.postern(["flush"]).returncode == 0
    sb.wait_log(removed_re(qid))
    stop_traced_daemon(sb, out)
    assert len(sb.smarthost.messages) == 1


def bounce_scenario(sb, out, **kw):
    """A message whose only recipient is refused (550) under a traced
    daemon: a bounce to the sender is due."""
    sb.smarthost.rcpt_replies = {"bob@example.com": "550 5.1.1 no such user"}
    sb.make_spool()
    qid = sb.send_ok(["bob@example.com"], msg("bounced"))
    start_traced_daemon(sb, out, **kw)
    return qid


def bounce_steps(sb, t, qid):
    """The commit of the bounce (a new name in incoming/new made by the
    daemon) and the removal of the original after it."""
    pid = daemon_pid(t)
    new = [e for e in t.find(kind="name", pid=pid)
           if os.path.dirname(e.dst) == os.path.join(sb.spool, "incoming/new")
           and os.path.basename(e.dst) != qid]
    assert new, "no bounce committed:\n%s" % t.dump(under=sb.spool)
    return step_events(t, new[0].dst)


def test_bounce_commit_order(sandbox, tmp_path):
    """The notice is committed (written, fsync'd, renamed into
    incoming/new, incoming/new fsync'd) before the original is
    removed."""
    sb = sandbox
    out = tmp_path / "tr"
    qid = bounce_scenario(sb, out)
    sb.wait_log(removed_re(qid))
    sb.wait(lambda: any(m.mail_from == "" for m in sb.smarthost.messages),
            what="the bounce at the smarthost")
    t = stop_traced_daemon(sb, out)
    steps = bounce_steps(sb, t, qid)
    gone = [e for e in t.find(kind="unlink") if e.path in (
        os.path.join(sb.spool, d, qid) for d in ("active", "deferred"))]
    assert gone and steps["dirsync"].idx < gone[0].idx, \
        t.dump(under=sb.spool)


# The bounce file's write and close have no stable ordinal in the
# daemon (the self-pipe writes and closes of a worker's exit fall before
# or after them), and its temporary name is not known in advance for -P;
# they are the same fs_commit calls that sendmail's tests fail.
@pytest.mark.parametrize("err", ERRNOS)
@pytest.mark.parametrize("step", ("sync", "name", "dirsync"))
def test_bounce_injected_failure(sandbox, tmp_path, step, err):
    """The bounce's commit failing at each step: the original stays
    (with the state that says the notice is still owed), nothing is left
    in incoming/tmp or incoming/new, and the notice goes out at the next
    try; the original is removed only then."""
    sb = sandbox
    rec = tmp_path / "rec"
    qid = bounce_scenario(sb, rec)
    sb.wait_log(removed_re(qid))
    t = stop_traced_daemon(sb, rec)
    ev = bounce_steps(sb, t, qid)[step]
    # Again, in a new spool, with that call failing: the daemon's calls
    # come in the same order for the same message (checked below).
    shutil.rmtree(sb.spool)
    check_sanitizer(sb.log_text(), "posternd")
    os.unlink(sb.logfile)
    sb.smarthost.messages.clear()
    out = tmp_path / "inj"
    if step == "dirsync":
        kw = dict(inject=("fsync", err, 1),
                  paths=(os.path.join(sb.spool, "incoming/new"),))
    else:
        kw = dict(inject=inject_like(t, ev, err))
    qid = bounce_scenario(sb, out, **kw)
    sb.wait_log(r"%s: cannot queue a sender non-delivery notification" % qid)
    assert sb.find_qid(qid) in (["active"], ["deferred"])
    sb.wait(lambda: sb.queue_files("incoming/new") == [] and
            sb.queue_files("incoming/tmp") == [], what="no bounce left")
    assert sb.smarthost.messages == []
    assert sb.postern(["flush"]).returncode == 0
    sb.wait_log(removed_re(qid))
    sb.wait(lambda: any(m.mail_from == "" for m in sb.smarthost.messages),
            what="the bounce at the smarthost")
    t2 = stop_traced_daemon(sb, out)
    inj = injected(t2)
    assert same_step(ev, inj), (ev, inj)



# ---- power cut --------------------------------------------------------------
#
# dm-log-writes (a block-level write log to replay) needs the kernel's
# device mapper, which this kind of machine does not offer (`dmsetup
# targets` fails: no /dev/mapper/control); so the cut is made on the
# recorded system calls instead (systrace.FsModel): at each point, what
# was fsync'd survives and what was not may or may not.

PC_MESSAGES = 3
PC_MAX_RECOVERIES = 16


def record_power_cut_run(sb, tmp_path):
    """sendmail x3 and posternd (first attempt deferred, retried after 1 s,
    then delivered), all traced with timestamps and written data; the
    merged Trace and {sendmail pid: subject}."""
    sb.write_config(minimal_backoff_time="1s", maximal_backoff_time="2s")
    sb.make_spool()
    sb.smarthost.data_reply = "451 4.3.0 try later"
    sb.smarthost.data_reply_times = 1
    dtr = tmp_path / "daemon.tr"
    start_traced_daemon(sb, dtr, timestamps=True, data=True)
    files, senders = [str(dtr)], {}
    for i in range(PC_MESSAGES):
        out = tmp_path / ("send%d.tr" % i)
        cp, t = send_traced(sb, out, subject="pc-%d" % i, timestamps=True,
                            data=True)
        assert cp.returncode == 0, cp.stderr
        senders[t.events[0].pid] = "pc-%d" % i
        files.append(str(out))
    sb.wait(lambda: len(sb.smarthost.messages) >= PC_MESSAGES and
            not any(sb.queue_files(d) for d in ("incoming/new", "active",
                                                "deferred")),
            what="every message delivered and removed")
    p = sb.daemon
    os.killpg(p.pid, signal.SIGTERM)
    p.wait(TIMEOUT)
    sb._reap_group(p)
    sb.daemon = None
    return systrace.Trace.load(*files), senders


def subjects_at(messages, before=None):
    """{subject: how many times the relay accepted it} (before a time)."""
    out = {}
    for m in messages:
        if before is not None and m.time > before:
            continue
        s = re.search(rb"^Subject: (pc-\d+)\r?$", m.data, re.M)
        if s:
            out[s.group(1).decode()] = out.get(s.group(1).decode(), 0) + 1
    return out


def recover(sandbox_factory, relay, state):
    """Start posternd on a spool holding state, flush, wait until nothing
    is left to deliver; {subject: deliveries} at the relay."""
    rsb = sandbox_factory(smarthost=relay)
    rsb.write_config(minimal_backoff_time="1s", maximal_backoff_time="2s")
    rsb.make_spool()
    for rel, data in state.items():
        path = os.path.join(rsb.spool, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    del relay.messages[:]
    rsb.start_daemon()
    assert rsb.postern(["flush"]).returncode == 0
    rsb.wait(lambda: not any(rsb.queue_files(d) for d in (
        "incoming/new", "active", "deferred")), what="recovery done")
    assert rsb.stop_daemon() == 0
    return subjects_at(relay.messages), rsb


def test_power_cut_replay(sandbox, sandbox_factory, smarthost_factory,
                          tmp_path):
    """A power cut at every point of a recorded run (sampled, at most
    PC_MAX_RECOVERIES distinct spool states), in every pessimistic
    variant: after the real posternd recovers the spool, every message
    sendmail acknowledged (exit 0) before the cut has reached the relay,
    before the cut or after recovery, and none more than twice."""
    sb = sandbox
    t, senders = record_power_cut_run(sb, tmp_path)
    model = systrace.FsModel(t, sb.spool, {})
    exits = {e.pid: e.idx for e in t.events
             if e.kind == "exit" and e.pid in senders and e.status == 0}
    assert len(exits) == PC_MESSAGES
    states = {}         # key -> (state, [cut points])
    for k in range(1, len(t.events) + 1):
        e = t.events[k - 1]
        if not ((e.path or e.dst or "").startswith(sb.spool) or
                e.kind == "exit"):
            continue
        for st in model.states(k):
            key = tuple(sorted((p, hash(b)) for p, b in st.items()))
            states.setdefault(key, (st, []))[1].append(k)
    keys = list(states)
    if len(keys) > PC_MAX_RECOVERIES:
        step = len(keys) / PC_MAX_RECOVERIES
        keys = [keys[int(i * step)] for i in range(PC_MAX_RECOVERIES)]
    relay = smarthost_factory()
    checked = 0
    for key in keys:
        st, points = states[key]
        after, rsb = recover(sandbox_factory, relay, st)
        for k in points:
            cut = t.events[k - 1].ts
            acked = [senders[pid] for pid, i in exits.items() if i < k]
            before = subjects_at(sb.smarthost.messages, cut)
            for s in acked:
                n = before.get(s, 0) + after.get(s, 0)
                assert 1 <= n <= 2, (
                    "power cut after event %d (%r): %s acknowledged, "
                    "delivered %d time(s) before the cut and %d after "
                    "recovery; spool at the cut: %s\n%s" % (
                        k, t.events[k - 1], s, before.get(s, 0),
                        after.get(s, 0), sorted(st),
                        t.dump(under=sb.spool)))
            checked += 1
        for s, n in after.items():
            assert n <= 2, (s, n, sorted(st))
    print("power cut: %d events, %d (state, cut) pairs checked, %d distinct "
          "states, %d recovered" % (len(t.events), checked, len(states),
                                    len(keys)))


# ---- the mutation check's list ----------------------------------------------

# Every MUTANT(name) marker in src/, and the tests that must fail when
# that step is removed (a pytest -k expression; scripts/check-mutants
# runs them against the mutant build).
MUTANTS = {
    # fs_fsync_dir's fsync: every directory fsync at once.
    "dir_fsync": "sendmail_commit_order or queue_op_order",
    # fs_commit: sendmail, bounces, state records, queue files, .db, main.cf
    "commit_fsync": "sendmail_commit_order or map_commit_order or "
                    "import_commit_order or deferred_state_order or "
                    "bounce_commit_order",
    "commit_dir_fsync": "sendmail_commit_order or map_commit_order or "
                        "import_commit_order",
    "commit_takeback": "sendmail_injected_failure and dirsync",
    # (sendmail's O_TMPFILE file has no temporary name to clean up)
    "commit_cleanup": "map_injected_failure or import_injected_failure",
    # fs_move: hold, release, the move to deferred/
    "move_dir_fsync_to": "queue_op_order or deferred_state_order",
    "move_dir_fsync_from": "queue_op_order or deferred_state_order",
    # fs_remove: requeue's and delete's state record, a stale record
    "remove_dir_fsync": "queue_op_order",
    # qops_delete's own unlink + fsync
    "delete_dir_fsync": "queue_op_order",
    # pickup of a message with a stale state record
    "pickup_stale_dir_fsync": "stale_state_record_order",
}

SYNC_CALL = re.compile(r"\b(fsync|fdatasync|fs_fsync_dir|sync_file_range)\s*"
                       r"\(")


def test_every_sync_site_is_a_mutant():
    """Each fsync and directory fsync call in src/ carries a MUTANT()
    marker (on its line or the line before), each marker is in MUTANTS
    with tests to run, and each name in MUTANTS is in the source: so the
    mutation check covers every site, and a new one cannot be added
    without it."""
    found, bare = set(), []
    for path in sorted(glob.glob(os.path.join(ROOT, "src", "*", "*.c"))):
        with open(path) as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            found.update(re.findall(r"MUTANT\((\w+)\)", line))
            code = line.split("/*")[0]
            if not SYNC_CALL.search(code) or re.match(
                    r"^(int|static|\w+\s*\()", code) or \
                    code.lstrip().startswith("*"):
                continue
            near = line + (lines[i - 1] if i else "")
            if "MUTANT(" not in near:
                bare.append("%s:%d: %s" % (os.path.relpath(path, ROOT), i + 1,
                                           line.strip()))
    assert bare == [], "fsync sites without a MUTANT() marker:\n" + \
        "\n".join(bare)
    assert found == set(MUTANTS), (found ^ set(MUTANTS))
