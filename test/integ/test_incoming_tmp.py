"""Nothing is left in incoming/tmp by a killed sendmail (issue 15 item 4).

sendmail writes its file unnamed (O_TMPFILE) and links it into
incoming/new only once it is complete and synced: a sendmail killed
while the file exists leaves no name and no blocks behind. Each kill
below lands while sendmail holds the file open (seen in /proc), which
is exactly when a named temporary file would be orphaned.
"""

import os
import signal
import subprocess
import time

from conftest import _env


def holds_spool_file(pid, tmpdir):
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(
                    tmpdir + "/"):
                return True
    except (FileNotFoundError, ProcessLookupError):
        pass
    return False


def test_killed_sendmails_leave_nothing(sandbox):
    sandbox.write_config(message_size_limit="60000000")
    sandbox.make_spool()
    tmpdir = os.path.join(sandbox.spool, "incoming", "tmp")
    line = b"x" * 99 + b"\n"
    msg = b"Subject: big\n\n" + line * 300000           # 30 MB
    kills = 0
    for _ in range(8):
        p = subprocess.Popen([sandbox.bins["sendmail"], "-C", sandbox.confdir,
                              "-i", "bob@example.com"], stdin=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=_env())
        p.stdin.write(msg)
        p.stdin.close()
        deadline = time.monotonic() + 60
        while p.poll() is None and time.monotonic() < deadline:
            if holds_spool_file(p.pid, tmpdir):
                p.send_signal(signal.SIGKILL)
                kills += 1
                break
        p.wait(60)
        assert os.listdir(tmpdir) == [], "left in incoming/tmp"
    # Every message in incoming/new is whole; the kills left no file.
    for name in os.listdir(os.path.join(sandbox.spool, "incoming", "new")):
        with open(os.path.join(sandbox.spool, "incoming", "new", name),
                  "rb") as f:
            assert f.read().endswith(line)
    print("\n%d of 8 sendmails killed while writing their file" % kills)
    assert kills > 0, "no sendmail was caught with its file open"


def test_stale_temporary_files_swept_on_every_queue_run(sandbox):
    """Where sendmail must use a named temporary file (no O_TMPFILE), a
    killed one's file is removed on the next queue run once it is an
    hour old (postern-spool(5)), not only when posternd starts; a young
    one (a sendmail still writing) is left alone."""
    sandbox.start_daemon()
    tmpdir = os.path.join(sandbox.spool, "incoming", "tmp")
    for name, age in (("111.1.1.0", 3700), ("222.2.2.0", 60)):
        with open(os.path.join(tmpdir, name), "w") as f:
            f.write("half a message")
        t = time.time() - age
        os.utime(os.path.join(tmpdir, name), (t, t))
    assert sandbox.postern(["flush"]).returncode == 0
    sandbox.wait_log(r"removed stale temporary file incoming/tmp/111\.1\.1\.0")
    assert os.listdir(tmpdir) == ["222.2.2.0"]
