"""A hostile relay (issue 15 item 7): a server that answers one byte a
second, just inside every idle timeout, must not hold a delivery worker
for longer than the timeout (smtp_per_request_deadline, on by default;
see posternd(8) SECURITY and postern.conf(5)).

The dripping relay here is a few lines of Python on 127.0.0.1, on the
port of the sandbox's smarthost (stopped meanwhile), so that when it goes
away and the smarthost comes back, the deferred message is delivered to a
relay that behaves: exactly once.
"""

import re
import select
import socket
import threading
import time

from conftest import removed_re, status_re

MSG = b"Subject: drip\n\nheld hostage?\n"
DEADLINE = 3            # seconds: the timeouts the tests configure
DRIP = 1.0              # seconds between two bytes of a dripped reply
FILL = "x" * 60         # makes a dripped reply last about 80 s


class DripRelay:
    """An SMTP server that sends the reply of one phase ("greeting",
    "ehlo" or "dot": the 250 after the final dot) one byte every DRIP
    seconds, and every other reply at once; or ("tls") a TLS server
    whose first handshake record drips. .sessions holds one dict per
    connection: start and end (monotonic seconds; end None while open)
    and the command lines received."""

    def __init__(self, phase, port):
        self.phase = phase
        self.sessions = []
        self._stop = threading.Event()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(8)
        self.port = self._sock.getsockname()[1]
        self._threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self._sock], [], [], 0.2)
            if not r:
                continue
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            rec = {"start": time.monotonic(), "end": None, "lines": []}
            self.sessions.append(rec)
            t = threading.Thread(target=self._serve, args=(conn, rec),
                                 daemon=True)
            t.start()
            self._threads.append(t)

    def _reply(self, conn, text, drip):
        data = text if isinstance(text, bytes) else text.encode()
        if not drip:
            conn.sendall(data)
            return
        for i in range(len(data)):
            # Between bytes, notice the client hanging up at once.
            r, _, _ = select.select([conn], [], [], DRIP)
            if self._stop.is_set():
                raise EOFError
            if r and not conn.recv(4096):
                raise EOFError
            conn.sendall(data[i:i + 1])

    def _serve(self, conn, rec):
        f = conn.makefile("rb")
        try:
            if self.phase == "tls":
                # A TLS handshake record of 16 KB, one byte a second:
                # OpenSSL waits for the whole record.
                self._reply(conn, b"\x16\x03\x03\x40\x00" + b"\x02" * 200,
                            True)
                return
            self._reply(conn, "220 drip.test.example ESMTP %s\r\n" % FILL,
                        self.phase == "greeting")
            while True:
                line = f.readline()
                if not line:
                    break
                rec["lines"].append(line)
                cmd = line[:4].upper()
                if cmd in (b"EHLO", b"HELO"):
                    self._reply(conn, "250-drip.test.example\r\n250-%s\r\n"
                                "250 8BITMIME\r\n" % FILL,
                                self.phase == "ehlo")
                elif cmd == b"DATA":
                    self._reply(conn, "354 go on\r\n", False)
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    self._reply(conn, "250 2.0.0 %s\r\n" % FILL,
                                self.phase == "dot")
                elif cmd == b"QUIT":
                    self._reply(conn, "221 bye\r\n", False)
                    break
                else:
                    self._reply(conn, "250 2.0.0 ok\r\n", False)
        except (OSError, EOFError):
            pass
        finally:
            rec["end"] = time.monotonic()
            f.close()
            conn.close()

    def close(self):
        self._stop.set()
        self._sock.close()
        for t in self._threads:
            t.join(5)


def drip_setup(sb, smarthost, phase, **params):
    """The smarthost stopped, a DripRelay on its port, short timeouts;
    the daemon started and one message queued for bob."""
    smarthost.stop()
    drip = DripRelay(phase, smarthost.port)
    sb.write_config(smtp_helo_timeout="%ds" % DEADLINE,
                    smtp_data_done_timeout="%ds" % DEADLINE,
                    smtp_quit_timeout="%ds" % DEADLINE, **params)
    sb.start_daemon()
    sb.send_ok(["-i", "-f", "alice@example.com", "bob@example.com"], MSG)
    return drip


