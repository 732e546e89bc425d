#!/usr/bin/python3
"""smarthost.py - a scriptable SMTP relay for postern's tests and demo.

A library (pytest fixtures create a Smarthost, start() it, change its
behaviour while a test runs, stop() and start() it again on the same port)
and a command:

    /usr/bin/python3 test/smarthost.py --port 0 --dir DIR

prints "port N" on stdout once it listens on 127.0.0.1 and records every
message under DIR until SIGTERM/SIGINT. With --tls-cert FILE [--tls-key
FILE] it offers STARTTLS (--implicit-tls: TLS from the first byte instead;
--tls-client-ca FILE: asks for a client certificate;
--no-advertise-starttls: hides STARTTLS from EHLO). Test certificates:
/usr/bin/python3 test/integ/tlscerts.py DIR.

It is built on aiosmtpd (Debian: python3-aiosmtpd; run it with
/usr/bin/python3, not a pyenv python without Debian's packages). Each
server runs its own asyncio loop in a daemon thread.

What it records, per accepted message (Smarthost.messages, and as files
DIR/NNNN.json + DIR/NNNN.eml + DIR/NNNN.raw):
  mail_from, rcpt_tos            the envelope as the client sent it
  mail_options, rcpt_options     ESMTP parameters (aiosmtpd upper-cases them)
  data                           the message after SMTP un-stuffing, CRLF
                                 line ends kept (aiosmtpd's original_content)
  raw                            the exact bytes the client sent after the
                                 354 reply, through the final ".\\r\\n":
                                 dot-stuffing, CR/LF, everything. Compare
                                 these when a client bug could be hidden.
  peer, conn, helo               peer address, the connection's serial
                                 number (1, 2, ...), the EHLO/HELO name
  tls                            None (clear text), or what TLS it came
                                 over (see TLS below)
Every closed connection also leaves (serial, every byte the client sent)
in .transcripts (one of them: .transcript(serial)), e.g. to prove that no
MAIL FROM was ever sent.
Every end of DATA, accepted or not, is also an entry of .attempts with
its outcome ("accepted", the reply sent, or "lost" when the client went
away while the reply was delayed). A message only counts as delivered
(.messages) once the 250 has been written to a live connection.

What aiosmtpd 1.4 does, so that tests know what the server hides:
  8BITMIME   advertised (decode_data=False); BODY=7BIT|8BITMIME accepted,
             anything else 501. It does NOT check that 8-bit data came
             with BODY=8BITMIME: tests check mail_options themselves.
  SMTPUTF8   advertised only with smtputf8=True (enable_SMTPUTF8); without
             it, MAIL ... SMTPUTF8 gets 501 and a non-ASCII command line
             gets 500. Default here: off, like many providers.
  SIZE       advertised as "SIZE <data_size_limit>" (default 32 MiB here);
             MAIL FROM with a larger SIZE= gets 552; more data than the
             limit gets 552 after the final dot.
  PIPELINING never advertised by aiosmtpd, although its reader handles
             pipelined commands correctly (it reads one line at a time
             from a stream). This class adds PIPELINING to the EHLO reply
             unless pipelining=False, so the client's pipelined path is
             what the tests exercise.
  long lines a DATA line over 1001 octets (998 + CRLF + a stuffed dot)
             makes aiosmtpd read on to the final dot and reply "500 Line
             too long": a client that does not fold long lines sees a
             5xx, it is never silently accepted or truncated.
  lines      DATA is split on CRLF only: a bare LF or bare CR from a broken
             client ends up inside a "line" and would pass unnoticed in
             .data; look at .raw (tests check it has no bare LF/CR).
  dots       a leading dot is removed from every line (RFC 5321 4.5.2);
             a client that forgot to stuff a lone "." ends DATA early, and
             the rest of the body is then read as commands (500 errors):
             the body comparison in the tests catches it.
  null sender MAIL FROM:<> is refused with 501 by aiosmtpd 1.4 (it wants a
             non-empty address). Bounces (a later issue) will need an
             override of smtp_MAIL here.
  RCPT/MAIL parameters other than SIZE, BODY, SMTPUTF8 get 555.

Behaviours a test may change at any time (plain attributes, read by the
server thread on each command):
  rcpt_replies   {address(lower case): "550 5.1.1 no such user"}
  data_reply     None, or the reply to the final dot ("451 4.3.0 later")
  data_delay     seconds to wait before replying to the final dot
  stop()         refuse all connections (nothing listens on the port) and
                 drop open ones; start() listens again on the same port.

TLS (constructor keyword arguments; tls_context, implicit_tls and
advertise_starttls are also plain attributes, read at each new
connection, so a test may change them between connections):
  tls_context    None (default: clear text only), or a server-side
                 ssl.SSLContext (test/integ/tlscerts.py server_context()).
                 Use ONE context for the whole test: TLS session tickets
                 and the session cache belong to it, and a client can only
                 resume a session with the context that issued it.
                 With verify_mode CERT_OPTIONAL and a client CA loaded,
                 the server asks for a client certificate.
  implicit_tls   False (default): with a tls_context the server offers
                 STARTTLS (aiosmtpd's own, RFC 3207). True: "wrapper
                 mode" (port 465, RFC 8314): TLS from the first byte, the
                 220 greeting comes over TLS, no STARTTLS.
  advertise_starttls
                 True (default). False: STARTTLS is left out of the EHLO
                 reply, as by a server without TLS or a man in the middle
                 who strips it; a client that sends STARTTLS anyway still
                 gets "220 Ready to start TLS" and TLS.
  After TLS aiosmtpd advertises "AUTH LOGIN PLAIN" (it never does in
  clear text) and every AUTH fails (535): a client must not try AUTH
  unless told to.
What it records about TLS (facts from the server's ssl.SSLObject):
  msg.tls        None when the message came in clear text, else
                 {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384",
                  "bits": 256, "session_reused": False,
                  "peer_cert": "CN=postern test client" or None,
                  "clear_bytes": N}
                 peer_cert is the client certificate's subject (only when
                 the context asked for one and it verified); clear_bytes
                 is how many bytes of the connection's transcript came in
                 clear text before TLS (0 for implicit TLS), so
                 transcript[:clear_bytes] is what a network observer saw.
                 It is also "tls" in meta() and in NNNN.json.
  conn_tls       {conn serial: None, or the same dict} for every
                 connection: None from accept() on, the dict once the
                 handshake completed (after STARTTLS, or at accept for
                 implicit TLS), whether or not a message followed.
  tls_failures   [(conn serial, "SSLError: [SSL: TLSV1_ALERT_UNKNOWN_CA]
                 ...")] for every handshake that did not complete (the
                 client refused the certificate in the handshake, or went
                 away). Such a connection still leaves its transcript
                 (clear bytes before STARTTLS; b"" for implicit TLS).
Transcripts hold what the SMTP layer received: clear bytes before
STARTTLS (including anything pipelined after it, which is discarded),
decrypted bytes after; never TLS records.

How aiosmtpd 1.4.3 does STARTTLS (what this class builds on): after
"220 Ready to start TLS" it puts an asyncio.sslproto.SSLProtocol between
the socket transport and the SMTP protocol; once the handshake completes
SSLProtocol calls the SMTP protocol's connection_made() a second time
(with the TLS transport: session state is reset, the client must EHLO
again) and hands it decrypted bytes through data_received(). A failed
handshake raises TLSSetupException inside the command loop, which closes
the connection and calls connection_lost() itself. Implicit TLS here uses
the same SSLProtocol, wrapped around the SMTP protocol at accept() (what
loop.create_server(ssl=...) does inside), so that a failed handshake is
recorded too (create_server(ssl=) drops it silently).
"""

