"""The three Postfix SOHO_README configurations (test/soho-examples: copies
of ../shared/examples, compared byte for byte when that is present),
used as they are: only the directory /etc/postfix in main.cf is replaced
by the test's configuration directory (the examples' README allows that),
and mail_owner is the user running the tests, as in every sandbox.

Each runs as root in its own network and mount namespaces (netns.py):
the host names they name (mail.isp.example, mail.example.com,
mail.example.net) come from a hosts file, and the test smarthosts listen
on the real ports (25, 587) on 127.0.0.x. The spool is the built-in
default, /var/spool/postern, on a private mount of the test's directory.
The relays require STARTTLS (the examples say encrypt) and AUTH; each
check is made at the smarthost: which relay got the message, the
envelope, the headers, and the user that logged in.
"""

import os
import pwd
import subprocess

import pytest

from conftest import Sandbox, check_sanitizer, status_re
from netns import run_in_netns
from smarthost import Smarthost
from tlscerts import server_context

HERE = os.path.dirname(os.path.abspath(__file__))
# The repository's copies; the reference is ../shared/examples beside it.
EXAMPLES = os.path.normpath(os.path.join(HERE, "..", "soho-examples"))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared",
                                       "examples"))
NAMES = ("soho-standalone", "soho-generic", "soho-sender-dependent")
HOSTS = {"mail.isp.example": "127.0.0.2",
         "mail.example.com": "127.0.0.3",
         "mail.example.net": "127.0.0.4"}


def example_dir(name):
    return os.path.join(EXAMPLES, name)


def test_copies_match_the_shared_examples():
    """test/soho-examples is ../shared/examples, byte for byte."""
    if not os.path.isdir(SHARED):
        pytest.skip("%s is not beside this clone" % SHARED)
    for name in NAMES:
        mine, ref = os.path.join(EXAMPLES, name), os.path.join(SHARED, name)
        assert sorted(os.listdir(mine)) == sorted(os.listdir(ref)), name
        for f in os.listdir(ref):
            with open(os.path.join(mine, f), "rb") as a, \
                    open(os.path.join(ref, f), "rb") as b:
                assert a.read() == b.read(), "%s/%s differs" % (name, f)


class World:
    """Smarthosts on real ports, and a sandbox configured from an example
    directory. Closing it checks the daemon's log for sanitizer reports."""

    def __init__(self, bins, root, example, certs, relays):
        self.root = root
        self.smarthosts = {}
        self.sb = None
        # The built-in spool, /var/spool/postern, on the test's directory.
        spool_parent = os.path.join(root, "var-spool")
        os.makedirs(spool_parent)
        subprocess.run(["mount", "--bind", spool_parent, "/var/spool"],
                       check=True)
        ctx = server_context(certs[0], certs[1])
        for name, (port, users) in relays.items():
            self.smarthosts[name] = Smarthost(
                os.path.join(root, "received-" + name), host=HOSTS[name],
                port=port, hostname=name, tls_context=ctx, auth=users,
                auth_require_tls=True, auth_required=True).start()
        first = next(iter(self.smarthosts.values()))
        self.sb = Sandbox(os.path.join(root, "sb"), bins, first)
        self.sb.spool = "/var/spool/postern"
        src = example_dir(example)
        for f in os.listdir(src):
            text = open(os.path.join(src, f)).read()
            if f == "main.cf":
                # The one change the examples allow.
                text = text.replace("/etc/postfix", self.sb.confdir)
                # The machine has no postern user to give root up for,
                # as every sandbox (conftest.py); test_privdrop.py runs
                # posternd as root with a real mail_owner.
                text += "mail_owner = %s\n" % pwd.getpwuid(
                    os.geteuid()).pw_name
                # The examples say encrypt (TLS, certificate unchecked):
                # postern sends a password over that only when told so
                # (postern.conf(5), DIFFERENCES FROM POSTFIX).
                text += "smtp_sasl_allow_unverified_tls = yes\n"
                self.sb.write_main_cf(text)
                continue
            path = os.path.join(self.sb.confdir, f)
            with open(path, "w") as out:
                out.write(text)
            # SOHO_README: the password table is for root's eyes only.
            os.chmod(path, 0o600 if f == "sasl_passwd" else 0o644)
            cp = self.sb.postern(["map", "hash:" + path])
            assert cp.returncode == 0, cp

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.sb is not None:
            self.sb.cleanup()
            check_sanitizer(self.sb.log_text(), "posternd")
        for sh in self.smarthosts.values():
            sh.close()

    def got(self, name):
        """(mail_from, rcpt_tos, auth user, data) at one relay."""
        return [(m.mail_from, sorted(m.rcpt_tos),
                 m.auth and m.auth["user"], m.data, bool(m.tls))
                for m in self.smarthosts[name].messages]


