"""systrace.py - record and fail the file-system calls of postern's real
programs (strace), and model what a power cut would leave of them.

Why strace, and not an LD_PRELOAD interposer or seccomp user
notification: the programs under test are the ASan/UBSan builds, whose
runtime intercepts libc itself (an interposer would have to be preloaded
after libasan and would miss calls made through the sanitizer's own
wrappers); strace sees the real system calls of the real binaries, gives
every descriptor's path (-y), follows the daemon's workers (-f), and
fails one chosen call with a chosen errno (-e inject=...:error=EIO:when=N)
without a line of test code in the programs. Its cost (ptrace stops) only
matters for the few hundred calls a test makes. LeakSanitizer cannot run
under ptrace, so traced programs run with detect_leaks=0; the same tests
untraced keep the leak checks elsewhere in the suite.

Three things are offered:
  run(cmd, ...)        run a command under strace, return (CompletedProcess
                       or Popen, Trace)
  Trace                the parsed events, in order: pid, syscall, the paths
                       it named (descriptors resolved by -y), result, and
                       "obj", the identity of the file written or named
                       (so a rename is matched to the writes and fsync of
                       the same file, whether it was created under a
                       temporary name or with O_TMPFILE and linkat)
  Trace.commit(path)   the semantic commit check: the file that appears
                       under path had its data written and fsync'd before
                       the name appeared, and the directory was fsync'd
                       after; returns the indexes so that a test can order
                       it against other events (exit 0, an unlink)
  FsModel              replays a trace's metadata and data operations and
                       builds what a power cut at event k may leave: data
                       only as of the file's last fsync, directory entries
                       changed since the directory's last fsync either
                       there or not (each pending change on its own; a
                       rename is atomic, as in every journaling file
                       system, and durable once either directory is
                       fsync'd after it)
"""

import os
import re
import subprocess

STRACE = "/usr/bin/strace"

# The calls that change or commit files, and exit (the acknowledgement).
SYSCALLS = ("open,openat,creat,write,pwrite64,writev,pwritev,pwritev2,"
            "fsync,fdatasync,close,rename,renameat,renameat2,link,linkat,"
            "unlink,unlinkat,exit_group")

_LINE = re.compile(r"^(\d+) +(?:(\d+\.\d+) +)?(.*)$")
_CALL = re.compile(r"^(\w+)\((.*)\) += (-?\d+|\?)(?:<([^>]*)>)?"
                   r"(?: (E[A-Z0-9]+) \([^)]*\))?( \(INJECTED\))?")
_UNFINISHED = re.compile(r"^(.*) <unfinished \.\.\.>$")
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")


def env_for_trace(env):
    """The sanitizer settings for a traced program: LeakSanitizer refuses
    to run under ptrace."""
    e = dict(env)
    e["ASAN_OPTIONS"] = "detect_leaks=0:halt_on_error=1:abort_on_error=0"
    return e


def strace_args(out, inject=None, paths=(), timestamps=False, data=False):
    """strace's command line. inject: (syscall, errno name, when) to fail
    the when-th matching call (counted per process, among the calls that
    pass the paths filter); paths: strace -P filters (exact paths, a
    descriptor matches by its path, a rename by its OLD name only: strace
    6.1); data: whole write buffers in hex."""
    a = [STRACE, "-f", "-qq", "-y", "-o", out, "-e", "trace=" + SYSCALLS,
         "-e", "signal=none"]
    if timestamps:
        a.append("-ttt")
    if data:
        a += ["-s", "1048576", "-xx"]
    else:
        a += ["-s", "0"]
    for p in paths:
        a += ["-P", p]
    if inject:
        name, err, when = inject
        a += ["-e", "inject=%s:error=%s:when=%d" % (name, err, when)]
    return a + ["--"]


def run(cmd, out, input=b"", env=None, timeout=60, **kw):
    """Run cmd to completion under strace; (CompletedProcess, Trace)."""
    cp = subprocess.run(strace_args(out, **kw) + list(cmd), input=input,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        env=env_for_trace(env or os.environ),
                        timeout=timeout)
    return cp, Trace.load(out)


def popen(cmd, out, env=None, stdout=subprocess.DEVNULL, **kw):
    """Start cmd under strace in its own session (a daemon); the caller
    stops it and loads the trace with Trace.load(out)."""
    return subprocess.Popen(strace_args(out, **kw) + list(cmd),
                            stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=subprocess.STDOUT,
                            env=env_for_trace(env or os.environ),
                            start_new_session=True)