import argparse
import asyncio
import asyncio.sslproto as sslproto
import json
import logging
import os
import signal
import ssl
import sys
import threading
import time

from aiosmtpd.smtp import SMTP, TLSSetupException, syntax

__all__ = ["Smarthost", "Message"]


class Message:
    """One message as the smarthost received it."""

    def __init__(self, **kw):
        self.seq = kw["seq"]
        self.conn = kw["conn"]
        self.peer = kw["peer"]
        self.helo = kw["helo"]
        self.mail_from = kw["mail_from"]
        self.rcpt_tos = list(kw["rcpt_tos"])
        self.mail_options = list(kw["mail_options"])
        self.rcpt_options = list(kw["rcpt_options"])
        self.data = bytes(kw["data"])
        self.raw = bytes(kw["raw"])
        self.time = kw["time"]
        tls = kw.get("tls")
        self.tls = dict(tls) if tls is not None else None

    def meta(self):
        """The envelope as a JSON-friendly dict."""
        return {
            "seq": self.seq, "conn": self.conn, "peer": list(self.peer or ()),
            "helo": self.helo, "mail_from": self.mail_from,
            "rcpt_tos": self.rcpt_tos, "mail_options": self.mail_options,
            "rcpt_options": self.rcpt_options, "size": len(self.data),
            "time": self.time, "tls": self.tls,
        }

    def __repr__(self):
        return ("<Message #%d conn=%d from=%r to=%r %d bytes%s>" %
                (self.seq, self.conn, self.mail_from, self.rcpt_tos,
                 len(self.data),
                 " " + self.tls["version"] if self.tls else ""))


