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
--no-advertise-starttls: hides STARTTLS from EHLO). With --auth
USER:SECRET (repeatable) it offers AUTH (--auth-mechanisms "LIST",
--auth-in-clear, --auth-required; see AUTH below). Test certificates:
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
  auth                           None, or {"user", "mechanism"} of the
                                 connection's AUTH (see AUTH below)
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
             non-empty address). This class accepts it (postern's
             bounces come from <>): mail_from is then "".
  RCPT/MAIL parameters other than SIZE, BODY, SMTPUTF8 get 555.
  DSN        (RFC 3461) not offered by aiosmtpd: NOTIFY=, ORCPT=, RET= and
             ENVID= get 555 like any unknown parameter. With dsn=True
             this class advertises DSN and takes them: they are recorded
             as sent (case kept) in mail_options / rcpt_options, and per
             message in mail_dsn {"RET": ..., "ENVID": ...} and rcpt_dsn
             (one dict {"NOTIFY": ..., "ORCPT": ...} per accepted
             recipient, in rcpt_tos order).

Behaviours a test may change at any time (plain attributes, read by the
server thread on each command):
  rcpt_replies   {address(lower case): "550 5.1.1 no such user"}
  dsn            False (default) or True: see DSN above
  data_reply     None, or the reply to the final dot ("451 4.3.0 later")
  data_reply_times  0 (default): data_reply until changed; N: only for
                 the next N ends of DATA, then data_reply is None again
  data_delay     seconds to wait before replying to the final dot
  hold_data      False (default) or True: the reply to each final dot
                 waits until the test calls release(). The gate for a test
                 that must act while a worker is certainly mid-session:
                 hold_data = True, wait_held() (the relay has the whole
                 message and has not answered), act, check, release().
                 .held is the number of replies waiting; a reply the
                 client went away from is "lost" in .attempts.
  probe_rcpt     None (default), or an address: a message to it alone is
                 a test's probe (conftest's Sandbox.settle), answered 250
                 at once and counted in .probes, never in .messages or
                 .attempts, so that the test's own counts stay as they were.
  A reply starting with 421 (in rcpt_replies or data_reply) closes the
  connection after it is sent, as RFC 5321 3.8 says a server does.
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
  Without auth= (see AUTH below), after TLS aiosmtpd advertises "AUTH
  LOGIN PLAIN" (it never does in clear text) and every AUTH fails (535):
  a client must not try AUTH unless told to.
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

AUTH (RFC 4954; constructor keyword arguments, also plain attributes read
at each new connection):
  auth           None (default: the aiosmtpd behaviour above), or
                 {username: secret} (str: str): AUTH is offered and checks
                 against this table. The secret is the password for PLAIN,
                 LOGIN and CRAM-MD5 and the bearer token for XOAUTH2 and
                 OAUTHBEARER.
  auth_mechanisms
                 the mechanisms advertised in the EHLO reply, in this order
                 (None: PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER; []: no
                 AUTH keyword at all). A name this class does not implement
                 may be listed (e.g. "GSSAPI"): it is advertised and gets
                 "504 5.5.4 Unrecognized authentication type" when tried.
                 A mechanism that is implemented but not listed gets 504.
  auth_require_tls
                 True (default, as aiosmtpd): AUTH is advertised and allowed
                 only once TLS is up (after STARTTLS, or from the start with
                 implicit TLS); before, AUTH gets "538 5.7.11 Encryption
                 required for requested authentication mechanism". False:
                 offered in clear text too (to prove that a client refuses
                 to send a password in clear).
  auth_required  False (default). True: MAIL, RCPT and DATA before a
                 successful AUTH get "530 5.7.0 Authentication required".
  scram_channel_binding
                 None (default): the SCRAM server knows the TLS channel
                 binding data when a -PLUS mechanism is advertised. True:
                 also when none is (a man in the middle stripped -PLUS
                 from the EHLO reply: a client that supports channel
                 binding says so with gs2 flag "y", and Cyrus refuses it,
                 RFC 5802 6). False: never (-PLUS then fails).
