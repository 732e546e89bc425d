"""netns.py - run a test scenario in its own network, mount and PID
namespaces, so that it can use real host names and real port numbers
(25, 465, 587) without touching the machine it runs on.

    from netns import run_in_netns

    def scenario(bins, root):
        ...                       # runs as root, inside the namespaces
        return something          # picklable

    def test_x(bins, tmp_path):
        v = run_in_netns(scenario, bins, str(tmp_path),
                         hosts={"mail.isp.example": "127.0.0.2"})

What the scenario finds there:
  network   a new network namespace with only the loopback interface, up:
            every address of 127.0.0.0/8 (and ::1) is local, any port may
            be bound, and nothing reaches the outside world. (With no
            other interface, getaddrinfo with AI_ADDRCONFIG finds nothing
            at all, as glibc ignores loopback addresses for it: getent
            ahosts fails here; postern's resolver calls do not use it.)
  /etc/hosts        "localhost" and the hosts= entries (name: address, or
                    name: [addresses]), bind-mounted over the real file.
  /etc/resolv.conf  with nameserver=True (the default): "nameserver
                    127.0.0.1" with short timeouts, for test/dnsserver.py
                    (which the scenario starts itself); with False, the
                    machine's file, whose servers are unreachable here.
  /etc/nsswitch.conf  "hosts: files dns", so that no other name service
                    (systemd-resolved, mDNS, nscd) answers for the tests.
  processes a new PID namespace: when the scenario returns or fails, every
            process it started (posternd, its workers, anything) is
            killed by the kernel. Nothing outlives the test.
The file system is otherwise the machine's: the test's tmp_path is the
same directory inside and out, so files written there stay for the test
to look at afterwards. Mounts made inside stay inside (private
propagation).

How: os.fork() a child that unshare()s (ctypes) CLONE_NEWNS and
CLONE_NEWNET, makes every mount private (mount --make-rprivate /), brings
lo up (ip link set lo up), bind-mounts the files, then unshares
CLONE_NEWPID and forks the namespace's init: a small reaper (PID 1, which
reaps the orphans a daemon leaves) whose only child runs fn(*args, **kw)
and sends back the return value, or the exception with its traceback
text, through a pipe (pickle). The test then returns that value, or
raises: an AssertionError or other exception with the scenario's
traceback in its message, pytest.fail and pytest.skip as such. The
children leave with os._exit: pytest's own clean-up never runs twice.
Every child dies with its parent (PR_SET_PDEATHSIG), so a test that is
interrupted (the time_limit alarm, ^C) takes the whole namespace with it;
the scenario itself gets the alarm a few seconds earlier, so that its
finally: blocks still run and its failure says where it was.

run_in_netns skips the test (pytest.skip) when not run as root or when
the kernel refuses the namespaces (a container without CAP_SYS_ADMIN);
it fails when ip(8) (iproute2) is missing.

Call it before the test starts threads of its own (a fixture's
smarthost, say): fork() copies only the calling thread. Everything the
scenario needs (smarthosts, DNS server, sandboxes) is made inside it.
"""

import ctypes
import os
import pickle
import select
import shutil
import signal
import sys
import tempfile
import traceback

import pytest

__all__ = ["run_in_netns", "NetnsError"]

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1

RESOLV_CONF = ("nameserver 127.0.0.1\n"
               # A DNS server in a Python thread answers in well under a
               # second; a dropped query should not hold a test long.
               "options timeout:2 attempts:2\n")

# The scenario's own alarm comes this much before the test's.
ALARM_MARGIN = 8


class NetnsError(Exception):
    """The namespace could not be set up, or its child died without
    sending a result."""


class ChildTraceback(Exception):
    """The traceback of an exception raised inside the namespace (shown
    as the cause of the exception raised in the test)."""


