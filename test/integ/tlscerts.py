"""tlscerts.py - a throw-away PKI for postern's TLS tests, made with the
openssl command (OpenSSL 3.0) in a temporary directory.

make_certs(directory) makes, in well under a second (EC P-256 keys):
  ca            "postern test CA": the CA the tests trust (ca.pem, and
                ca_key for signing more)
  untrusted_ca  "unknown test CA": a CA the tests never trust
  good          server certificate CN=localhost, SAN DNS:localhost and
                IP:127.0.0.1, signed by ca, valid from yesterday for a year
  unknown_ca    the same names, signed by untrusted_ca
  expired       the same names, signed by ca, valid 2020-01-01 to
                2021-01-01 only (made with `openssl ca -startdate
                -enddate`: `openssl x509 -req` cannot backdate)
  wrong_name    CN=other.example, SAN DNS:other.example only, signed by ca
  client        client certificate CN="postern test client" (extended key
                usage clientAuth), signed by ca
Each of the five is a Leaf: .cert and .key (PEM file paths), .subject,
and .fp, its fingerprints as openssl prints them ("AB:CD:..."):
  fp["sha256"]         openssl x509 -noout -fingerprint -sha256
  fp["sha1"]           openssl x509 -noout -fingerprint -sha1
  fp["sha256_pubkey"]  SHA-256 of the DER SubjectPublicKeyInfo (openssl x509
  fp["sha1_pubkey"]    -pubkey | openssl pkey -pubin -outform DER), the
                       public-key fingerprint Postfix's
                       smtp_tls_fingerprint_cert_match also accepts
Certs.fingerprints is good.fp.

server_context(cert, key, client_ca=None) is the ssl.SSLContext the test
smarthost (test/smarthost.py) serves them with.

As a command, `/usr/bin/python3 test/integ/tlscerts.py DIR` makes the
files in DIR and prints what is where (for trying things by hand with
smarthost.py --tls-cert).
"""

import datetime
import hashlib
import os
import ssl
import subprocess
import sys

__all__ = ["make_certs", "server_context", "fingerprint", "Certs", "Leaf"]

OPENSSL = os.environ.get("OPENSSL", "openssl")