def _split_args(s):
    """Top-level comma-separated arguments of a strace call line."""
    out, depth, cur, q, i = [], 0, [], False, 0
    while i < len(s):
        c = s[i]
        if q:
            cur.append(c)
            if c == "\\":
                cur.append(s[i + 1])
                i += 1
            elif c == '"':
                q = False
        elif c == '"':
            q = True
            cur.append(c)
        elif c in "[{(<":
            depth += 1
            cur.append(c)
        elif c in "]})>":
            depth -= 1
            cur.append(c)
        elif c == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        out.append("".join(cur).strip())
    return out


def _unquote(a):
    """The bytes of a strace string argument ("..." with \\xNN escapes)."""
    m = re.match(r'^"(.*)"(\.\.\.)?$', a, re.S)
    if not m:
        return None
    return bytes(m.group(1), "latin-1").decode("unicode_escape").encode(
        "latin-1")


def _unesc(s):
    """A path as strace -y prints it (\\xNN escapes with -xx)."""
    if s is None or "\\" not in s:
        return s
    return bytes(s, "latin-1").decode("unicode_escape")


def _fd(a):
    """(fd number or 'AT_FDCWD', its path) of a descriptor argument."""
    # An O_TMPFILE file (or an unlinked one) shows as 3</dir/#ino>(deleted).
    m = re.match(r"^(AT_FDCWD|-?\d+)(?:<(.*)>)?(?:\(deleted\))?$", a, re.S)
    if not m:
        return None, None
    return m.group(1), _unesc(m.group(2))


def _join(base, path):
    if path is None:
        return None
    if path.startswith("/") or base is None:
        return os.path.normpath(path) if path else path
    return os.path.normpath(os.path.join(base, path))


class Event:
    """One completed system call."""

    def __init__(self, idx, pid, ts, name, args, ret, fdpath, err,
                 injected):
        self.idx = idx
        self.pid = pid
        self.ts = ts
        self.name = name
        self.args = args
        self.ret = ret
        self.fdpath = fdpath        # the path of a returned descriptor
        self.err = err
        self.injected = injected
        self.ok = err is None and ret != "?" and int(ret) >= 0 \
            if name != "exit_group" else True
        self.path = None            # the file or directory it acts on
        self.src = None             # rename/link: the old name
        self.dst = None             # rename/link: the new name
        self.data = None            # write: the bytes (with data=True)
        self.obj = None             # identity of the file (see Trace)
        self.isdir = False
        self.status = None          # exit_group: the status

    @property
    def kind(self):
        """write / sync / close / name (rename, link) / unlink / open /
        exit: what the call does, whichever syscall did it."""
        n = self.name
        if n.startswith("write") or n.startswith("pwrite"):
            return "write"
        if n in ("fsync", "fdatasync"):
            return "sync"
        if n in ("rename", "renameat", "renameat2", "link", "linkat"):
            return "name"
        if n in ("unlink", "unlinkat"):
            return "unlink"
        if n in ("open", "openat", "creat"):
            return "open"
        if n == "exit_group":
            return "exit"
        return n

    def __repr__(self):
        if self.kind == "exit":
            return "#%d %d exit_group(%s)" % (self.idx, self.pid,
                                              self.status)
        what = self.path if self.dst is None else "%s -> %s" % (self.src,
                                                                self.dst)
        return "#%d %d %s(%s)%s%s" % (self.idx, self.pid, self.name, what,
                                      "" if self.ok else " " +
                                      str(self.err or self.ret),
                                      " INJECTED" if self.injected else "")