Mechanisms (the server side of each; a client may use the initial response
"AUTH MECH <base64>", "=" for an empty one, or wait for the empty "334 "):
  PLAIN          aiosmtpd's (RFC 4616: authzid NUL user NUL password; the
                 authzid is ignored).
  LOGIN          aiosmtpd's; the challenges are "Username:" and "Password:"
                 as most servers send them (aiosmtpd's own end in a NUL).
  CRAM-MD5       RFC 2195: "334 " base64("<random.time@hostname>"); the
                 client answers base64(user " " 32 lower-case hex digits of
                 HMAC-MD5(secret, challenge)). An initial response gets 501.
  XOAUTH2        Google's: base64("user=" user ^A "auth=Bearer " token ^A
                 ^A). A wrong token or unknown user gets "334 "
                 base64('{"status":"401","schemes":"Bearer","scope":...}');
                 the client must answer with an empty line, and then gets
                 the 535 (anything else: 501). A malformed message gets 501.
  OAUTHBEARER    RFC 7628: base64("n,a=" user "," ^A "host=" h ^A "port=" p
                 ^A "auth=Bearer " token ^A ^A) (host and port optional,
                 recorded in auth_log "fields"); the user is the a= authzid.
                 Failure: "334 " base64('{"status":"invalid_token",...}'),
                 the client must answer "AQ==" (a single 0x01), then 535
                 (anything else: 501). Malformed, or gs2 flag "p": 501.
  SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-1-PLUS, SCRAM-SHA-256-PLUS
                 RFC 5802/7677, run by Cyrus SASL (class CyrusSasl: an
                 independent implementation; Debian libsasl2-modules),
                 with the secret as the password. Server-first and
                 server-final come as 334 challenges; the client answers
                 the server-final (v=...) with an empty line, then 235.
                 Channel binding (see scram_channel_binding) is the type
                 the client names in its gs2 header, taken from the
                 server's side of the TLS connection: tls-unique (RFC
                 5929) or tls-exporter (RFC 9266); without a type named,
                 tls-exporter for TLS 1.3, tls-unique before. auth_log
                 records "gs2_flag" ("n", "y" or "p"), "channel_binding"
                 (the type named) and "why" (Cyrus's reason for a
                 failure, e.g. "Channel bindings mismatch").
  Success is "235 2.7.0 Authentication successful", a wrong secret "535
  5.7.8 Authentication credentials invalid" for every mechanism; "*" as a
  response cancels with "501 5.7.0 Auth aborted" (RFC 4954; aiosmtpd 1.4.3
  would then also send a stray 535, which this class suppresses).
  Mechanism names are matched case-insensitively (aiosmtpd's are not).
  aiosmtpd limits a command line to 512 octets ("500 Command line too
  long") and any line to 1001: keep test tokens short.
What it records about AUTH (secrets never):
  auth_attempts  [(conn serial, mechanism, user or None, ok)] for every AUTH
                 command, also those refused before a mechanism ran (538,
                 504, 503: user None, ok False).
  auth_log       the same as dicts with more: {"conn", "mechanism", "user",
                 "ok", "reply" (the last reply line sent, e.g. "535 5.7.8
                 ..."), "initial_response" (bool), "tls" (bool), "fields"
                 (OAUTHBEARER's host/port, else {})}
  conn_auth      {conn serial: None, or {"user": ..., "mechanism": ...}
                 once an AUTH succeeded} (reset by STARTTLS, RFC 3207)
  msg.auth       the same for the connection the message came over (None
                 without AUTH); also "auth" in meta() and NNNN.json.
  The transcripts include the AUTH exchange (decrypted after TLS);
  clear_text(serial) is the part a network observer saw. A test proves
  that no secret went over clear text with both.

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
import atexit
import base64
import binascii
import ctypes
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import signal
import ssl
import sys
import tempfile
import threading
import time
import warnings

from aiosmtpd.smtp import (MISSING, SMTP, AuthResult, TLSSetupException,
                           auth_mechanism, syntax)

__all__ = ["Smarthost", "Message", "DEFAULT_AUTH_MECHANISMS"]

DEFAULT_AUTH_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2",
                           "OAUTHBEARER")
AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_BAD = "535 5.7.8 Authentication credentials invalid"

# aiosmtpd warns (every connection) when AUTH is required without TLS;
# tests do that on purpose.
warnings.filterwarnings("ignore", message="Requiring AUTH while not "
                        "requiring TLS")
# ... and logs this at every successful AUTH (its own code does it).
logging.getLogger("mail.log").addFilter(
    lambda record: "login_data is deprecated" not in record.getMessage())


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
        self.mail_dsn = dict(kw.get("mail_dsn") or {})
        self.rcpt_dsn = [dict(d) for d in kw.get("rcpt_dsn") or []]
        self.data = bytes(kw["data"])
        self.raw = bytes(kw["raw"])
        self.time = kw["time"]
        tls = kw.get("tls")
        self.tls = dict(tls) if tls is not None else None
        auth = kw.get("auth")
        self.auth = dict(auth) if auth is not None else None

    def meta(self):
        """The envelope as a JSON-friendly dict."""
        return {
            "seq": self.seq, "conn": self.conn, "peer": list(self.peer or ()),
            "helo": self.helo, "mail_from": self.mail_from,
            "rcpt_tos": self.rcpt_tos, "mail_options": self.mail_options,
            "rcpt_options": self.rcpt_options, "mail_dsn": self.mail_dsn,
            "rcpt_dsn": self.rcpt_dsn, "size": len(self.data),
            "time": self.time, "tls": self.tls, "auth": self.auth,
        }

    def __repr__(self):
        return ("<Message #%d conn=%d from=%r to=%r %d bytes%s%s>" %
                (self.seq, self.conn, self.mail_from, self.rcpt_tos,
                 len(self.data),
                 " " + self.tls["version"] if self.tls else "",
                 " auth=%s/%s" % (self.auth["mechanism"], self.auth["user"])
                 if self.auth else ""))


class _Handler:
    """aiosmtpd handler hooks; the behaviour lives on the Smarthost."""

    def __init__(self, host):
        self.host = host

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        if self.host.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        if self.host.dsn:
            responses.insert(len(responses) - 1, "250-DSN")
        if not self.host.advertise_starttls:
            responses = [r for r in responses
                         if r[4:].strip().upper() != "STARTTLS"]
        if server.auth_advertise is not None:
            # aiosmtpd lists its mechanisms sorted: say the configured list,
            # in its order (or no AUTH keyword for an empty one).
            out = []
            for r in responses:
                if r[4:].upper().startswith("AUTH "):
                    if server.auth_advertise:
                        out.append(r[:4] + "AUTH " +
                                   " ".join(server.auth_advertise))
                else:
                    out.append(r)
            responses = out
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
        if host.probe_rcpt and envelope.rcpt_tos == [host.probe_rcpt]:
            with host._lock:
                host.probes += 1
                host._cond.notify_all()
            return "250 2.0.0 Ok: probe"
        attempt = {"conn": server.serial,
                   "mail_from": _sender(envelope.mail_from),
                   "rcpt_tos": list(envelope.rcpt_tos),
                   "time": time.time(), "outcome": "pending"}
        with host._lock:
            host.attempts.append(attempt)
            host._cond.notify_all()
        try:
            delay = host.data_delay
            if delay:
                await asyncio.sleep(delay)
            if host.hold_data:
                await host._held_until_release(server)
        except asyncio.CancelledError:
            attempt["outcome"] = "lost"
            with host._lock:
                host._cond.notify_all()
            raise
        if server.transport is None or server.transport.is_closing():
            attempt["outcome"] = "lost"
            return "421 4.4.2 connection lost"
        reply = host.data_reply
        if reply and host.data_reply_times:
            # data_reply for this many ends of DATA, then None again.
            host.data_reply_times -= 1
            if host.data_reply_times == 0:
                host.data_reply = None
        if reply:
            attempt["outcome"] = reply
            with host._lock:
                host._cond.notify_all()
            return reply
        host._record(Message(
            seq=0, conn=server.serial, peer=session.peer,
            helo=session.host_name, mail_from=_sender(envelope.mail_from),
            rcpt_tos=envelope.rcpt_tos, mail_options=envelope.mail_options,
            rcpt_options=envelope.rcpt_options,
            mail_dsn=getattr(envelope, "mail_dsn", None),
            rcpt_dsn=getattr(envelope, "rcpt_dsn", None),
            data=envelope.original_content or b"", raw=raw,
            time=time.time(), tls=server.tls, auth=server.auth_state))
        attempt["outcome"] = "accepted"
        return "250 2.0.0 Ok: queued as T%d" % len(host.messages)


# aiosmtpd wants a non-empty sender; <> stands in as this one inside.
_NULL_SENDER = "null-sender@null.invalid"


def _sender(mail_from):
    """The envelope sender as the client gave it ("" for <>)."""
    return "" if mail_from == _NULL_SENDER else mail_from


def _take_params(arg, names):
    """Split the ESMTP parameters called names (upper case) off a MAIL or
    RCPT argument: (the argument without them, {NAME: value as sent},
    [the parameters as sent])."""
    end = arg.find(">")
    if end < 0:
        return arg, {}, []
    keep, taken, raw = [], {}, []
    for p in arg[end + 1:].split():
        name, _, value = p.partition("=")
        if name.upper() in names:
            taken[name.upper()] = value
            raw.append(p)
        else:
            keep.append(p)
    return " ".join([arg[:end + 1]] + keep), taken, raw


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


# ---- SCRAM through Cyrus SASL ------------------------------------------
#
# The SCRAM mechanisms are not ours: the SMTP side (334 challenges, the
# recording) is this module's, every SCRAM computation and check, channel
# binding included, is Cyrus SASL's (libsasl2 2.1.28, its scram plugin from
# libsasl2-modules and sasldb from libsasl2-modules-db), called through
# ctypes. Cyrus's server supports SCRAM-*-PLUS when the application hands
# it the channel binding data; this module takes it from the server side
# of the TLS connection with OpenSSL itself (tls-unique: Python's
# get_channel_binding; tls-exporter, RFC 9266: SSL_export_keying_material
# on the SSL object behind Python's, checked against tls-unique first).

_SASL_OK, _SASL_CONTINUE = 0, 1
_SASL_USERNAME = 0
_SASL_CHANNEL_BINDING = 21
_SASL_CB_LIST_END, _SASL_CB_GETOPT, _SASL_CB_LOG = 0, 1, 2
_SASL_CB_GETCONFPATH = 5
_SASL_SET_CREATE = 1
SCRAM_MECHANISMS = ("SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS",
                    "SCRAM-SHA-256-PLUS")


class _SaslCallback(ctypes.Structure):
    _fields_ = [("id", ctypes.c_ulong), ("proc", ctypes.c_void_p),
                ("context", ctypes.c_void_p)]


class _SaslChannelBinding(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("critical", ctypes.c_int),
                ("len", ctypes.c_ulong), ("data", ctypes.c_char_p)]


_GETOPT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                           ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p),
                           ctypes.POINTER(ctypes.c_uint))
_GETCONFPATH = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                                ctypes.POINTER(ctypes.c_char_p))
_LOG = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                        ctypes.c_char_p)