class _Handler:
    """aiosmtpd handler hooks; the behaviour lives on the Smarthost."""

    def __init__(self, host):
        self.host = host

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        if self.host.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        if not self.host.advertise_starttls:
            responses = [r for r in responses
                         if r[4:].strip().upper() != "STARTTLS"]
        return responses

    async def handle_exception(self, error):
        # aiosmtpd's default, minus the traceback for a failed TLS
        # handshake (recorded in Smarthost.tls_failures; aiosmtpd closes
        # the connection without sending this status).
        if isinstance(error, TLSSetupException):
            return "454 4.7.0 TLS handshake failed"
        logging.getLogger("mail.log").exception("SMTP session exception")
        return "500 Error: (%s) %s" % (error.__class__.__name__, error)

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        reply = self.host.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        host = self.host
        raw = server.raw_data_since_354()
        attempt = {"conn": server.serial, "mail_from": envelope.mail_from,
                   "rcpt_tos": list(envelope.rcpt_tos),
                   "time": time.time(), "outcome": "pending"}
        with host._lock:
            host.attempts.append(attempt)
            host._cond.notify_all()
        try:
            delay = host.data_delay
            if delay:
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            attempt["outcome"] = "lost"
            with host._lock:
                host._cond.notify_all()
            raise
        if server.transport is None or server.transport.is_closing():
            attempt["outcome"] = "lost"
            return "421 4.4.2 connection lost"
        reply = host.data_reply
        if reply:
            attempt["outcome"] = reply
            with host._lock:
                host._cond.notify_all()
            return reply
        host._record(Message(
            seq=0, conn=server.serial, peer=session.peer,
            helo=session.host_name, mail_from=envelope.mail_from,
            rcpt_tos=envelope.rcpt_tos, mail_options=envelope.mail_options,
            rcpt_options=envelope.rcpt_options,
            data=envelope.original_content or b"", raw=raw,
            time=time.time(), tls=server.tls))
        attempt["outcome"] = "accepted"
        return "250 2.0.0 Ok: queued as T%d" % len(host.messages)


def _subject(cert):
    """getpeercert()'s subject as "CN=x,O=y" (None without one)."""
    if not cert or not cert.get("subject"):
        return None
    short = {"commonName": "CN", "organizationName": "O",
             "organizationalUnitName": "OU", "countryName": "C",
             "localityName": "L", "stateOrProvinceName": "ST",
             "emailAddress": "emailAddress"}
    return ",".join("%s=%s" % (short.get(k, k), v)
                    for rdn in cert["subject"] for k, v in rdn)


def _tls_facts(sslobj, clear_bytes):
    """What a completed handshake turned out to be (see msg.tls)."""
    cipher = sslobj.cipher() or (None, None, None)
    return {"version": sslobj.version(), "cipher": cipher[0],
            "bits": cipher[2], "session_reused": bool(sslobj.session_reused),
            "peer_cert": _subject(sslobj.getpeercert()),
            "clear_bytes": clear_bytes}


