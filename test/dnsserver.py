#!/usr/bin/python3
"""dnsserver.py - a tiny authoritative DNS server for postern's tests.

Standard library only (socket, struct, threading). It answers from a dict,
over UDP and TCP, on 127.0.0.1:53 by default: run it inside a network
namespace (test/integ/netns.py) whose /etc/resolv.conf says "nameserver
127.0.0.1", and the libc resolver of every program started there asks it.

    zone = {
        "mx.test.example": {"MX": [(10, "mail1.test.example"),
                                   (20, "mail2.test.example")]},
        "mail1.test.example": {"A": ["127.0.0.2"]},
        "nomail.test.example": {"MX": [(0, ".")]},        # null MX
        "alias.test.example": {"CNAME": "mx.test.example"},
        "broken.test.example": "SERVFAIL",                # or "REFUSED",
        "slow.test.example": "DROP",                      # no reply at all
    }
    with DnsServer(zone) as dns:
        ...
        dns.queries      # [("mx.test.example", "MX"), ...] as asked

Answers:
  a name in the zone with records of the type asked   NOERROR + records
  a name in the zone without them                     NOERROR, no answer
                                                      (NODATA)
  a CNAME name                                        the CNAME, then the
                                                      target's records when
                                                      the target is in the
                                                      zone
  a name that is not in the zone                      NXDOMAIN
  "SERVFAIL", "REFUSED"                               that RCODE
  "DROP"                                              nothing (the client
                                                      times out)
Names match without regard to case or a final dot. The zone is a plain
attribute: a test may change it while the server runs. Record types: A,
AAAA, MX, CNAME (TTL 60). A UDP reply over 512 octets is sent truncated
(TC set, no records), so the client asks again over TCP, as a real server
would make it.

As a command, for trying things by hand:
    /usr/bin/python3 test/dnsserver.py [--port N] ZONE.json
"""

import json
import socket
import struct
import sys
import threading

__all__ = ["DnsServer"]

TYPES = {"A": 1, "CNAME": 5, "MX": 15, "AAAA": 28}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3,
          "NOTIMP": 4, "REFUSED": 5}
UDP_MAX = 512
TTL = 60


def _norm(name):
    return name.rstrip(".").lower()


def encode_name(name):
    """A domain name as DNS labels ("." or "" is the root)."""
    name = name.rstrip(".")
    out = b""
    if name:
        for label in name.split("."):
            raw = label.encode("ascii")
            if not 0 < len(raw) < 64:
                raise ValueError("bad label in %r" % name)
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def _read_name(msg, off):
    """(name, offset after it) of an uncompressed name in a query."""
    labels = []
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the message")
        n = msg[off]
        off += 1
        if n == 0:
            return ".".join(labels), off
        if n & 0xC0:
            raise ValueError("compression in a query")
        if off + n > len(msg):
            raise ValueError("label runs past the message")
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n


def _rdata(rtype, value):
    if rtype == "A":
        return socket.inet_pton(socket.AF_INET, value)
    if rtype == "AAAA":
        return socket.inet_pton(socket.AF_INET6, value)
    if rtype == "MX":
        pref, host = value
        return struct.pack(">H", pref) + encode_name(host)
    if rtype == "CNAME":
        return encode_name(value)
    raise ValueError("record type %r is not supported" % rtype)


def _rr(owner, rtype, value):
    data = _rdata(rtype, value)
    return (encode_name(owner) + struct.pack(">HHIH", TYPES[rtype], 1, TTL,
                                             len(data)) + data)