class CyrusSasl:
    """Cyrus SASL's server side, once per process (sasl_server_init is
    global): a private sasldb in a temporary directory (removed at exit),
    no system configuration read. Each user table gets its own realm, so
    that smarthosts with different tables do not share users. All calls
    hold one lock (servers run in several threads)."""

    _instance = None
    _init_lock = threading.Lock()

    @classmethod
    def get(cls):
        with cls._init_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self):
        try:
            self.lib = ctypes.CDLL("libsasl2.so.2")
        except OSError as e:
            raise RuntimeError("libsasl2.so.2 not found (Debian: "
                               "libsasl2-2, libsasl2-modules, "
                               "libsasl2-modules-db): %s" % e)
        self.lib.sasl_errdetail.restype = ctypes.c_char_p
        self.lock = threading.Lock()
        self.dir = tempfile.mkdtemp(prefix="postern-cyrus-")
        atexit.register(shutil.rmtree, self.dir, True)
        self.log = []
        self._opts = {b"sasldb_path": os.path.join(self.dir,
                                                   "sasldb2").encode(),
                      b"auxprop_plugin": b"sasldb",
                      b"pwcheck_method": b"auxprop",
                      b"log_level": b"2"}
        self._confpath = ctypes.c_char_p(self.dir.encode())
        self._getopt = _GETOPT(self._cb_getopt)
        self._getconfpath = _GETCONFPATH(self._cb_getconfpath)
        self._logcb = _LOG(self._cb_log)
        self._callbacks = (_SaslCallback * 4)(
            (_SASL_CB_GETOPT, ctypes.cast(self._getopt, ctypes.c_void_p),
             None),
            (_SASL_CB_GETCONFPATH,
             ctypes.cast(self._getconfpath, ctypes.c_void_p), None),
            (_SASL_CB_LOG, ctypes.cast(self._logcb, ctypes.c_void_p), None),
            (_SASL_CB_LIST_END, None, None))
        rc = self.lib.sasl_server_init(self._callbacks,
                                       b"postern-test-smarthost")
        if rc != _SASL_OK:
            raise RuntimeError("sasl_server_init: %d" % rc)
        self._realms = {}
        mechs = self.mechanisms()
        missing = [m for m in ("SCRAM-SHA-1", "SCRAM-SHA-256") if m not in
                   mechs]
        if missing:
            raise RuntimeError("Cyrus SASL lacks %s (Debian: "
                               "libsasl2-modules): it has %s" %
                               (" ".join(missing), " ".join(mechs)))

    def _cb_getopt(self, context, plugin, option, result, length):
        value = self._opts.get(option)
        if value is None:
            return -1
        result[0] = value
        if length:
            length[0] = len(value)
        return _SASL_OK

    def _cb_getconfpath(self, context, path):
        path[0] = self._confpath.value
        return _SASL_OK

    def _cb_log(self, context, level, message):
        self.log.append((level, message.decode(errors="replace")))
        return _SASL_OK

    def mechanisms(self):
        """What Cyrus offers with channel binding data (so -PLUS too)."""
        conn = self.new("mechanisms", "localhost")
        try:
            self.set_channel_binding(conn, "tls-unique", b"x" * 12)
            out = ctypes.c_char_p()
            n = ctypes.c_int()
            size = ctypes.c_uint()
            with self.lock:
                rc = self.lib.sasl_listmech(conn, None, b"", b" ", b"",
                                            ctypes.byref(out),
                                            ctypes.byref(size),
                                            ctypes.byref(n))
                text = out.value.decode() if rc == _SASL_OK else ""
            return text.split()
        finally:
            self.dispose(conn)

    def realm(self, table):
        """A realm holding exactly the users of table {user: password}."""
        key = tuple(sorted(table.items()))
        with self.lock:
            realm = self._realms.get(key)
        if realm is not None:
            return realm
        realm = "t%d" % len(self._realms)
        conn = self.new(realm, "localhost")
        try:
            for user, password in table.items():
                pw = password.encode("utf-8")
                with self.lock:
                    rc = self.lib.sasl_setpass(conn, user.encode("utf-8"),
                                               pw, len(pw), None, 0,
                                               _SASL_SET_CREATE)
                if rc != _SASL_OK:
                    raise RuntimeError("sasl_setpass(%s): %d" % (user, rc))
        finally:
            self.dispose(conn)
        with self.lock:
            self._realms[key] = realm
        return realm

    def new(self, realm, hostname):
        conn = ctypes.c_void_p()
        with self.lock:
            rc = self.lib.sasl_server_new(b"smtp", hostname.encode(),
                                          realm.encode(), None, None, None,
                                          0, ctypes.byref(conn))
        if rc != _SASL_OK:
            raise RuntimeError("sasl_server_new: %d" % rc)
        conn.keep = []      # what Cyrus points into must outlive it
        return conn

    def set_channel_binding(self, conn, name, data):
        cb = _SaslChannelBinding(name.encode(), 0, len(data), data)
        conn.keep.append(cb)
        with self.lock:
            rc = self.lib.sasl_setprop(conn, _SASL_CHANNEL_BINDING,
                                       ctypes.byref(cb))
        if rc != _SASL_OK:
            raise RuntimeError("sasl_setprop(CHANNEL_BINDING): %d" % rc)

    def start(self, conn, mech, data):
        return self._call(self.lib.sasl_server_start, conn, mech.encode(),
                          data)

    def step(self, conn, data):
        return self._call(self.lib.sasl_server_step, conn, data)

    def _call(self, fn, conn, *args):
        out = ctypes.c_char_p()
        size = ctypes.c_uint()
        data = args[-1]
        with self.lock:
            rc = fn(conn, *args[:-1], data, len(data), ctypes.byref(out),
                    ctypes.byref(size))
            got = ctypes.string_at(out, size.value) if (
                rc in (_SASL_OK, _SASL_CONTINUE) and out) else b""
            why = None if rc in (_SASL_OK, _SASL_CONTINUE) else \
                self.lib.sasl_errdetail(conn).decode(errors="replace")
        return rc, got, why

    def username(self, conn):
        value = ctypes.c_char_p()
        with self.lock:
            rc = self.lib.sasl_getprop(conn, _SASL_USERNAME,
                                       ctypes.byref(value))
        if rc != _SASL_OK or value.value is None:
            return None
        return value.value.decode("utf-8", "replace")

    def dispose(self, conn):
        with self.lock:
            self.lib.sasl_dispose(ctypes.byref(conn))


