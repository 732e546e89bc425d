#!/usr/bin/python3
"""make-seeds.py - write the seed corpora of the fuzz targets.

    /usr/bin/python3 test/fuzz/make-seeds.py [DIR]

writes DIR/fuzz_NAME/NAME-OF-SEED (DIR: test/fuzz/corpus beside this
script) for every target. The files are kept in the tree; this script is
how they were made and how to change them: edit the lists below and run it
again. Each seed is a small, valid (or nearly valid) input of the kind the
target parses, so that libFuzzer starts inside the parser instead of at
its first check.

fuzz_dns gets DNS replies built by hand, byte by byte, to an MX query for
example.com (the name the target asks about): several MX records with
compression pointers, a CNAME chain, a CNAME loop, a truncated reply,
NXDOMAIN, SERVFAIL, NODATA, a null MX, more exchangers than postern keeps,
a bad host name, a pointer loop and a pointer past the end.
"""

import os
import struct
import sys

# ---- DNS replies ---------------------------------------------------------

T_A, T_CNAME, T_SOA, T_MX = 1, 5, 6, 15
C_IN = 1
QNAME_OFF = 12          # the question's name follows the 12-byte header
PTR_Q = b"\xc0\x0c"     # compression pointer to the question's name


def name(text):
    """A domain name as uncompressed labels ("" is the root)."""
    out = b""
    for label in text.split(".") if text else []:
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def header(ancount, nscount=0, rcode=0, tc=False, qr=True, qdcount=1):
    """The 12-byte header: id 0x1234, RD and RA set."""
    flags = (0x8000 if qr else 0) | 0x0100 | 0x0080 | rcode
    if tc:
        flags |= 0x0200
    return struct.pack(">HHHHHH", 0x1234, flags, qdcount, ancount, nscount,
                       0)


def question(qname="example.com", qtype=T_MX):
    return name(qname) + struct.pack(">HH", qtype, C_IN)


def rr(owner, rtype, rdata, ttl=300):
    """One resource record; owner is already encoded (a name or pointer)."""
    return owner + struct.pack(">HHIH", rtype, C_IN, ttl, len(rdata)) + rdata


def mx(pref, target):
    return struct.pack(">H", pref) + target


def reply(answers, authority=(), **kw):
    return (header(len(answers), len(authority), **kw) + question() +
            b"".join(answers) + b"".join(authority))


def soa():
    return rr(PTR_Q, T_SOA, name("ns.example.com") +
              name("hostmaster.example.com") +
              struct.pack(">IIIII", 1, 3600, 600, 86400, 300))


def dns_seeds():
    s = {}
    # Three exchangers; the second and third name their target through a
    # pointer to "example.com" in the question (offset 12).
    s["mx-several"] = reply([
        rr(PTR_Q, T_MX, mx(10, name("mx1.example.com"))),
        rr(PTR_Q, T_MX, mx(10, b"\x03mx2" + PTR_Q)),
        rr(PTR_Q, T_MX, mx(20, b"\x06backup\x07example\x03net\x00")),
    ])
    # Pointer into an earlier answer's rdata: "backup.example.net" is at a
    # known offset once the first answer is laid out.
    first = rr(PTR_Q, T_MX, mx(5, name("mail.example.net")))
    target_off = 12 + len(question()) + len(PTR_Q) + 10 + 2
    s["mx-pointer-to-rdata"] = reply([
        first,
        rr(PTR_Q, T_MX, mx(15, b"\x04next" +
                           struct.pack(">H", 0xc000 | (target_off + 5)))),
    ])
    # example.com -> a.example.net -> b.example.org, which has the MX.
    s["cname-chain"] = reply([
        rr(PTR_Q, T_CNAME, name("a.example.net")),
        rr(name("a.example.net"), T_CNAME, name("b.example.org")),
        rr(name("b.example.org"), T_MX, mx(5, name("mail.example.org"))),
        rr(name("b.example.org"), T_MX, mx(7, name("mail2.example.org"))),
    ])
    s["cname-loop"] = reply([
        rr(PTR_Q, T_CNAME, name("a.example.net")),
        rr(name("a.example.net"), T_CNAME, name("example.com")),
    ])
    s["truncated"] = reply([
        rr(PTR_Q, T_MX, mx(10, name("mx1.example.com")))], tc=True)
    s["truncated-midrecord"] = reply([
        rr(PTR_Q, T_MX, mx(10, name("mx1.example.com"))),
        rr(PTR_Q, T_MX, mx(20, name("mx2.example.com")))])[:-9]
    s["nxdomain"] = reply([], [soa()], rcode=3)
    s["servfail"] = reply([], rcode=2)
    s["refused"] = reply([], rcode=5)
    s["nodata"] = reply([], [soa()])
    s["null-mx"] = reply([rr(PTR_Q, T_MX, mx(0, name("")))])
    s["many-mx"] = reply([
        rr(PTR_Q, T_MX, mx(10 * (i % 4), name("mx%d.example.com" % i)))
        for i in range(12)])
    s["duplicate-mx"] = reply([
        rr(PTR_Q, T_MX, mx(30, name("MX1.Example.COM."[:-1]))),
        rr(PTR_Q, T_MX, mx(10, name("mx1.example.com"))),
    ])
    s["bad-hostname"] = reply([
        rr(PTR_Q, T_MX, mx(10, b"\x08bad host" + PTR_Q))])
    s["mixed-types"] = reply([
        rr(PTR_Q, T_A, bytes([192, 0, 2, 1])),
        rr(name("other.example"), T_MX, mx(1, name("not.ours.example"))),
        rr(PTR_Q, T_MX, mx(50, name("mx.example.com"))),
    ])
    # The MX target points at itself: ns_name_uncompress must refuse it.
    loop_off = 12 + len(question()) + len(PTR_Q) + 10 + 2
    s["pointer-loop"] = reply([
        rr(PTR_Q, T_MX, mx(10, struct.pack(">H", 0xc000 | loop_off)))])
    s["pointer-past-end"] = reply([
        rr(PTR_Q, T_MX, mx(10, b"\x02mx\xcf\xff"))])
    s["wrong-question"] = (header(1) + question("example.org") +
                           rr(PTR_Q, T_MX, mx(10, name("mx.example.org"))))
    s["query-not-reply"] = reply([], qr=False)
    s["upper-case-owner"] = reply([
        rr(name("EXAMPLE.COM"), T_MX, mx(10, name("mx.example.com")))])
    return s