_CONF = """\
# Minimal config for `openssl req` and `openssl ca` (tlscerts.py).
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused

[ ca ]
default_ca = the_ca
[ the_ca ]
dir = {dir}
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir/newcerts
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_days = 365
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none

[ policy_any ]
commonName = supplied
organizationName = optional

[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ server_localhost ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ server_other ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def _openssl(*args, input=None):
    cp = subprocess.run([OPENSSL] + list(args), input=input,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        env=dict(os.environ, OPENSSL_CONF="/dev/null"))
    if cp.returncode != 0:
        raise RuntimeError("openssl %s: exit %d: %s" % (
            " ".join(args), cp.returncode,
            cp.stderr.decode(errors="replace")))
    return cp.stdout


def _colon_hex(digest):
    return ":".join("%02X" % b for b in digest)


def fingerprint(cert, digest="sha256", pubkey=False):
    """The certificate's (or its public key's) fingerprint, "AB:CD:..."."""
    if not pubkey:
        out = _openssl("x509", "-in", cert, "-noout", "-fingerprint",
                       "-" + digest).decode()
        # "sha256 Fingerprint=AB:..." (3.0), "SHA256 Fingerprint=" (1.1)
        return out.strip().split("=", 1)[1].upper()
    pem = _openssl("x509", "-in", cert, "-noout", "-pubkey")
    der = _openssl("pkey", "-pubin", "-outform", "DER", input=pem)
    return _colon_hex(hashlib.new(digest, der).digest())


class Leaf:
    """A certificate and key made by make_certs (see the docstring)."""

    def __init__(self, name, cert, key, subject):
        self.name = name
        self.cert = cert
        self.key = key
        self.subject = subject
        self.fp = {
            "sha256": fingerprint(cert, "sha256"),
            "sha1": fingerprint(cert, "sha1"),
        }
        pem = _openssl("x509", "-in", cert, "-noout", "-pubkey")
        der = _openssl("pkey", "-pubin", "-outform", "DER", input=pem)
        self.fp["sha256_pubkey"] = _colon_hex(hashlib.sha256(der).digest())
        self.fp["sha1_pubkey"] = _colon_hex(hashlib.sha1(der).digest())

    def __repr__(self):
        return "<Leaf %s %s>" % (self.name, self.cert)


class Certs:
    """The files make_certs made (attributes: see the module docstring)."""

    LEAVES = ("good", "unknown_ca", "expired", "wrong_name", "client")

    def __init__(self, directory):
        self.dir = directory
        self.ca = os.path.join(directory, "ca", "ca.pem")
        self.ca_key = os.path.join(directory, "ca", "ca.key")
        self.untrusted_ca = os.path.join(directory, "untrusted", "ca.pem")
        self.good = self.unknown_ca = self.expired = None
        self.wrong_name = self.client = None

    @property
    def fingerprints(self):
        return self.good.fp

    def describe(self):
        lines = ["ca           %s" % self.ca,
                 "untrusted_ca %s" % self.untrusted_ca]
        for name in self.LEAVES:
            leaf = getattr(self, name)
            lines.append("%-12s %s %s" % (name, leaf.cert, leaf.key))
        for k, v in sorted(self.good.fp.items()):
            lines.append("good %-13s %s" % (k, v))
        return "\n".join(lines)


def _utc(t):
    return t.strftime("%y%m%d%H%M%SZ")


def _make_ca(cadir, cn):
    os.makedirs(os.path.join(cadir, "newcerts"), exist_ok=True)
    conf = os.path.join(cadir, "openssl.cnf")
    with open(conf, "w") as f:
        f.write(_CONF.format(dir=cadir))
    open(os.path.join(cadir, "index.txt"), "w").close()
    with open(os.path.join(cadir, "serial"), "w") as f:
        f.write("1000\n")
    _openssl("req", "-config", conf, "-x509", "-new", *_KEY,
             "-keyout", os.path.join(cadir, "ca.key"),
             "-out", os.path.join(cadir, "ca.pem"),
             "-subj", "/CN=%s" % cn, "-days", "3650", "-sha256",
             "-extensions", "v3_ca")
    return conf


def _make_leaf(directory, conf, name, cn, ext, start, end):
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    cert = os.path.join(directory, name + ".pem")
    _openssl("req", "-config", conf, "-new", *_KEY, "-keyout", key,
             "-out", csr, "-subj", "/CN=%s" % cn)
    _openssl("ca", "-config", conf, "-batch", "-notext", "-extensions", ext,
             "-startdate", _utc(start), "-enddate", _utc(end),
             "-in", csr, "-out", cert)
    os.chmod(key, 0o600)
    return Leaf(name, cert, key, "CN=%s" % cn)


def make_certs(directory):
    """Make the test PKI in directory (created); a Certs."""
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    certs = Certs(directory)
    ca_dir = os.path.join(directory, "ca")
    un_dir = os.path.join(directory, "untrusted")
    ca_conf = _make_ca(ca_dir, "postern test CA")
    un_conf = _make_ca(un_dir, "unknown test CA")
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    start, end = now - datetime.timedelta(days=1), \
        now + datetime.timedelta(days=365)
    old_start = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    old_end = datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc)
    certs.good = _make_leaf(directory, ca_conf, "good", "localhost",
                            "server_localhost", start, end)
    certs.unknown_ca = _make_leaf(directory, un_conf, "unknown_ca",
                                  "localhost", "server_localhost", start,
                                  end)
    certs.expired = _make_leaf(directory, ca_conf, "expired",
                               "localhost", "server_localhost", old_start,
                               old_end)
    certs.wrong_name = _make_leaf(directory, ca_conf, "wrong_name",
                                  "other.example", "server_other", start,
                                  end)
    certs.client = _make_leaf(directory, ca_conf, "client",
                              "postern test client", "client", start, end)
    return certs


def server_context(cert, key, client_ca=None, maximum_version=None):
    """A server-side SSLContext serving cert (PEM, chain after it) and key.

    With client_ca (a PEM file of CA certificates) the server asks for a
    client certificate (optional: a client without one is still served;
    one that does not verify fails the handshake). maximum_version, e.g.
    ssl.TLSVersion.TLSv1_2, caps the protocol. Use one context per test
    server: session resumption needs the context that issued the session.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(client_ca)
    if maximum_version is not None:
        ctx.maximum_version = maximum_version
    return ctx


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: tlscerts.py DIR\n")
        return 64
    print(make_certs(argv[1]).describe())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