class Trace:
    """The events of one strace output file, in order (merged by
    timestamp when several files are given)."""

    def __init__(self, events):
        self.events = events
        for i, e in enumerate(events):
            e.idx = i
        self._identify()

    @classmethod
    def load(cls, *files):
        evs = []
        for f in files:
            evs += _parse_file(f)
        if len(files) > 1:
            evs.sort(key=lambda e: e.ts or 0.0)
        return cls(evs)

    def _identify(self):
        """Give every file an identity that follows it across names and
        descriptors: obj numbers, shared by the open that created it, the
        writes, fsyncs and closes of its descriptors, and the renames and
        links that named it."""
        names = {}          # path -> obj
        fds = {}            # (pid, fd) -> path, for linkat via /proc
        nobj = [0]

        def new():
            nobj[0] += 1
            return nobj[0]

        for e in self.events:
            if not e.ok:
                if e.kind in ("write", "sync", "close") and e.path:
                    e.obj = names.get(e.path)
                continue
            k = e.kind
            if k == "open":
                p = e.fdpath
                if p is None:
                    continue
                fds[(e.pid, int(e.ret))] = p
                e.path = p
                # An O_TMPFILE (or O_EXCL) open makes a new file, whatever
                # an earlier one of a reused inode number was called.
                if p not in names or any(f in e.args_text for f in (
                        "O_TRUNC", "O_TMPFILE", "O_EXCL")):
                    names[p] = new()
                e.obj = names[p]
            elif k in ("write", "sync", "close"):
                if e.path is not None:
                    if e.path not in names:
                        names[e.path] = new()
                    e.obj = names[e.path]
            elif k == "name":
                if e.src is None and getattr(e, "proc_fd", None) is not None:
                    e.src = fds.get((e.pid, e.proc_fd))
                o = names.get(e.src)
                if o is None:
                    o = names[e.src] = new()
                e.obj = o
                names[e.dst] = o
                if e.name.startswith("rename"):
                    names.pop(e.src, None)
                # A descriptor of an O_TMPFILE file now shows the new name.
            elif k == "unlink":
                e.obj = names.pop(e.path, None)

    # ---- queries --------------------------------------------------------
    def find(self, kind=None, path=None, obj=None, pid=None, start=0,
             ok=True, under=None):
        """Events matching every given criterion, from index start."""
        out = []
        for e in self.events[start:]:
            if kind is not None and e.kind != kind:
                continue
            if ok is not None and e.ok != ok:
                continue
            if path is not None and path not in (e.path, e.dst):
                continue
            if under is not None and not (
                    (e.path or "").startswith(under.rstrip("/") + "/") or
                    (e.dst or "").startswith(under.rstrip("/") + "/")):
                continue
            if obj is not None and e.obj != obj:
                continue
            if pid is not None and e.pid != pid:
                continue
            out.append(e)
        return out

    def first(self, **kw):
        r = self.find(**kw)
        return r[0] if r else None

    def dir_sync(self, d, start=0):
        """The first successful fsync of directory d at or after start."""
        d = os.path.normpath(d)
        for e in self.events[start:]:
            if e.kind == "sync" and e.ok and e.path == d:
                return e
        return None

    def commit(self, final):
        """Check the durable commit of the file that appears as final:
        written (when it has data), fsync'd after its last write and
        before the name appeared, and the directory fsync'd after it.
        Returns (naming event, directory fsync event); AssertionError
        with the trace when an order is wrong."""
        final = os.path.normpath(final)
        named = [e for e in self.events if e.kind == "name" and e.ok and
                 e.dst == final]
        created = [e for e in self.events if e.kind == "open" and e.ok and
                   e.path == final and "O_CREAT" in e.args_text]
        assert named, "%s never appeared by a rename or link; trace:\n%s" \
            % (final, self.dump())
        assert not created, "%s was created under its final name (no " \
            "temporary name, nothing atomic):\n%s" % (final, self.dump())
        n = named[-1]
        writes = [e for e in self.events[:n.idx] if e.obj == n.obj and
                  e.kind == "write" and e.ok]
        syncs = [e for e in self.events[:n.idx] if e.obj == n.obj and
                 e.kind == "sync" and e.ok]
        last_w = writes[-1].idx if writes else -1
        assert any(s.idx > last_w for s in syncs), (
            "%s: the file was not fsync'd after its last write and before "
            "its name appeared (%r); trace:\n%s" % (final, n, self.dump()))
        ds = self.dir_sync(os.path.dirname(final), n.idx + 1)
        assert ds is not None, (
            "%s: directory %s never fsync'd after the rename/link; "
            "trace:\n%s" % (final, os.path.dirname(final), self.dump()))
        return n, ds

    def exit_status(self, pid=None):
        """The status of exit_group of pid (the first process when None)."""
        pid = pid if pid is not None else self.events[0].pid
        for e in self.events:
            if e.kind == "exit" and e.pid == pid:
                return e.status, e
        return None, None

    def dump(self, under=None, limit=80):
        """The events that touch files outside the system's own
        directories (the last limit of them), for assertion messages."""
        system = ("/usr/", "/lib", "/proc/", "/etc/", "/dev/", "pipe:",
                  "socket:", "anon_inode:")
        evs = [e for e in self.events if e.kind == "exit" or
               not (e.path or e.dst or "").startswith(system)]
        if under:
            evs = [e for e in evs if (e.path or e.dst or "").startswith(
                under) or e.kind == "exit"]
        return "\n".join(repr(e) for e in evs[-limit:])


