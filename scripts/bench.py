"""bench.py - postern's own benchmark (what `make bench` runs).

    /usr/bin/python3 scripts/bench.py BINDIR SINKBIN [SMTP_SINK]

BINDIR holds the release programs (build/), SINKBIN is test/bench's
benchsink (a forked-per-connection C sink: plain, or STARTTLS + AUTH
PLAIN with a self-signed certificate), SMTP_SINK is Postfix's smtp-sink
(scripts/bench-deps extracts it from the Debian package without
installing Postfix; its libraries are found in ../lib/postfix). Without
SMTP_SINK the plain drain goes to benchsink too.

Everything runs in a temporary directory: a config directory, a spool,
posternd -f in the foreground, sinks on free ports of 127.0.0.1. It
measures, and prints as a table:

  enqueue      sequential sendmail invocations per second (daemon stopped)
  drain plain  N queued 2 KB messages (daemon stopped), then posternd
               starts: messages/s until the queue is empty; sessions the
               sink saw; peak RSS summed over posternd and its workers
               (as ../shared/bench counts memory), and peak PSS summed
               (shared pages counted once: what they take together)
  drain tls    the same to a STARTTLS + AUTH sink
  latency      sendmail's return to the sink's receipt, messages at a
               fixed rate, p50/p99
  idle RSS     posternd with an empty queue
  100k start   100,000 queue files (written directly in the queue format,
               each with a state record so none is due), posternd
               start to "daemon started", and its RSS then

Knobs (environment): BENCH_N (10000), BENCH_ENQ (500), BENCH_LAT_N (200),
BENCH_LAT_RATE (20), BENCH_BIG (100000), BENCH_SIZE (2048).
"""

import concurrent.futures
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