class DnsServer:
    """See the module docstring."""

    def __init__(self, zone=None, host="127.0.0.1", port=53, tcp=True):
        self.zone = zone if zone is not None else {}
        self.host = host
        self.port = port
        self.tcp = tcp
        self.queries = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._socks = []

    # ---- life cycle ---------------------------------------------------
    def start(self):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((self.host, self.port))
        self.port = udp.getsockname()[1]
        udp.settimeout(0.2)
        self._socks.append(udp)
        self._spawn(self._serve_udp, udp)
        if self.tcp:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((self.host, self.port))
            tcp.listen(16)
            tcp.settimeout(0.2)
            self._socks.append(tcp)
            self._spawn(self._serve_tcp, tcp)
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(5)
        for s in self._socks:
            s.close()
        self._threads, self._socks = [], []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, fn, sock):
        t = threading.Thread(target=fn, args=(sock,), daemon=True,
                             name="dnsserver")
        t.start()
        self._threads.append(t)

    def asked(self, name, rtype=None):
        """How many queries for name (and type) arrived."""
        with self._lock:
            return sum(1 for n, t in self.queries if n == _norm(name)
                       and (rtype is None or t == rtype))

    # ---- transports ---------------------------------------------------
    def _serve_udp(self, sock):
        while not self._stop.is_set():
            try:
                msg, peer = sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self.answer(msg)
            if reply is None:
                continue
            if len(reply) > UDP_MAX:
                reply = self._truncated(reply)
            try:
                sock.sendto(reply, peer)
            except OSError:
                pass

    def _serve_tcp(self, sock):
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._spawn(self._serve_conn, conn)

    def _serve_conn(self, conn):
        conn.settimeout(5)
        try:
            while not self._stop.is_set():
                head = self._recv_all(conn, 2)
                if head is None:
                    return
                msg = self._recv_all(conn, struct.unpack(">H", head)[0])
                if msg is None:
                    return
                reply = self.answer(msg)
                if reply is None:
                    return
                conn.sendall(struct.pack(">H", len(reply)) + reply)
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _recv_all(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    @staticmethod
    def _truncated(reply):
        """Header and question only, with TC set."""
        qend = 12
        while reply[qend] != 0:
            qend += reply[qend] + 1
        qend += 5
        ident, flags = struct.unpack(">HH", reply[:4])
        return (struct.pack(">HHHHHH", ident, flags | 0x0200, 1, 0, 0, 0)
                + reply[12:qend])

    # ---- answers ------------------------------------------------------
    def answer(self, msg):
        """The reply to one query message (bytes), or None to drop it."""
        try:
            ident, flags, qd = struct.unpack(">HHH", msg[:6])
            if qd != 1 or flags & 0x8000:
                raise ValueError("not one question")
            name, off = _read_name(msg, 12)
            qtype, qclass = struct.unpack(">HH", msg[off:off + 4])
            question = msg[12:off + 4]
        except (ValueError, struct.error):
            if len(msg) < 2:
                return None
            return struct.pack(">HHHHHH", msg[0] << 8 | msg[1], 0x8001, 0,
                               0, 0, 0)
        rtype = TYPE_NAMES.get(qtype, str(qtype))
        with self._lock:
            self.queries.append((_norm(name), rtype))
        rcode, records = self._lookup(name, rtype)
        if rcode is None:
            return None
        # QR, the opcode and RD as asked, AA, RA.
        out_flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode
        return (struct.pack(">HHHHHH", ident, out_flags, 1, len(records), 0,
                            0) + question + b"".join(records))

    def _entry(self, name):
        zone = self.zone
        for k, v in zone.items():
            if _norm(k) == _norm(name):
                return v
        return None

    def _lookup(self, name, rtype):
        """(rcode or None to drop, [encoded records])."""
        entry = self._entry(name)
        if entry is None:
            return RCODES["NXDOMAIN"], []
        if isinstance(entry, str):
            if entry == "DROP":
                return None, []
            return RCODES[entry], []
        records = []
        owner = name
        for _ in range(8):
            if "CNAME" in entry and rtype != "CNAME":
                target = entry["CNAME"]
                records.append(_rr(owner, "CNAME", target))
                owner = target
                entry = self._entry(target)
                if not isinstance(entry, dict):
                    return RCODES["NOERROR"], records
                continue
            break
        values = entry.get(rtype, [])
        if rtype == "CNAME" and isinstance(values, str):
            values = [values]
        for v in values:
            records.append(_rr(owner, rtype, v))
        return RCODES["NOERROR"], records


def main(argv):
    import argparse
    import signal
    ap = argparse.ArgumentParser(description="a tiny test DNS server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("zone", help="JSON: {name: {type: [values]}}")
    a = ap.parse_args(argv[1:])
    with open(a.zone) as f:
        zone = json.load(f)
    for entry in zone.values():
        if isinstance(entry, dict) and "MX" in entry:
            entry["MX"] = [tuple(v) for v in entry["MX"]]
    srv = DnsServer(zone, a.host, a.port).start()
    print("port %d" % srv.port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1):
        pass
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