def _standalone(bins, root, certs):
    with World(bins, root, "soho-standalone", certs,
               {"mail.isp.example": (25, {"username": "password"})}) as w:
        sb = w.sb
        sb.start_daemon()
        sb.send_ok(["-f", "alice@example.org", "bob@example.com"],
                   b"Subject: standalone\n\nhello\n")
        sb.wait_log(status_re("bob@example.com", "sent"))
        (got,) = w.got("mail.isp.example")
        assert got[:3] == ("alice@example.org", ["bob@example.com"],
                           "username"), got
        assert got[4], "the example says encrypt: the mail came over TLS"
        line = sb.log_lines(status_re("bob@example.com", "sent"))[0]
        assert "relay=mail.isp.example[127.0.0.2]:25," in line, line


def test_soho_standalone(bins, tmp_path, tls_certs):
    """relayhost = [mail.isp.example] (port 25), STARTTLS required, AUTH
    as the sasl_passwd entry for [mail.isp.example]."""
    certs = (tls_certs.good.cert, tls_certs.good.key)
    run_in_netns(_standalone, bins, str(tmp_path), certs, hosts=HOSTS,
                 nameserver=False)


def _generic(bins, root, certs):
    with World(bins, root, "soho-generic", certs,
               {"mail.isp.example": (587, {"username": "password"})}) as w:
        sb = w.sb
        sb.start_daemon()
        head = (b'From: "His Name" <his@localdomain.local>\n'
                b"To: her@localdomain.local, friend@example.com\n"
                b"Subject: generic\n\nhello\n")
        sb.send_ok(["-f", "his@localdomain.local", "her@localdomain.local",
                    "friend@example.com"], head)
        sb.send_ok(["-f", "root@localdomain.local", "friend@example.com"],
                   b"From: root@localdomain.local\nSubject: cron\n\nx\n")
        sb.wait(lambda: len(w.smarthosts["mail.isp.example"].messages) == 2,
                what="both messages at mail.isp.example:587")
        got = sorted(w.got("mail.isp.example"), key=lambda g: g[0])
        his = [g for g in got if g[0] == "hisaccount@hisisp.example"][0]
        assert his[1] == ["friend@example.com", "heraccount@herisp.example"]
        assert his[2] == "username" and his[4]
        data = his[3].decode()
        assert 'From: "His Name" <hisaccount@hisisp.example>\r\n' in data
        assert ("To: heraccount@herisp.example, friend@example.com\r\n"
                in data), data
        # The @localdomain.local catch-all, with its +extension.
        other = [g for g in got if g is not his][0]
        assert other[0] == "hisaccount+local@hisisp.example", other
        assert "From: hisaccount+local@hisisp.example\r\n" in \
            other[3].decode()
        # The relay has the message before the worker logs its 250.
        line = sb.wait_log(status_re("friend@example.com", "sent"))[0]
        assert "relay=mail.isp.example[127.0.0.2]:587," in line, line


def test_soho_generic(bins, tmp_path, tls_certs):
    """A host without a real domain: smtp_generic_maps replaces the local
    addresses by the owner's provider addresses on the way out, envelope
    and headers; relayhost = [mail.isp.example]:submission (587)."""
    certs = (tls_certs.good.cert, tls_certs.good.key)
    run_in_netns(_generic, bins, str(tmp_path), certs, hosts=HOSTS,
                 nameserver=False)


def _sender_dependent(bins, root, certs):
    relays = {"mail.isp.example": (25, {"username": "password"}),
              "mail.example.com": (587, {"username1": "password1"}),
              "mail.example.net": (25, {"username2": "password2"})}
    with World(bins, root, "soho-sender-dependent", certs, relays) as w:
        sb = w.sb
        sb.start_daemon()
        for sender in ("user1@example.com", "user2@example.net",
                       "someone@example.org"):
            sb.send_ok(["-f", sender, "friend@example.info"],
                       ("From: %s\nSubject: from %s\n\nhi\n"
                        % (sender, sender)).encode())
        sb.wait(lambda: sum(len(s.messages) for s in
                            w.smarthosts.values()) == 3,
                what="three messages at their relays")
        want = {"mail.example.com": ("user1@example.com", "username1"),
                "mail.example.net": ("user2@example.net", "username2"),
                "mail.isp.example": ("someone@example.org", "username")}
        for name, (sender, user) in want.items():
            (got,) = w.got(name)
            assert got[0] == sender and got[2] == user, (name, got)
            assert got[1] == ["friend@example.info"] and got[4], got
        # The relay has the message before the worker logs its 250.
        relays = ("relay=mail.example.com[127.0.0.3]:587,",
                  "relay=mail.example.net[127.0.0.4]:25,",
                  "relay=mail.isp.example[127.0.0.2]:25,")
        sb.wait(lambda: all(r in sb.log_text() for r in relays),
                what="the three relays' log lines")
        text = sb.log_text()
        for r in relays:
            assert r in text, (r, text[-3000:])


def test_soho_sender_dependent(bins, tmp_path, tls_certs):
    """Two people, each through their own provider with their own login
    (sender_dependent_relayhost_maps and per-sender sasl_passwd); anyone
    else through the default relayhost as the default user."""
    certs = (tls_certs.good.cert, tls_certs.good.key)
    run_in_netns(_sender_dependent, bins, str(tmp_path), certs, hosts=HOSTS,
                 nameserver=False)
