"""A spool on a full file system: sendmail says EX_TEMPFAIL (75) and leaves
nothing behind, neither in incoming/new nor in incoming/tmp.

Done for real: a small tmpfs is mounted on the queue directory inside a
private mount namespace (unshare -m), so nothing leaks out of the test
even if it dies half way."""

import os
import shutil
import subprocess

import pytest

from conftest import EX_TEMPFAIL, SPOOL_DIRS, _env, check_sanitizer

SCRIPT = r'''
set -u
mount -t tmpfs -o size=1024k,mode=0755 postern-test "$SPOOL" || exit 90
for d in $DIRS; do mkdir -p "$SPOOL/$d" || exit 91; done
if [ "$FILL" = all ]; then
    dd if=/dev/zero of="$SPOOL/fill" bs=4096 2>/dev/null
elif [ "$FILL" != none ]; then
    dd if=/dev/zero of="$SPOOL/fill" bs=4096 count="$FILL" 2>/dev/null \
        || exit 92
fi
df -k "$SPOOL" > "$OUT/df"
"$SENDMAIL" -C "$CONF" -i bob@example.com < "$OUT/msg" \
    > "$OUT/stdout" 2> "$OUT/stderr"
echo $? > "$OUT/rc"
ls -A "$SPOOL/incoming/new" > "$OUT/new"
ls -A "$SPOOL/incoming/tmp" > "$OUT/tmp"
'''


def run_full(sb, tmp_path, fill, msg):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) from util-linux is missing")
    out = tmp_path / "out"
    out.mkdir()
    (out / "msg").write_bytes(msg)
    os.makedirs(sb.spool, exist_ok=True)
    env = _env()
    env.update(SPOOL=sb.spool, DIRS=" ".join(SPOOL_DIRS), FILL=str(fill),
               OUT=str(out), SENDMAIL=sb.bins["sendmail"], CONF=sb.confdir)
    cp = subprocess.run(["unshare", "-m", "--propagation", "private",
                         "sh", "-c", SCRIPT], env=env, timeout=120,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if cp.returncode == 90 or (cp.returncode != 0 and
                               b"unshare" in cp.stderr):
        pytest.skip("cannot mount a tmpfs here: %s" % cp.stderr.decode())
    assert cp.returncode == 0, (cp.returncode, cp.stderr)
    res = {k: (out / k).read_text() for k in
           ("rc", "new", "tmp", "stderr", "stdout", "df")}
    check_sanitizer(res["stderr"], "sendmail on a full spool")
    # The mount was private: the directory outside is untouched.
    assert os.listdir(sb.spool) == []
    return res


def test_control_empty_tmpfs_accepts(sandbox, tmp_path):
    """The same set-up without filling: mail is accepted (so the 75s below
    come from the full disk, not from the set-up)."""
    r = run_full(sandbox, tmp_path, "none", b"Subject: fits\n\nok\n")
    assert r["rc"].strip() == "0", r
    assert len(r["new"].split()) == 1 and r["tmp"] == "", r


@pytest.mark.parametrize("fill,size", [("all", 1000), (250, 200000)],
                         ids=["no-space-at-all", "space-runs-out"])
def test_full_spool_tempfail(sandbox, tmp_path, fill, size):
    body = b"".join(b"line %06d of a message that does not fit\n" % i
                    for i in range(size // 42 + 1))
    r = run_full(sandbox, tmp_path, fill,
                 b"Subject: too big for the disk\n\n" + body)
    assert r["rc"].strip() == str(EX_TEMPFAIL), r
    assert r["new"] == "", r
    assert r["tmp"] == "", r
    err = r["stderr"]
    assert len(err.splitlines()) == 1, err
    assert err.startswith("sendmail: fatal: "), err
    assert r["stdout"] == ""


def test_queue_minfree_refuses_with_the_numbers(sandbox, tmp_path):
    """queue_minfree (issue 15 item 4): sendmail refuses (75) a message
    that would leave less free space than the reserve, says how much is
    free, and leaves nothing behind; below the reserve's reach it takes
    mail as before (test_control_empty_tmpfs_accepts: the default 0)."""
    sandbox.write_config(queue_minfree="1100000")   # more than the tmpfs
    r = run_full(sandbox, tmp_path, "none", b"Subject: reserve\n\nx\n")
    assert r["rc"].strip() == str(EX_TEMPFAIL), r
    assert r["new"] == "" and r["tmp"] == "", r
    err = r["stderr"]
    assert len(err.splitlines()) == 1, err
    assert "bytes free; this message" in err, err
    assert "would leave less than queue_minfree (1100000 bytes)" in err, err
    sandbox.write_config(queue_minfree="500000")
    (tmp_path / "again").mkdir()
    r = run_full(sandbox, tmp_path / "again", "none",
                 b"Subject: reserve\n\nx\n")
    assert r["rc"].strip() == "0", r