_libssl = None


def _ssl_pointer(sslobj):
    """OpenSSL's SSL * behind an ssl.SSLObject (CPython 3.11's _ssl
    PySSLSocket: PyObject_HEAD, then Socket, then ssl), checked."""
    global _libssl
    if _libssl is None:
        lib = ctypes.CDLL("libssl.so.3")
        for name, res, argtypes in (
                ("SSL_get_finished", ctypes.c_size_t,
                 [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]),
                ("SSL_get_peer_finished", ctypes.c_size_t,
                 [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]),
                ("SSL_is_server", ctypes.c_int, [ctypes.c_void_p]),
                ("SSL_export_keying_material", ctypes.c_int,
                 [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                  ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                  ctypes.c_size_t, ctypes.c_int])):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, argtypes
        _libssl = lib
    inner = sslobj._sslobj
    ptr = ctypes.c_void_p.from_address(
        id(inner) + 3 * ctypes.sizeof(ctypes.c_void_p)).value
    want = sslobj.get_channel_binding("tls-unique")
    seen = []
    for fn in (_libssl.SSL_get_finished, _libssl.SSL_get_peer_finished):
        buf = ctypes.create_string_buffer(64)
        n = fn(ptr, buf, 64)
        seen.append(buf.raw[:n])
    if not ptr or want not in seen or _libssl.SSL_is_server(ptr) != 1:
        raise RuntimeError("cannot reach the SSL object behind Python's "
                           "ssl module (not CPython 3.11 on OpenSSL 3?)")
    return ptr