_libc = None


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                ctypes.c_char_p, ctypes.c_ulong,
                                ctypes.c_void_p]
        _libc.unshare.argtypes = [ctypes.c_int]
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong,
                                ctypes.c_ulong, ctypes.c_ulong,
                                ctypes.c_ulong]
    return _libc


def _oserror(what):
    e = ctypes.get_errno()
    return OSError(e, "%s: %s" % (what, os.strerror(e)))


def _unshare(flags, what):
    if _lib().unshare(flags) != 0:
        raise _oserror("unshare(%s)" % what)


def _mount(source, target, fstype, flags):
    enc = (lambda s: None if s is None else s.encode())
    if _lib().mount(enc(source), enc(target), enc(fstype), flags, None) != 0:
        raise _oserror("mount %s on %s" % (source or fstype, target))


def _die_with_parent():
    """SIGKILL when the parent goes; and not born an orphan already."""
    ppid = os.getppid()
    _lib().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != ppid:
        os._exit(70)


def _hosts_text(hosts):
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost"]
    for name, addrs in (hosts or {}).items():
        if isinstance(addrs, str):
            addrs = [addrs]
        for a in addrs:
            lines.append("%s\t%s" % (a, name))
    return "\n".join(lines) + "\n"


def _nsswitch_text():
    """The machine's nsswitch.conf with "hosts: files dns"."""
    try:
        with open("/etc/nsswitch.conf") as f:
            old = f.read().splitlines()
    except FileNotFoundError:
        old = []
    out = [l for l in old if not l.strip().startswith("hosts:")]
    out.append("hosts: files dns")
    return "\n".join(out) + "\n"


def _bind(src, target):
    if not os.path.exists(target):
        raise NetnsError("%s does not exist (a dangling symbolic link?): "
                         "there is nothing to mount the test's copy on"
                         % target)
    _mount(src, target, None, MS_BIND)


def _setup(files, nameserver):
    """In the first child: the namespaces and the files. Raises
    pytest.skip's exception when the kernel says no."""
    try:
        _unshare(CLONE_NEWNS | CLONE_NEWNET, "CLONE_NEWNS|CLONE_NEWNET")
    except OSError as e:
        pytest.skip("cannot make network namespaces here: %s" % e)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    ip = shutil.which("ip") or "/usr/sbin/ip"
    if not os.path.exists(ip):
        raise NetnsError("ip(8) is missing: install iproute2 (run "
                         "scripts/install-deps as root)")
    pid = os.fork()
    if pid == 0:
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.execv(ip, [ip, "link", "set", "lo", "up"])
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise NetnsError("ip link set lo up failed (status %d)" %
                         os.waitstatus_to_exitcode(status))
    _bind(files["hosts"], "/etc/hosts")
    _bind(files["nsswitch.conf"], "/etc/nsswitch.conf")
    if nameserver:
        _bind(files["resolv.conf"], "/etc/resolv.conf")
    # A running nscd would answer from the machine's view of names.
    for d in ("/run/nscd", "/var/run/nscd"):
        if os.path.isdir(d) and not os.path.islink(d):
            _mount("tmpfs", d, "tmpfs", 0)
    try:
        _unshare(CLONE_NEWPID, "CLONE_NEWPID")
    except OSError as e:
        pytest.skip("cannot make a PID namespace here: %s" % e)


def _send(w, obj):
    data = pickle.dumps(obj)
    view = memoryview(data)
    while view:
        n = os.write(w, view)
        view = view[n:]


def _error_record(exc):
    """What the parent needs to raise exc again."""
    tb = "".join(traceback.format_exception(type(exc), exc,
                                            exc.__traceback__))
    try:
        blob = pickle.dumps(exc)
        pickle.loads(blob)
    except Exception:
        blob = None
    kind = "error"
    if isinstance(exc, pytest.skip.Exception):
        kind = "skip"
    elif isinstance(exc, pytest.fail.Exception):
        kind = "fail"
    return (kind, type(exc).__name__, str(exc), tb, blob)


def _flush():
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:
            pass