class _Server(SMTP):
    """aiosmtpd's SMTP protocol, also keeping the bytes the client sent."""

    def __init__(self, host, serial, **kw):
        super().__init__(_Handler(host), **kw)
        self.host = host
        self.serial = serial
        self.wire = bytearray()
        self._data_start = None
        self.tls = None             # _tls_facts() once TLS is up
        self.recorded = False       # its transcript is in host.transcripts

    def connection_made(self, transport):
        # Called once at accept (plain, or implicit TLS after its
        # handshake), and once more with the TLS transport when a STARTTLS
        # handshake completed.
        first = self.transport is None
        super().connection_made(transport)
        if first:
            self.host._conn_made(self)
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is not None and self.tls is None:
            self.tls = _tls_facts(sslobj, len(self.wire))
            self.host._tls_up(self)

    def connection_lost(self, error):
        self.host._conn_lost(self)
        super().connection_lost(error)

    def data_received(self, data):
        # Clear bytes before STARTTLS, decrypted ones after (SSLProtocol
        # calls this with the plain text).
        self.wire += data
        super().data_received(data)

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg):
        try:
            await super().smtp_STARTTLS(arg)
        except TLSSetupException as error:
            self.host._tls_failed(self, error.__cause__)
            raise
        if self._tls_protocol is not None and self.tls is None:
            # SSLProtocol ends the handshake without an error when the
            # connection was aborted: no TLS, and nobody would ever call
            # connection_lost(). Take the failure path.
            self.host._tls_failed(self, None)
            raise TLSSetupException()

    def _consumed(self):
        # Bytes the SMTP reader has taken out of the stream so far. Uses
        # StreamReader's private _buffer: fine for a test tool.
        return len(self.wire) - len(self._reader._buffer)

    async def push(self, status):
        await super().push(status)
        if status.startswith("354"):
            self._data_start = self._consumed()

    def raw_data_since_354(self):
        """The exact DATA bytes, through the final dot line."""
        if self._data_start is None:
            return b""
        raw = bytes(self.wire[self._data_start:self._consumed()])
        self._data_start = None
        return raw