def _parse_file(path):
    pending = {}
    events = []
    with open(path, "r", encoding="latin-1") as f:
        for raw in f:
            raw = raw.rstrip("\n")
            m = _LINE.match(raw)
            if not m:
                continue
            pid, ts, rest = int(m.group(1)), m.group(2), m.group(3)
            u = _UNFINISHED.match(rest)
            if u:
                pending[pid] = u.group(1)
                continue
            r = _RESUMED.match(rest)
            if r:
                rest = pending.pop(pid, r.group(1) + "(") + r.group(2)
            if rest.startswith("+++") or rest.startswith("---"):
                continue
            if rest.startswith("exit_group("):
                st = re.match(r"exit_group\((-?\d+)\)", rest)
                e = Event(0, pid, float(ts) if ts else None, "exit_group",
                          [], "0", None, None, False)
                e.status = int(st.group(1)) if st else None
                e.args_text = rest
                events.append(e)
                continue
            c = _CALL.match(rest)
            if not c:
                continue
            e = Event(0, pid, float(ts) if ts else None, c.group(1),
                      _split_args(c.group(2)), c.group(3),
                      _unesc(c.group(4)),
                      c.group(5), bool(c.group(6)))
            e.args_text = c.group(2)
            _decode(e)
            events.append(e)
    return events


def _decode(e):
    """Fill path/src/dst/data from the arguments."""
    a = e.args
    k = e.kind
    if k == "open":
        if e.name == "openat":
            _, base = _fd(a[0])
            p = _join(base, _unquote(a[1]).decode("latin-1"))
        else:
            p = _unquote(a[0]).decode("latin-1")
        e.path = p
        if e.fdpath:
            e.fdpath = os.path.normpath(e.fdpath)
        e.isdir = "O_DIRECTORY" in e.args_text
    elif k in ("write", "sync", "close"):
        _, p = _fd(a[0])
        e.path = os.path.normpath(p) if p and p.startswith("/") else p
        if k == "write" and len(a) > 1 and e.name in ("write", "pwrite64"):
            e.data = _unquote(a[1])
            if e.name == "pwrite64":
                e.offset = int(a[3]) if len(a) > 3 else None
    elif k == "name":
        if e.name in ("rename", "link"):
            e.src = _unquote(a[0]).decode("latin-1")
            e.dst = _unquote(a[1]).decode("latin-1")
        else:
            _, b1 = _fd(a[0])
            _, b2 = _fd(a[2])
            s = _unquote(a[1]).decode("latin-1")
            # linkat(fd, "", ..., AT_EMPTY_PATH): the descriptor's file.
            e.src = b1 if s == "" else _join(b1, s)
            e.dst = _join(b2, _unquote(a[3]).decode("latin-1"))
        e.src = os.path.normpath(e.src) if e.src else e.src
        e.dst = os.path.normpath(e.dst) if e.dst else e.dst
        m = re.match(r"^/proc/(?:self|\d+)/fd/(\d+)$", e.src or "")
        if m:
            # linkat of an O_TMPFILE file through /proc: the descriptor's
            # file (resolved by Trace._identify).
            e.src, e.proc_fd = None, int(m.group(1))
        e.path = e.dst
    elif k == "unlink":
        if e.name == "unlinkat":
            _, base = _fd(a[0])
            e.path = _join(base, _unquote(a[1]).decode("latin-1"))
        else:
            e.path = os.path.normpath(_unquote(a[0]).decode("latin-1"))


# ---- power cut model ------------------------------------------------------