def channel_binding(sslobj, name):
    """The server side's channel binding data of type name (bytes), or
    None for a type not supported here."""
    if name == "tls-unique":
        return sslobj.get_channel_binding("tls-unique")
    if name == "tls-exporter":
        ptr = _ssl_pointer(sslobj)
        label = b"EXPORTER-Channel-Binding"
        out = ctypes.create_string_buffer(32)
        if _libssl.SSL_export_keying_material(ptr, out, 32, label,
                                              len(label), None, 0, 0) != 1:
            raise RuntimeError("SSL_export_keying_material failed")
        return out.raw
    return None


def _saslname(raw):
    """RFC 5801/7628 saslname: "=2C" is ",", "=3D" is "="."""
    return raw.replace(b"=2C", b",").replace(b"=3D", b"=").decode(
        "utf-8", "replace")


class _Server(SMTP):
    """aiosmtpd's SMTP protocol, also keeping the bytes the client sent."""

    # What most servers send (aiosmtpd's end in a NUL byte).
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"

    def __init__(self, host, serial, auth_table=None, auth_advertise=None,
                 scram_channel_binding=False, **kw):
        if auth_table is not None:
            kw["authenticator"] = _Server._check_login
        super().__init__(_Handler(host), **kw)
        self.host = host
        self.serial = serial
        self.wire = bytearray()
        self._data_start = None
        self.tls = None             # _tls_facts() once TLS is up
        self.recorded = False       # its transcript is in host.transcripts
        self.auth_table = dict(auth_table or {})
        self.auth_advertise = auth_advertise
        self.scram_channel_binding = scram_channel_binding
        self.auth_state = None      # {"user", "mechanism"} after AUTH
        self._auth_try = None       # the AUTH command being served
        self._challenge_failed = False
        self._last_reply = None

    def connection_made(self, transport):
        # Called once at accept (plain, or implicit TLS after its
        # handshake), and once more with the TLS transport when a STARTTLS
        # handshake completed.
        first = self.transport is None
        super().connection_made(transport)
        if first:
            self.host._conn_made(self)
        elif self.auth_state is not None:
            # STARTTLS forgets an AUTH done before it (RFC 3207 4.2).
            self.auth_state = None
            self.host._auth_forgotten(self)
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
        self._last_reply = status
        await super().push(status)
        if isinstance(status, str) and status.startswith("354"):
            self._data_start = self._consumed()
        if isinstance(status, str) and status.startswith("421"):
            # RFC 5321 3.8: "421 ... closing transmission channel". A
            # reply of 421 in rcpt_replies or data_reply really closes.
            self.host._closed_421 += 1
            self.transport.close()

    # ---- AUTH -----------------------------------------------------------
    @classmethod
    def mechanism_names(cls):
        """The names of the mechanisms implemented here."""
        return [getattr(getattr(cls, name), "__auth_mechanism_name__",
                        name[5:].replace("__", "-"))
                for name in dir(cls) if name.startswith("auth_")
                and callable(getattr(cls, name))
]

    # Each auth_<MECH> method (aiosmtpd turns "__" into "-") returns an
    # AuthResult: success; or failure with handled=False (aiosmtpd sends
    # the 535) or handled=True (a reply was sent already).

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg):
        words = (arg or "").split(None, 1)
        mech = words[0].upper() if words else None
        if words:
            # Mechanism names are case-insensitive (aiosmtpd's lookup is
            # not).
            arg = " ".join([mech] + words[1:])
        self._auth_try = {"conn": self.serial, "mechanism": mech,
                          "user": None, "ok": False, "reply": None,
                          "initial_response": len(arg.split()) > 1
                          if arg else False,
                          "tls": self.tls is not None, "fields": {},
                          "gs2_flag": None, "channel_binding": None,
                          "why": None}
        self._last_reply = None
        was = bool(self.session.authenticated)
        try:
            await super().smtp_AUTH(arg)
        finally:
            attempt, self._auth_try = self._auth_try, None
            attempt["ok"] = bool(self.session.authenticated) and not was
            reply = self._last_reply
            if isinstance(reply, bytes):
                reply = reply.decode("ascii", "replace")
            attempt["reply"] = reply
            if attempt["ok"]:
                self.auth_state = {"user": attempt["user"],
                                   "mechanism": mech}
            self.host._auth_done(self, attempt)

    async def challenge_auth(self, challenge, encode_to_b64=True,
                             log_client_response=False):
        # aiosmtpd 1.4.3 answers "*" and bad base64 with a 501, and then
        # its smtp_AUTH sends a 535 as well: note it, the mechanisms below
        # then report the failure as handled.
        got = await super().challenge_auth(challenge, encode_to_b64,
                                           log_client_response)
        if got is MISSING:
            self._challenge_failed = True
        return got

    def _auth_user(self, user):
        if self._auth_try is not None:
            self._auth_try["user"] = user

    def _secret_ok(self, user, given):
        """Whether given (bytes) is user's secret; notes the user."""
        self._auth_user(user)
        secret = self.auth_table.get(user) if user is not None else None
        return secret is not None and hmac.compare_digest(
            secret.encode("utf-8"), given)

    @staticmethod
    def _check_login(server, session, envelope, mechanism, auth_data):
        # aiosmtpd's authenticator hook, for its PLAIN and LOGIN.
        user = auth_data.login.decode("utf-8", "replace")
        return AuthResult(success=server._secret_ok(user, auth_data.password),
                          handled=False)

    async def _builtin(self, method, args):
        self._challenge_failed = False
        result = await method(self, args)
        if self._challenge_failed:
            return AuthResult(success=False, handled=True)
        return result

    async def auth_PLAIN(self, _, args):
        return await self._builtin(super().auth_PLAIN, args)

    async def auth_LOGIN(self, _, args):
        return await self._builtin(super().auth_LOGIN, args)

    async def _fail(self, reply):
        await self.push(reply)
        return AuthResult(success=False, handled=True)

    async def _first_message(self, args):
        """The client's first message: the initial response ("=" is an
        empty one), or its answer to an empty "334 "; MISSING after a
        501."""
        if len(args) > 1:
            if args[1] == "=":
                return b""
            try:
                return base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await self.push("501 5.5.2 Can't decode base64")
                return MISSING
        got = await self.challenge_auth(b"")
        return got

    @staticmethod
    def _bearer(value):
        """The token of "Bearer <token>" (bytes), or None."""
        scheme, _, token = value.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return None
        return token

    async def auth_CRAM__MD5(self, _, args):
        if len(args) > 1:
            return await self._fail("501 5.5.2 CRAM-MD5 takes no initial "
                                    "response")
        challenge = ("<%d.%d@%s>" % (secrets.randbelow(10 ** 10),
                                     int(time.time()), self.hostname))
        self._challenge_failed = False
        got = await self.challenge_auth(challenge)
        if got is MISSING:
            return AuthResult(success=False, handled=True)
        user, sep, digest = got.rpartition(b" ")
        if not sep or not user:
            return await self._fail('501 5.5.2 CRAM-MD5: expected "user '
                                    'digest"')
        name = user.decode("utf-8", "replace")
        self._auth_user(name)
        secret = self.auth_table.get(name)
        ok = False
        if secret is not None and re.fullmatch(rb"[0-9a-f]{32}", digest):
            want = hmac.new(secret.encode("utf-8"), challenge.encode(),
                            "md5").hexdigest().encode()
            ok = hmac.compare_digest(want, digest)
        return AuthResult(success=ok, handled=False)

    async def _oauth_failure(self, error, want):
        """The error challenge of XOAUTH2/OAUTHBEARER; want is the only
        acceptable answer. Then the 535 (aiosmtpd's), or 501."""
        self._challenge_failed = False
        got = await self.challenge_auth(json.dumps(error).encode())
        if got is MISSING:
            return AuthResult(success=False, handled=True)
        if got != want:
            return await self._fail("501 5.5.2 expected %s after the error "
                                    "challenge" % (
                                        "an empty line" if want == b""
                                        else "AQ== (%x01)"))
        return AuthResult(success=False, handled=False)

    async def auth_XOAUTH2(self, _, args):
        data = await self._first_message(args)
        if data is MISSING:
            return AuthResult(success=False, handled=True)
        m = re.fullmatch(rb"user=([^\x01]+)\x01auth=([^\x01]*)\x01\x01",
                         data)
        token = self._bearer(m.group(2)) if m else None
        if token is None:
            return await self._fail("501 5.5.2 malformed XOAUTH2 response")
        if self._secret_ok(m.group(1).decode("utf-8", "replace"), token):
            return AuthResult(success=True, handled=False)
        return await self._oauth_failure(
            {"status": "401", "schemes": "Bearer",
             "scope": "https://mail.google.com/"}, b"")

    async def auth_OAUTHBEARER(self, _, args):
        data = await self._first_message(args)
        if data is MISSING:
            return AuthResult(success=False, handled=True)
        m = re.fullmatch(rb"([ny]),(?:a=([^,]*))?,\x01"
                         rb"((?:[A-Za-z]+=[^\x01]*\x01)*)\x01", data)
        fields = {}
        if m:
            for kv in m.group(3).split(b"\x01")[:-1]:
                k, _, v = kv.partition(b"=")
                fields[k.decode()] = v
        token = self._bearer(fields.get("auth", b""))
        if not m or token is None:
            return await self._fail("501 5.5.2 malformed OAUTHBEARER "
                                    "response")
        if self._auth_try is not None:
            self._auth_try["fields"] = {
                k: v.decode("utf-8", "replace") for k, v in fields.items()
                if k != "auth"}
        user = _saslname(m.group(2)) if m.group(2) is not None else None
        if self._secret_ok(user, token):
            return AuthResult(success=True, handled=False)
        return await self._oauth_failure(
            {"status": "invalid_token", "schemes": "bearer",
             "scope": "https://mail.google.com/"}, b"\x01")

    async def _scram(self, mech, args):
        """SCRAM-*, run by Cyrus SASL (see CyrusSasl)."""
        try:
            cyrus = CyrusSasl.get()
        except RuntimeError as e:
            return await self._fail("454 4.7.0 %s" % e)
        data = await self._first_message(args)
        if data is MISSING:
            return AuthResult(success=False, handled=True)
        try_ = self._auth_try if self._auth_try is not None else {}
        head = re.match(rb"(p=([A-Za-z0-9.-]+)|[ny]),[^,]*,", data)
        if head:
            try_["gs2_flag"] = head.group(1)[:1].decode()
            if head.group(2):
                try_["channel_binding"] = head.group(2).decode()
        name = re.search(rb",n=([^,]*),", data)
        if name:
            self._auth_user(_saslname(name.group(1)))
        realm = cyrus.realm(self.auth_table)
        conn = cyrus.new(realm, self.hostname)
        try:
            sslobj = self.transport.get_extra_info("ssl_object")
            if sslobj is not None and self.scram_channel_binding:
                # Cyrus offers (and checks) -PLUS only with the data; with
                # it, it also refuses flag "y" (a stripped -PLUS).
                cb = try_.get("channel_binding") or (
                    "tls-exporter" if sslobj.version() == "TLSv1.3"
                    else "tls-unique")
                data_cb = channel_binding(sslobj, cb)
                if data_cb is not None:
                    cyrus.set_channel_binding(conn, cb, data_cb)
            rc, out, why = cyrus.start(conn, mech, data)
            while rc == _SASL_CONTINUE:
                self._challenge_failed = False
                got = await self.challenge_auth(out)
                if got is MISSING:
                    return AuthResult(success=False, handled=True)
                rc, out, why = cyrus.step(conn, got)
            if rc == _SASL_OK:
                user = cyrus.username(conn) or ""
                if user.endswith("@" + realm):
                    user = user[:-len(realm) - 1]
                self._auth_user(user)
                return AuthResult(success=True, handled=False)
            try_["why"] = why
            return AuthResult(success=False, handled=False)
        finally:
            cyrus.dispose(conn)

    @auth_mechanism("SCRAM-SHA-1")
    async def auth_SCRAM_SHA_1(self, _, args):
        return await self._scram("SCRAM-SHA-1", args)

    @auth_mechanism("SCRAM-SHA-256")
    async def auth_SCRAM_SHA_256(self, _, args):
        return await self._scram("SCRAM-SHA-256", args)

    @auth_mechanism("SCRAM-SHA-1-PLUS")
    async def auth_SCRAM_SHA_1_PLUS(self, _, args):
        return await self._scram("SCRAM-SHA-1-PLUS", args)

    @auth_mechanism("SCRAM-SHA-256-PLUS")
    async def auth_SCRAM_SHA_256_PLUS(self, _, args):
        return await self._scram("SCRAM-SHA-256-PLUS", args)

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg):
        # The null sender, and with dsn=True the RFC 3461 parameters,
        # which aiosmtpd would refuse.
        taken, raw = {}, []
        if arg is not None:
            if self.host.dsn:
                arg, taken, raw = _take_params(arg, ("RET", "ENVID"))
            arg = re.sub(r"^(FROM:\s*)<>", r"\1<%s>" % _NULL_SENDER, arg,
                         flags=re.I)
        before = self.envelope.mail_from
        await super().smtp_MAIL(arg)
        if not before and self.envelope.mail_from:
            self.envelope.mail_options.extend(raw)
            self.envelope.mail_dsn = taken

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg):
        taken, raw = {}, []
        if arg is not None and self.host.dsn:
            arg, taken, raw = _take_params(arg, ("NOTIFY", "ORCPT"))
        before = len(self.envelope.rcpt_tos)
        await super().smtp_RCPT(arg)
        if len(self.envelope.rcpt_tos) > before:
            self.envelope.rcpt_options.extend(raw)
            if not hasattr(self.envelope, "rcpt_dsn"):
                self.envelope.rcpt_dsn = []
            self.envelope.rcpt_dsn.append(taken)

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
                 advertise_starttls=True, auth=None, auth_mechanisms=None,
                 auth_require_tls=True, auth_required=False,
                 scram_channel_binding=None, dsn=False):
        self.directory = directory
        self.host = host
        self.port = port
        self.pipelining = pipelining
        self.dsn = dsn
        self.smtputf8 = smtputf8
        self.data_size_limit = data_size_limit
        self.hostname = hostname
        self.timeout = timeout
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.advertise_starttls = advertise_starttls
        self.auth = auth
        self.auth_mechanisms = auth_mechanisms
        self.auth_require_tls = auth_require_tls
        self.auth_required = auth_required
        self.scram_channel_binding = scram_channel_binding
        # Behaviours (see the module docstring).
        self.rcpt_replies = {}
        self.data_reply = None
        self.data_delay = 0
        self.data_reply_times = 0
        self.hold_data = False
        self.held = 0               # replies held until release()
        self.probe_rcpt = None
        self.probes = 0
        # What happened.
        self._closed_421 = 0        # connections closed after a 421
        self.messages = []
        self.attempts = []
        self.connections = 0
        self.transcripts = []       # (conn serial, bytes the client sent)
        self.open_connections = 0
        self.conn_tls = {}          # conn serial: None or the TLS facts
        self.tls_failures = []      # (conn serial, why the handshake failed)
        self.auth_attempts = []     # (conn serial, mechanism, user, ok)
        self.auth_log = []          # the same as dicts, with more
        self.conn_auth = {}         # conn serial: None or {"user", ...}
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
            self.conn_auth[serial] = None
        ctx = self.tls_context
        implicit = ctx is not None and self.implicit_tls
        proto = _Server(self, serial, hostname=self.hostname,
                        data_size_limit=self.data_size_limit,
                        enable_SMTPUTF8=self.smtputf8, decode_data=False,
                        timeout=self.timeout, loop=self._loop,
                        tls_context=None if implicit else ctx,
                        **self._auth_options(implicit))
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

    def _auth_options(self, implicit):
        """_Server's AUTH keyword arguments for a new connection."""
        own = [name for name in _Server.mechanism_names()
               if name not in ("PLAIN", "LOGIN")]
        opts = {"auth_required": self.auth_required,
                # With implicit TLS, TLS is up before the first command
                # (aiosmtpd only knows about its own STARTTLS).
                "auth_require_tls": self.auth_require_tls and not implicit}
        if self.auth is None:
            # aiosmtpd's PLAIN and LOGIN that always fail.
            opts["auth_exclude_mechanism"] = own
            return opts
        advertise = [m.upper() for m in (
            DEFAULT_AUTH_MECHANISMS if self.auth_mechanisms is None
            else self.auth_mechanisms)]
        cb = self.scram_channel_binding
        if cb is None:
            cb = any(m.endswith("-PLUS") for m in advertise)
        opts.update(auth_table=self.auth, auth_advertise=advertise,
                    scram_channel_binding=bool(cb),
                    auth_exclude_mechanism=[
                        m for m in _Server.mechanism_names()
                        if m not in advertise])
        return opts

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

    def _auth_done(self, proto, attempt):
        with self._lock:
            self.auth_attempts.append((attempt["conn"], attempt["mechanism"],
                                       attempt["user"], attempt["ok"]))
            self.auth_log.append(dict(attempt))
            if attempt["ok"]:
                self.conn_auth[proto.serial] = dict(proto.auth_state)
            self._cond.notify_all()

    def _auth_forgotten(self, proto):
        with self._lock:
            self.conn_auth[proto.serial] = None
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

    async def _held_until_release(self, server):
        # Polled: release() runs in the test thread, and a client that
        # goes away ends the wait too (its reply is then "lost").
        with self._lock:
            self.held += 1
            self._cond.notify_all()
        try:
            while self.hold_data and server.transport is not None and \
                    not server.transport.is_closing():
                await asyncio.sleep(0.02)
        finally:
            with self._lock:
                self.held -= 1
                self._cond.notify_all()

    # ---- the gate (test thread) ---------------------------------------
    def wait_held(self, n=1, timeout=30):
        """Wait until n replies to the final dot are held (hold_data);
        True, or False on timeout."""
        return bool(self.wait(lambda s: s.held >= n, timeout))

    def release(self):
        """Let every held reply go, and hold no more (hold_data = False)."""
        self.hold_data = False

    # ---- queries (test thread) ----------------------------------------
    def reset(self):
        """Forget what was recorded and restore the default behaviours."""
        with self._lock:
            self.messages.clear()
            self.attempts.clear()
            self.auth_attempts.clear()
            self.auth_log.clear()
        self.rcpt_replies = {}
        self.data_reply = None
        self.data_reply_times = 0
        self.data_delay = 0
        self.hold_data = False

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

    def clear_text(self, serial):
        """What a network observer saw of connection serial's client
        bytes (all of it without TLS, the part before STARTTLS with it,
        b"" with implicit TLS); None while it is open."""
        wire = self.transcript(serial)
        if wire is None:
            return None
        with self._lock:
            tls = self.conn_tls.get(serial)
        return wire if tls is None else wire[:tls["clear_bytes"]]

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
    ap.add_argument("--auth", metavar="USER:SECRET", action="append",
                    help="offer AUTH and accept this user (repeatable; the "
                    "secret is a password, or the token for XOAUTH2 and "
                    "OAUTHBEARER)")
    ap.add_argument("--auth-mechanisms", metavar="LIST",
                    help="the mechanisms to advertise, e.g. "
                    "\"PLAIN LOGIN\" (default: %s)" %
                    " ".join(DEFAULT_AUTH_MECHANISMS))
    ap.add_argument("--auth-in-clear", action="store_true",
                    help="offer AUTH before TLS too")
    ap.add_argument("--auth-required", action="store_true",
                    help="530 to MAIL without AUTH")
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
    auth = None
    if args.auth:
        auth = {}
        for item in args.auth:
            user, sep, secret = item.partition(":")
            if not sep:
                ap.error("--auth wants USER:SECRET")
            auth[user] = secret
    sh = Smarthost(args.dir, port=args.port,
                   pipelining=not args.no_pipelining, smtputf8=args.smtputf8,
                   tls_context=ctx, implicit_tls=args.implicit_tls,
                   advertise_starttls=not args.no_advertise_starttls,
                   auth=auth,
                   auth_mechanisms=args.auth_mechanisms.replace(
                       ",", " ").split()
                   if args.auth_mechanisms is not None else None,
                   auth_require_tls=not args.auth_in_clear,
                   auth_required=args.auth_required)
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