class Smarthost:
    """A test relay on 127.0.0.1; see the module docstring."""

    def __init__(self, directory=None, *, host="127.0.0.1", port=0,
                 pipelining=True, smtputf8=False, data_size_limit=33554432,
                 hostname="smarthost.test.example", timeout=60,
                 tls_context=None, implicit_tls=False,
                 advertise_starttls=True):
        self.directory = directory
        self.host = host
        self.port = port
        self.pipelining = pipelining
        self.smtputf8 = smtputf8
        self.data_size_limit = data_size_limit
        self.hostname = hostname
        self.timeout = timeout
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.advertise_starttls = advertise_starttls
        # Behaviours (see the module docstring).
        self.rcpt_replies = {}
        self.data_reply = None
        self.data_delay = 0
        # What happened.
        self.messages = []
        self.attempts = []
        self.connections = 0
        self.transcripts = []       # (conn serial, bytes the client sent)
        self.open_connections = 0
        self.conn_tls = {}          # conn serial: None or the TLS facts
        self.tls_failures = []      # (conn serial, why the handshake failed)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._loop = None
        self._thread = None
        self._server = None
        self._protocols = set()
        self._handshakes = set()    # implicit TLS: SSLProtocols handshaking
        if directory:
            os.makedirs(directory, exist_ok=True)

    # ---- life cycle ---------------------------------------------------
    def start(self):
        """Listen (again, on the same port once one was chosen)."""
        if self._server is not None:
            return self
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever,
                                            name="smarthost", daemon=True)
            self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._server = fut.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _listen(self):
        return await self._loop.create_server(
            self._factory, host=self.host, port=self.port,
            reuse_address=True)

    def _factory(self):
        with self._lock:
            self.connections += 1
            serial = self.connections
            self.conn_tls[serial] = None
        ctx = self.tls_context
        implicit = ctx is not None and self.implicit_tls
        proto = _Server(self, serial, hostname=self.hostname,
                        data_size_limit=self.data_size_limit,
                        enable_SMTPUTF8=self.smtputf8, decode_data=False,
                        timeout=self.timeout, loop=self._loop,
                        tls_context=None if implicit else ctx)
        if not implicit:
            return proto
        # What create_server(ssl=ctx) does, with the handshake's end seen.
        waiter = self._loop.create_future()
        wrap = sslproto.SSLProtocol(self._loop, proto, ctx, waiter,
                                    server_side=True)
        self._handshakes.add(wrap)
        waiter.add_done_callback(
            lambda fut: self._handshake_done(proto, wrap, fut))
        return wrap

    def _handshake_done(self, proto, wrap, fut):
        self._handshakes.discard(wrap)
        error = None if fut.cancelled() else fut.exception()
        if proto.tls is None:
            # The SMTP protocol never saw the connection.
            self._tls_failed(proto, error)
            self._conn_lost(proto)

    def stop(self):
        """Stop listening and drop every open connection."""
        if self._server is None:
            return
        server, self._server = self._server, None

        async def _close():
            server.close()
            for proto in list(self._protocols):
                if proto.transport is not None:
                    proto.transport.abort()
            for wrap in list(self._handshakes):
                if wrap._transport is not None:
                    wrap._transport.abort()
            await server.wait_closed()
        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(10)

    def close(self):
        """stop() and end the server thread."""
        self.stop()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
            self._loop = None

    @property
    def running(self):
        return self._server is not None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ---- bookkeeping (server thread) ----------------------------------
    def _conn_made(self, proto):
        with self._lock:
            self._protocols.add(proto)
            self.open_connections += 1
            self._cond.notify_all()

    def _conn_lost(self, proto):
        with self._lock:
            if not proto.recorded:
                proto.recorded = True
                self.transcripts.append((proto.serial, bytes(proto.wire)))
            if proto in self._protocols:
                self._protocols.discard(proto)
                self.open_connections -= 1
            self._cond.notify_all()

    def _tls_up(self, proto):
        with self._lock:
            self.conn_tls[proto.serial] = dict(proto.tls)
            self._cond.notify_all()

    def _tls_failed(self, proto, error):
        if error is None:
            why = "connection closed during the handshake"
        elif str(error):
            why = "%s: %s" % (type(error).__name__, error)
        else:
            why = type(error).__name__
        with self._lock:
            self.tls_failures.append((proto.serial, why))
            self._cond.notify_all()

    def _record(self, msg):
        with self._lock:
            msg.seq = len(self.messages) + 1
            self.messages.append(msg)
            self._cond.notify_all()
        if self.directory:
            base = os.path.join(self.directory, "%04d" % msg.seq)
            with open(base + ".eml", "wb") as f:
                f.write(msg.data)
            with open(base + ".raw", "wb") as f:
                f.write(msg.raw)
            with open(base + ".json.tmp", "w") as f:
                json.dump(msg.meta(), f, indent=1)
            os.rename(base + ".json.tmp", base + ".json")

    # ---- queries (test thread) ----------------------------------------
    def reset(self):
        """Forget what was recorded and restore the default behaviours."""
        with self._lock:
            self.messages.clear()
            self.attempts.clear()
        self.rcpt_replies = {}
        self.data_reply = None
        self.data_delay = 0

    def wait(self, predicate, timeout=30):
        """Wait until predicate(self) is true; return it, or False."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(self)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))

    def wait_messages(self, n, timeout=30):
        """Wait until at least n messages were accepted; the list or []."""
        if self.wait(lambda s: len(s.messages) >= n, timeout):
            return list(self.messages)
        return []

    def transcript(self, serial):
        """The bytes connection serial sent, once it closed (else None)."""
        with self._lock:
            for s, wire in self.transcripts:
                if s == serial:
                    return wire
        return None

    def delivered_to(self, address):
        """Accepted messages that had address among their recipients."""
        with self._lock:
            return [m for m in self.messages
                    if address.lower() in (r.lower() for r in m.rcpt_tos)]


def main(argv=None):
    ap = argparse.ArgumentParser(description="postern's test smarthost")
    ap.add_argument("--port", type=int, default=0,
                    help="TCP port on 127.0.0.1 (0: any free port)")
    ap.add_argument("--dir", required=True,
                    help="record messages here (NNNN.json/.eml/.raw)")
    ap.add_argument("--no-pipelining", action="store_true")
    ap.add_argument("--smtputf8", action="store_true")
    ap.add_argument("--tls-cert", metavar="FILE",
                    help="server certificate (PEM, chain after it): "
                    "offer STARTTLS")
    ap.add_argument("--tls-key", metavar="FILE",
                    help="its private key (default: in --tls-cert)")
    ap.add_argument("--tls-client-ca", metavar="FILE",
                    help="ask for a client certificate issued by this CA")
    ap.add_argument("--implicit-tls", action="store_true",
                    help="TLS from the first byte (wrapper mode, port 465) "
                    "instead of STARTTLS")
    ap.add_argument("--no-advertise-starttls", action="store_true",
                    help="leave STARTTLS out of the EHLO reply")
    args = ap.parse_args(argv)
    if (args.tls_key or args.tls_client_ca or args.implicit_tls) \
            and not args.tls_cert:
        ap.error("--tls-key, --tls-client-ca and --implicit-tls need "
                 "--tls-cert")

    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.load_verify_locations(args.tls_client_ca)
    sh = Smarthost(args.dir, port=args.port,
                   pipelining=not args.no_pipelining, smtputf8=args.smtputf8,
                   tls_context=ctx, implicit_tls=args.implicit_tls,
                   advertise_starttls=not args.no_advertise_starttls)
    sh.start()
    print("port %d" % sh.port, flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(1):
        pass
    sh.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