# ---- the text parsers ----------------------------------------------------

QFILE_BODY = b"Subject: t\nTo: bob@example.com\n\nhello\n"


def qfile(sender, rcpts, extra=b"", body=QFILE_BODY):
    out = (b"POSTERN-QUEUE 1\narrival 1763740025.123456\nuid 1000\n"
           b"sender " + sender + b"\n" + extra)
    for addr, orig in rcpts:
        out += b"recipient " + addr + b"\n"
        if orig:
            out += b"orig-recipient " + orig + b"\n"
    return out + b"size %d\nend-of-envelope\n" % len(body) + body


SEEDS = {
    "fuzz_addrlist": {
        "plain": b"alice@example.com",
        "display-names": b"Alice <alice@example.com>, \"Bob, Jr.\" "
                         b"<bob@example.org>",
        "group": b"friends: a@x.example, b@y.example;, undisclosed:;",
        "comments": b"carol@example.com (Carol (the boss)), "
                    b"<dave@[192.0.2.1]>",
        "folded": b"one@example.com,\r\n two@example.com,\n\tthree@x",
        "encoded-word": b"=?utf-8?q?J=C3=B6rg?= <joerg@example.de>",
        "quoted-local": b"\"john doe\"@example.com, \"a\\\"b\"@c",
        "route": b"<@relay.example:user@example.com>",
    },
    "fuzz_aliases": {
        "basic": b"# aliases\nroot: admin\npostmaster: root\n"
                 b"MAILER-DAEMON: postmaster\n",
        "lists": b"staff: alice, bob,\n  carol\n\tdave@example.com\n",
        "quoted": b"\"odd name\": somebody\nabuse: \"|/usr/bin/x\"\n",
        "include": b"list: :include:/etc/mail/list\nfile: /var/mail/x\n",
        "bad": b"no colon here\n: empty\n",
    },
    "fuzz_header": {
        "simple": b"From: a@example.com\nTo: b@example.com\nSubject: hi\n"
                  b"\nbody\n",
        "bcc": b"To: a@x.example, B <b@y.example>\nCc: c@z\nBcc: hidden@x,"
               b"\n other@y\nSubject: s\n\nbody\n.\n",
        "crlf": b"To: a@x\r\nBcc: b@y\r\nSubject: c\r\n\r\nbody\r\n",
        "no-body": b"To: a@x\nSubject: nothing else",
        "mbox-from": b"From someone Mon Jan  1 00:00:00 2024\nTo: x@y\n\nb\n",
        "many-to": b"To: a@x\nTo: b@y\nTO: c@z\nbcc: d@w\nBCC: e@v\n\n",
    },
    "fuzz_maincf": {
        "basic": b"# main.cf\nmyhostname = host.example.com\n"
                 b"relayhost = [smtp.example.com]:587\n"
                 b"smtp_tls_security_level = encrypt\n",
        "continued": b"alias_maps = hash:/etc/aliases,\n"
                     b"    texthash:/etc/postern/more\n\n# end\n",
        "expand": b"mydomain = example.com\nmyorigin = $mydomain\n"
                  b"x = ${mydomain} $(myhostname) $$ ${a?yes} ${b:no}\n",
        "odd": b"= novalue\nname\n  leading continuation\nk=v=w\n",
    },
    "fuzz_maps": {
        "texthash": b"# comment\nalice@example.com  alice@other.example\n"
                    b"@example.org relay.example\nKEY\tvalue with spaces\n",
        "inline": b"inline:{ a=b, { c = d e }, Key=v }",
        "static": b"static:{some value}",
        "list": b"static:x, inline:{k=v} ,static:y",
        "empty-inline": b"inline:{}",
    },
    "fuzz_qfile": {
        "one-rcpt": qfile(b"alice@host.example", [(b"bob@example.com",
                                                   None)]),
        "full": qfile(b"alice@host.example",
                      [(b"bob@example.com", b"bob"),
                       (b"carol@example.com", None)],
                      b"notify FAILURE,DELAY\nret HDRS\nenvid abc123\n"
                      b"flags 8bit\n"),
        "null-sender": qfile(b"", [(b"a@b", None)], body=b""),
        "short-body": qfile(b"a@b", [(b"c@d", None)])[:-3],
    },
    "fuzz_qstate": {
        "state": b"POSTERN-STATE 1\nattempts 3\nlast 1763740325.5\n"
                 b"warned 1\nrcpt 0 sent 2.0.0 250 2.0.0 Ok\n"
                 b"rcpt 1 deferred 4.4.1 connect to x: refused\n"
                 b"rcpt 2 failed 5.1.1 host said: 550 5.1.1 unknown user\n"
                 b"rcpt 3 pending - \nend-of-state\n",
        "minimal": b"POSTERN-STATE 1\nattempts 0\nlast 0.000000\n"
                   b"end-of-state\n",
        "result-defer": b"R 3F2A9C01B3 2 D 4.4.1 connect to x: refused",
        "result-done": b"R 3F2A9C01B3 0 L 2.0.0 250 ok",
        "result-mark": b"M 3F2A9C01B3",
    },
    "fuzz_regexp": {
        "checks": b"/^Subject: .*viagra/i REJECT no spam\n"
                  b"/^Received:/ IGNORE\n/^X-Mailer: (.*)$/ WARN $1\n",
        "negated": b"/^From:/!/example\\.com/ outside\n!/^To:/ DUNNO\n",
        "if-block": b"if /^X-/\n/^X-Spam: yes/ DISCARD\nendif\n",
        "substitutions": b"/^([^@]*)@([^.]*)\\.(.*)$/ $1 at ${2}dot$(3) $$\n",
        "flags": b"/^\tby/m multi\n/^abc$/x basic\n/^e\\/f$/ escaped\r\n",
    },
    "fuzz_smtp_reply": {
        "one-line": b"250 2.0.0 Ok: queued as 12345\r\n",
        "multi-line": b"250-smtp.example.com\r\n250-PIPELINING\r\n"
                      b"250-SIZE 10240000\r\n250-STARTTLS\r\n"
                      b"250 AUTH PLAIN LOGIN\r\n",
        "reject": b"550 5.1.1 <bob@example.com>: Recipient address "
                  b"rejected\r\n",
        "bye": b"421 4.4.2 closing\r\n",
        "no-text": b"354\r\n",
        "bare-lf": b"220 ready\n",
        "partial": b"250-first\r\n250",
    },
    "fuzz_tls_policy": {
        "verify": b"verify match=a.example:.b.example protocols=>=TLSv1.3 "
                  b"ciphers=high exclude=aNULL:MD5 servername=sni.example",
        "encrypt": b"encrypt",
        "fingerprint": b"fingerprint match=AB:CD|EF:01",
        "secure": b"secure match=nexthop:dot-nexthop",
        "protocols-not": b"!SSLv2, !SSLv3, !TLSv1, !TLSv1.1",
        "protocols-range": b">=TLSv1.2 <=TLSv1.3",
        "dane": b"dane-only",
        "none": b"none",
    },
}


def main(argv):
    top = argv[1] if len(argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    seeds = dict(SEEDS)
    seeds["fuzz_dns"] = dns_seeds()
    for target, files in sorted(seeds.items()):
        d = os.path.join(top, target)
        os.makedirs(d, exist_ok=True)
        for fname, data in sorted(files.items()):
            with open(os.path.join(d, fname), "wb") as f:
                f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