def test_dripping_relay_deferred_then_delivered(sandbox, smarthost):
    """Each phase that can be dripped (the greeting, the EHLO reply, the
    250 after the final dot): the session ends within the deadline, the
    mail is deferred with a reason that names the total limit; once the
    relay behaves, the message arrives exactly once."""
    sb = sandbox
    for n, (phase, what) in enumerate((
            ("greeting", "receiving the initial server greeting"),
            ("ehlo", "performing the EHLO handshake"),
            ("dot", "sending end of data"))):
        if n == 0:
            drip = drip_setup(sb, smarthost, phase)
        else:
            smarthost.stop()
            drip = DripRelay(phase, smarthost.port)
            sb.send_ok(["-i", "-f", "alice@example.com", "bob@example.com"],
                       MSG)
        line = sb.wait_log(status_re("bob@example.com", "deferred"),
                           count=n + 1, timeout=60)[n]
        qid = re.search(status_re("bob@example.com", "deferred"),
                        line).group(1)
        assert "timed out while %s" % what in line, line
        assert "smtp_per_request_deadline" in line, line
        sb.wait(lambda: drip.sessions and drip.sessions[0]["end"],
                timeout=60, what="the dripping session to end")
        s = drip.sessions[0]
        took = s["end"] - s["start"]
        full = len("250 2.0.0 %s\r\n" % FILL) * DRIP
        print("%s dripped: the session ended after %.1f s (deadline %d s; "
              "the whole reply would take %.0f s)" %
              (phase, took, DEADLINE, full))
        # Generous (ASan, a shared machine); without the deadline the
        # session lasts as long as the drip: test_..._without_deadline.
        assert took < full / 2, took
        if phase == "dot":
            assert "possible duplicate" in line, line
        drip.close()
        sb.wait(lambda: sb.find_qid(qid) == ["deferred"], what="deferred/")
        smarthost.start()
        assert sb.postern(["flush"]).returncode == 0
        sb.wait_log(removed_re(qid))
        sb.wait(lambda: len(smarthost.messages) == n + 1, what="delivery")
    time.sleep(1)
    assert len(smarthost.messages) == 3, smarthost.messages
    assert all(m.rcpt_tos == ["bob@example.com"] for m in smarthost.messages)
    assert sb.all_queued() == {}
    assert sb.stop_daemon() == 0


def test_dripping_tls_handshake(sandbox, smarthost):
    """The TLS handshake (smtp_tls_wrappermode) has one total limit,
    smtp_starttls_timeout: a server hello that drips ends the session
    and defers the mail."""
    sb = sandbox
    drip = drip_setup(sb, smarthost, "tls", smtp_tls_wrappermode="yes",
                      smtp_tls_security_level="encrypt",
                      smtp_starttls_timeout="%ds" % DEADLINE)
    line = sb.wait_log(status_re("bob@example.com", "deferred"),
                       timeout=60)[0]
    assert "TLS" in line, line
    sb.wait(lambda: drip.sessions and drip.sessions[0]["end"],
            timeout=60, what="the dripping session to end")
    took = drip.sessions[0]["end"] - drip.sessions[0]["start"]
    print("TLS handshake dripped: the session ended after %.1f s "
          "(smtp_starttls_timeout %d s; the record would take 205 s)" %
          (took, DEADLINE))
    assert took < 60, took
    assert smarthost.messages == []
    assert sb.stop_daemon() == 0
    drip.close()


def test_dripping_relay_without_deadline(sandbox, smarthost):
    """What the deadline prevents: with smtp_per_request_deadline = no
    (Postfix's default) the same dripped greeting keeps the worker long
    after smtp_helo_timeout, since every byte restarts the timeout."""
    sb = sandbox
    drip = drip_setup(sb, smarthost, "greeting",
                      smtp_per_request_deadline="no")
    sb.wait(lambda: drip.sessions, what="a connection")
    time.sleep(3 * DEADLINE)
    assert drip.sessions[0]["end"] is None
    assert sb.log_lines(status_re("bob@example.com", "deferred")) == []
    print("deadline off: still connected after %.1f s (smtp_helo_timeout "
          "%d s)" % (time.monotonic() - drip.sessions[0]["start"], DEADLINE))
    sb.kill_daemon()
    drip.close()