N = int(os.environ.get("BENCH_N", "10000"))
ENQ = int(os.environ.get("BENCH_ENQ", "500"))
LAT_N = int(os.environ.get("BENCH_LAT_N", "200"))
LAT_RATE = float(os.environ.get("BENCH_LAT_RATE", "20"))
BIG = int(os.environ.get("BENCH_BIG", "100000"))
SIZE = int(os.environ.get("BENCH_SIZE", "2048"))
TIMEOUT = 600


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def message(tag, seq):
    head = ("From: bench@client.bench.example\nTo: rcpt@example.com\n"
            "Subject: bench %s %d\nMessage-ID: <bench.%s.%d@bench.example>\n"
            "\n" % (tag, seq, tag, seq))
    line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n"
    body = (line * (SIZE // len(line) + 1))[:max(0, SIZE - len(head))]
    return (head + body).encode()


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    """Proportional set size: shared pages divided among their users, so
    a sum over processes is the memory they really take together."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_secs(pid):
    """User + system CPU of pid so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid):
    """Every descendant of pid: posternd's workers, and under a root
    supervisor the daemon and its workers."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...
        ppid = int(st.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    out, pending = [], [pid]
    while pending:
        for k in kids.get(pending.pop(), []):
            out.append(k)
            pending.append(k)
    return out


def total_rss_kb(pid):
    """RSS of posternd and its worker processes, summed."""
    return rss_kb(pid) + sum(rss_kb(c) for c in children(pid))


class Sampler(threading.Thread):
    """Peak summed RSS (as ../shared/bench counts it), peak summed PSS
    and peak process count, every 20 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.peak_pss = 0
        self.procs = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            kids = children(self.pid)
            total = rss_kb(self.pid) + sum(rss_kb(c) for c in kids)
            self.peak = max(self.peak, total)
            pss = pss_kb(self.pid) + sum(pss_kb(c) for c in kids)
            self.peak_pss = max(self.peak_pss, pss)
            self.procs = max(self.procs, 1 + len(kids))
            time.sleep(0.02)

    def stop(self):
        self.done.set()
        self.join()


class Bench:
    def __init__(self, bindir, sinkbin, smtp_sink, tmp):
        self.bindir = bindir
        self.sinkbin = sinkbin
        self.smtp_sink = smtp_sink
        self.tmp = tmp
        self.conf = os.path.join(tmp, "etc")
        self.spool = os.path.join(tmp, "spool")
        self.log = os.path.join(tmp, "posternd.log")
        self.daemon = None
        self.sinks = []
        os.makedirs(self.conf)
        # The modes of postern-spool(5): posternd refuses others.
        for d, mode in (("incoming/tmp", 0o1730), ("incoming/new", 0o1770),
                        ("active", 0o700), ("deferred", 0o700),
                        ("hold", 0o700), ("corrupt", 0o700),
                        ("state", 0o700), ("public", 0o755),
                        ("pid", 0o700)):
            path = os.path.join(self.spool, d)
            os.makedirs(path)
            os.chmod(path, mode)
        self.results = []

    # ---- set-up -------------------------------------------------------
    def config(self, port, tls=False):
        p = {"queue_directory": self.spool,
             "relayhost": "[127.0.0.1]:%d" % port,
             "smtp_tls_security_level": "none",
             "myhostname": "client.bench.example",
             "alias_maps": "",
             # One daemon process, no supervisor: it runs as the caller.
             "mail_owner": pwd.getpwuid(os.geteuid()).pw_name}
        if tls:
            pw = os.path.join(self.conf, "sasl_passwd")
            with open(pw, "w") as f:
                f.write("[127.0.0.1]:%d bench:benchpass\n" % port)
            os.chmod(pw, 0o600)
            # The sink's certificate is self-signed: encrypt, and say
            # explicitly that the login may go over unverified TLS.
            p.update(smtp_tls_security_level="encrypt",
                     smtp_sasl_allow_unverified_tls="yes",
                     smtp_sasl_auth_enable="yes",
                     smtp_sasl_password_maps="texthash:" + pw,
                     smtp_sasl_security_options="noanonymous")
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write("".join("%s = %s\n" % kv for kv in p.items()))

    def sendmail(self, data):
        cp = subprocess.run([os.path.join(self.bindir, "sendmail"), "-C",
                             self.conf, "-i", "rcpt@example.com"],
                            input=data, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
        if cp.returncode != 0:
            sys.exit("bench: sendmail failed: %s" % cp.stderr.decode())

    def queued(self):
        n = 0
        for d in ("incoming/new", "active", "deferred"):
            try:
                n += len(os.listdir(os.path.join(self.spool, d)))
            except FileNotFoundError:
                pass
        return n

    def start_daemon(self):
        size = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        log = open(self.log, "ab")
        t0 = time.monotonic()
        self.daemon = subprocess.Popen(
            [os.path.join(self.bindir, "posternd"), "-f", "-C", self.conf],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True)
        log.close()
        while time.monotonic() - t0 < TIMEOUT:
            with open(self.log, "rb") as f:
                f.seek(size)
                if b"daemon started" in f.read():
                    return time.monotonic() - t0
            if self.daemon.poll() is not None:
                sys.exit("bench: posternd exited; see %s" % self.log)
            time.sleep(0.005)
        sys.exit("bench: posternd did not start")

    def stop_daemon(self):
        if self.daemon is None:
            return
        os.killpg(self.daemon.pid, signal.SIGTERM)
        try:
            self.daemon.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.daemon.pid, signal.SIGKILL)
            self.daemon.wait()
        self.daemon = None

    def start_sink(self, *args, postfix=False):
        port = free_port()
        out = os.path.join(self.tmp, "sink%d.out" % port)
        if postfix:
            cmd = [self.smtp_sink, "-c", "-u", "nobody",
                   "127.0.0.1:%d" % port, "1024"]
        else:
            cmd = [self.sinkbin, "-s", out] + list(args) + [str(port)]
        env = dict(os.environ)
        if postfix:
            # Its own shared libraries, also from an extracted package.
            env["LD_LIBRARY_PATH"] = os.path.join(os.path.dirname(
                os.path.dirname(self.smtp_sink)), "lib", "postfix")
        f = open(out if postfix else out + ".log", "wb")
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                             env=env)
        f.close()
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.02)
        self.sinks.append(p)
        return p, port, out

    def sessions(self, out, postfix):
        """Sessions the sink counted (smtp-sink -c, or benchsink -s)."""
        try:
            with open(out, "rb") as f:
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            return None
        if postfix:
            found = re.findall(r"sess=(\d+)", text)
            return int(found[-1]) if found else None
        found = re.search(r"sessions (\d+)", text)
        return int(found.group(1)) if found else None

    def stop_sink(self, p):
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def result(self, name, value, unit, note=""):
        self.results.append((name, value, unit, note))
        print("  %-28s %12s %-8s %s" % (name, value, unit, note), flush=True)

    # ---- measurements -------------------------------------------------
    def enqueue(self, tag, total):
        """total messages, the first ENQ sequential and timed."""
        seq = min(ENQ, total)
        t0 = time.monotonic()
        for i in range(seq):
            self.sendmail(message(tag, i))
        dt = time.monotonic() - t0
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: self.sendmail(message(tag, i)),
                          range(seq, total)))
        return seq / dt

    def drain(self, name, tls, postfix):
        if tls:
            p, port, out = self.start_sink("-t", "-a", "bench:benchpass")
        else:
            p, port, out = self.start_sink(postfix=postfix)
        self.config(port, tls)
        rate = self.enqueue(name, N)
        time.sleep(0.1)
        # The start-up probe was a session too.
        before = self.sessions(out, postfix) or 0
        t0 = time.monotonic()
        self.start_daemon()
        sampler = Sampler(self.daemon.pid)
        sampler.start()
        while self.queued() > 0 and time.monotonic() - t0 < TIMEOUT:
            time.sleep(0.01)
        dt = time.monotonic() - t0
        left = self.queued()
        sampler.stop()
        time.sleep(0.3)
        idle = total_rss_kb(self.daemon.pid)
        self.stop_daemon()
        time.sleep(0.2)
        self.stop_sink(p)
        sess = (self.sessions(out, postfix) or 0) - before
        sink = "smtp-sink" if postfix else (
            "benchsink STARTTLS+AUTH" if tls else "benchsink")
        if left:
            self.result("drain %s" % name, "FAILED", "",
                        "%d messages left after %ds" % (left, TIMEOUT))
            return rate
        self.result("drain %s (%d msgs)" % (name, N), "%.0f" % (N / dt),
                    "msg/s", "to %s, %.2f s" % (sink, dt))
        self.result("  sessions", sess, "", "as the sink counted them")
        self.result("  peak RSS, all processes", "%.1f" % (sampler.peak /
                    1024), "MB", "up to %d processes" % sampler.procs)
        self.result("  peak PSS, all processes", "%.1f" % (
                    sampler.peak_pss / 1024), "MB",
                    "shared pages counted once")
        self.result("  idle RSS after drain", "%.1f" % (idle / 1024), "MB")
        return rate

    def latency(self):
        receipts = os.path.join(self.tmp, "receipts")
        p, port, out = self.start_sink("-r", receipts)
        self.config(port)
        self.start_daemon()
        time.sleep(0.5)
        idle = total_rss_kb(self.daemon.pid)
        sent = {}
        t0 = time.time()
        for i in range(LAT_N):
            due = t0 + i / LAT_RATE
            while time.time() < due:
                time.sleep(max(0, min(0.005, due - time.time())))
            self.sendmail(message("lat", i))
            sent["<bench.lat.%d@bench.example>" % i] = time.time()
        deadline = time.monotonic() + 60
        got = {}
        while time.monotonic() < deadline:
            if os.path.exists(receipts):
                with open(receipts) as f:
                    for line in f:
                        t, mid = line.split(None, 1)
                        got[mid.strip()] = float(t)
            if len(got) >= LAT_N:
                break
            time.sleep(0.05)
        self.stop_daemon()
        self.stop_sink(p)
        lat = sorted((got[m] - sent[m]) * 1000 for m in sent if m in got)
        if not lat:
            self.result("latency", "FAILED", "", "nothing received")
            return idle
        p50 = lat[len(lat) // 2]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        self.result("latency p50 (%d at %g/s)" % (LAT_N, LAT_RATE),
                    "%.1f" % p50, "ms", "sendmail return -> sink receipt")
        self.result("latency p99", "%.1f" % p99, "ms",
                    "%d of %d received" % (len(lat), LAT_N))
        return idle

    def big_queue(self):
        """BIG queue files + state records in deferred/, none due."""
        p, port, out = self.start_sink()
        self.config(port)
        deferred = os.path.join(self.spool, "deferred")
        state = os.path.join(self.spool, "state")
        now = time.time()
        body = message("big", 0)
        for i in range(BIG):
            qid = "B%07X" % i
            env = ("POSTERN-QUEUE 1\narrival %.6f\nuid 0\n"
                   "sender bench@client.bench.example\n"
                   "recipient rcpt%d@example.com\nsize %d\n"
                   "end-of-envelope\n" % (now, i, len(body)))
            with open(os.path.join(deferred, qid), "wb") as f:
                f.write(env.encode() + body)
            with open(os.path.join(state, qid), "w") as f:
                f.write("POSTERN-STATE 1\nattempts 1\nlast %.6f\n"
                        "rcpt 0 deferred 4.4.1 bench\nend-of-state\n" % now)
        os.sync()
        # A cold cache is not what we measure: read the files once.
        subprocess.run(["cat"] + [os.path.join(deferred, "B%07X" % i)
                                  for i in range(min(BIG, 10))],
                       stdout=subprocess.DEVNULL)
        dt = self.start_daemon()
        time.sleep(0.5)
        rss = total_rss_kb(self.daemon.pid)
        # Nothing is due: an idle daemon must not walk its table.
        cpu0 = cpu_secs(self.daemon.pid)
        time.sleep(3)
        idle_cpu = cpu_secs(self.daemon.pid) - cpu0
        self.stop_daemon()
        self.stop_sink(p)
        self.result("start-up with %d queued" % BIG, "%.2f" % dt, "s",
                    "posternd start -> \"daemon started\"")
        self.result("  RSS then", "%.1f" % (rss / 1024), "MB")
        self.result("  CPU while idle", "%.3f" % (idle_cpu / 3), "s/s",
                    "nothing due for 3 s")
        return rss

    def run(self):
        print("postern bench: %d x %d-byte messages; %s" % (
            N, SIZE, "smtp-sink " + self.smtp_sink if self.smtp_sink
            else "no smtp-sink: benchsink for the plain drain"))
        rate = self.drain("plain", False, bool(self.smtp_sink))
        self.result("enqueue, sequential", "%.0f" % rate, "msg/s",
                    "sendmail invocations, daemon stopped")
        self.drain("tls+auth", True, False)
        idle = self.latency()
        self.result("idle RSS, empty queue", "%.1f" % (idle / 1024), "MB")
        big = self.big_queue()
        self.result("  memory per queued message", "%.0f" % (
            (big - idle) * 1024 / BIG), "bytes", "(RSS - idle) / %d" % BIG)

    def cleanup(self):
        self.stop_daemon()
        for p in self.sinks:
            if p.poll() is None:
                self.stop_sink(p)


def main(argv):
    if len(argv) < 3:
        sys.exit("usage: bench.py BINDIR SINKBIN [SMTP_SINK]")
    tmp = tempfile.mkdtemp(prefix="postern-bench.")
    b = Bench(os.path.abspath(argv[1]), os.path.abspath(argv[2]),
              argv[3] if len(argv) > 3 and argv[3] else None, tmp)
    try:
        b.run()
    finally:
        b.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n%-30s %12s %s" % ("measure", "value", "unit"))
    for name, value, unit, note in b.results:
        print("%-30s %12s %-6s %s" % (name, value, unit, note))


if __name__ == "__main__":
    main(sys.argv)