def _scenario(w, alarm, fn, args, kw):
    """The namespace's second process (PID 2): run fn, send the result."""
    code = 0
    try:
        _die_with_parent()
        if alarm > 0:
            signal.alarm(alarm)
        value = fn(*args, **kw)
        signal.alarm(0)
        _send(w, ("ok", value))
    except BaseException as e:
        signal.alarm(0)
        code = 1
        try:
            _send(w, _error_record(e))
        except BaseException:
            code = 2
    _flush()
    os._exit(code)


def _init(w, alarm, fn, args, kw):
    """The namespace's init (PID 1): start the scenario, reap every
    orphan until the scenario ends, then leave (the kernel kills what
    is left). Exit status: the scenario's, 128 + signal if killed."""
    code = 70
    try:
        _die_with_parent()
        # /proc of this PID namespace, so that ps and /proc/PID agree with
        # the PIDs the scenario sees (best effort: some containers forbid
        # it, and nothing here depends on it).
        try:
            _mount("proc", "/proc", "proc", 0)
        except OSError:
            pass
        pid = os.fork()
        if pid == 0:
            _scenario(w, alarm, fn, args, kw)
        os.close(w)
        while True:
            try:
                done, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if done == pid:
                code = os.waitstatus_to_exitcode(status)
                code = 128 - code if code < 0 else code
                break
    finally:
        _flush()
        os._exit(code)


def _first_child(w, files, nameserver, alarm, fn, args, kw):
    """Set the namespaces up, start their init, wait for it."""
    code = 70
    try:
        _die_with_parent()
        _setup(files, nameserver)
        pid = os.fork()
        if pid == 0:
            _init(w, alarm, fn, args, kw)
        os.close(w)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
    except BaseException as e:
        try:
            _send(w, _error_record(e))
        except BaseException:
            pass
    finally:
        _flush()
        os._exit(code)


def _read_all(r):
    chunks = []
    while True:
        select.select([r], [], [])
        chunk = os.read(r, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _raise(rec):
    kind, name, text, tb, blob = rec
    where = "\n\n--- raised in the network namespace ---\n" + tb
    if kind == "skip":
        pytest.skip(text)
    if kind == "fail":
        pytest.fail(text + where, pytrace=False)
    exc = None
    if blob is not None:
        try:
            exc = pickle.loads(blob)
        except Exception:
            exc = None
    if isinstance(exc, AssertionError) or (exc is None and
                                           name == "AssertionError"):
        raise AssertionError(text + where)
    if exc is None:
        raise NetnsError("%s: %s%s" % (name, text, where))
    raise exc from ChildTraceback(tb)


def run_in_netns(fn, *args, hosts=None, nameserver=True, **kw):
    """fn(*args, **kw) inside new network, mount and PID namespaces (see
    the module docstring); its return value, or its exception raised
    here."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    tmp = tempfile.mkdtemp(prefix="postern-netns.")
    files = {"hosts": _hosts_text(hosts), "resolv.conf": RESOLV_CONF,
             "nsswitch.conf": _nsswitch_text()}
    for name, text in files.items():
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        files[name] = path
    # What is left of the test's alarm (time_limit in conftest.py).
    left = signal.alarm(0)
    if left:
        signal.alarm(left)
    alarm = max(left - ALARM_MARGIN, 1) if left else 0
    _flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _first_child(w, files, nameserver, alarm, fn, args, kw)
    os.close(w)
    status = None
    try:
        data = _read_all(r)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(r)
        if status is None:
            # Interrupted (the alarm, ^C): the namespace goes with it.
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
        shutil.rmtree(tmp, ignore_errors=True)
    if not data:
        raise NetnsError("the namespace's processes ended without a result "
                         "(exit status %d); see the captured output" %
                         os.waitstatus_to_exitcode(status))
    rec = pickle.loads(data)
    if rec[0] == "ok":
        return rec[1]
    _raise(rec)