class FsModel:
    """What a power cut after event k may leave under root (a spool).

    Data: a file's content is what its last fsync made durable (none when
    never fsync'd: empty). Names: each create, rename, link and unlink
    under root is durable once a later fsync of its directory (for a
    rename: of either directory; renames are atomic in journaling file
    systems) precedes the cut; a change not yet durable may or may not
    have happened. states(k) gives the pessimistic combinations: none of
    the pending changes, all of them, and each one alone missing."""

    def __init__(self, trace, root, initial):
        """initial: {relative path: bytes} of the files under root when
        the trace began (durable)."""
        self.trace = trace
        self.root = os.path.normpath(root)
        self.initial = dict(initial)

    def _rel(self, p):
        if p is None:
            return None
        p = os.path.normpath(p)
        if p == self.root or not p.startswith(self.root + "/"):
            return None
        return p[len(self.root) + 1:]

    def replay(self, k):
        """(durable ops, pending ops, durable data by obj) after events
        [0, k): ops are ("add", rel, obj) / ("del", rel) / ("mv", src,
        dst, obj), in order."""
        ops = []            # [op, durable flag]
        data = {}           # obj -> current bytes
        synced = {}         # obj -> bytes at last fsync
        for e in self.trace.events[:k]:
            if not e.ok:
                continue
            kd = e.kind
            if kd == "open" and e.obj is not None and not e.isdir:
                rel = self._rel(e.path)
                if rel is not None and "O_CREAT" in e.args_text:
                    ops.append([("add", rel, e.obj), False])
                if "O_TRUNC" in e.args_text:
                    data[e.obj] = b""
            elif kd == "write" and e.obj is not None and e.data is not None:
                cur = data.get(e.obj, b"")
                off = getattr(e, "offset", None)
                if off is None:
                    data[e.obj] = cur + e.data
                else:
                    cur = cur.ljust(off, b"\0")
                    data[e.obj] = cur[:off] + e.data + cur[off + len(e.data):]
            elif kd == "sync" and e.obj is not None and not self._isdir(e):
                synced[e.obj] = data.get(e.obj, b"")
            elif kd == "sync" and self._isdir(e):
                d = self._rel(e.path) if e.path != self.root else ""
                for op in ops:
                    if not op[1] and self._touches(op[0], d):
                        op[1] = True
            elif kd == "name":
                s, t = self._rel(e.src), self._rel(e.dst)
                if t is None:
                    continue
                if e.name.startswith("rename") and s is not None:
                    ops.append([("mv", s, t, e.obj), False])
                else:
                    ops.append([("add", t, e.obj), False])
            elif kd == "unlink":
                rel = self._rel(e.path)
                if rel is not None:
                    ops.append([("del", rel), False])
        return ops, synced

    @staticmethod
    def _isdir(e):
        # The spool's directories outlive the test run; its files are
        # never directories.
        return e.path is not None and os.path.isdir(e.path)

    @staticmethod
    def _touches(op, d):
        paths = op[1:3] if op[0] == "mv" else op[1:2]
        return any(os.path.dirname(p) == d for p in paths)

    def states(self, k):
        """The distinct spool states ({rel path: bytes}) a cut after the
        first k events may leave, pessimistic cases only."""
        ops, synced = self.replay(k)
        pending = [i for i, (op, dur) in enumerate(ops) if not dur]
        choices = [set(), set(pending)]
        for i in pending:
            choices.append(set(pending) - {i})
        out, seen = [], set()
        for chosen in choices:
            st = self._apply(ops, chosen, synced)
            key = tuple(sorted((p, hash(b)) for p, b in st.items()))
            if key not in seen:
                seen.add(key)
                out.append(st)
        return out

    def _apply(self, ops, chosen, synced):
        files = {p: ("init", p) for p in self.initial}
        for i, (op, dur) in enumerate(ops):
            if not dur and i not in chosen:
                continue
            if op[0] == "add":
                files[op[1]] = ("obj", op[2])
            elif op[0] == "del":
                files.pop(op[1], None)
            elif op[0] == "mv":
                if op[1] in files:
                    files[op[2]] = files.pop(op[1])
                elif op[3] is not None:
                    # The source's creation was lost but the rename, made
                    # durable, names the same inode: it has its data.
                    files[op[2]] = ("obj", op[3])
        out = {}
        for p, (how, ref) in files.items():
            out[p] = self.initial[ref] if how == "init" else \
                synced.get(ref, b"")
        return out
