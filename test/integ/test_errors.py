"""sendmail refuses what it must, with one line on stderr, the right
sysexits code, and nothing queued."""

import os

import pytest

from conftest import EX_CONFIG, EX_DATAERR, EX_TEMPFAIL, EX_USAGE

MSG = b"Subject: hello\n\nbody\n"


def refused(sb, args, code, input=MSG):
    cp = sb.send(args, input)
    err = cp.stderr.decode(errors="replace")
    assert cp.returncode == code, (cp.returncode, err)
    assert len(err.splitlines()) == 1, err
    assert err.startswith("sendmail: fatal: "), err
    assert cp.stdout == b""
    assert sb.queue_files("incoming/new") == []
    assert sb.queue_files("incoming/tmp") == []
    return err


@pytest.mark.parametrize("args,input,code", [
    (["-Z", "bob@example.com"], MSG, EX_USAGE),
    (["-i"], MSG, EX_USAGE),
    (["-t", "-i"], b"Subject: no recipient headers\n\nbody\n", EX_USAGE),
    (["-i", "bob\n@example.com"], MSG, EX_DATAERR),
    (["-i", "bob@example.com\nrcpt to:<evil@example.com>"], MSG, EX_DATAERR),
    (["-i", "-f", "alice\nX-Evil: 1", "bob@example.com"], MSG, EX_DATAERR),
], ids=["bad-option", "no-recipients", "t-without-recipients",
        "newline-in-recipient", "smtp-injection-recipient",
        "newline-in-sender"])
def test_refused(sandbox, args, input, code):
    sandbox.make_spool()
    refused(sandbox, args, code, input)


def test_message_size_limit(sandbox):
    sb = sandbox
    sb.make_spool()
    sb.write_config(message_size_limit="1000")
    big = b"Subject: big\n\n" + b"0123456789abcdef\n" * 100
    refused(sb, ["-i", "bob@example.com"], EX_DATAERR, big)
    # A small one still goes in: the limit is the reason.
    assert sb.send_ok(["-i", "bob@example.com"], MSG)


@pytest.mark.parametrize("text,where", [
    ("relayhost [127.0.0.1]:25\n", "line 1"),
    ("myhostname = a.example\nmessage_size_limit = lots\n",
     "message_size_limit"),
    ("message_size_limit = -5\n", "message_size_limit"),
    ("minimal_backoff_time = 5 parsecs\n", "minimal_backoff_time"),
], ids=["no-equals", "bad-number", "negative-number", "bad-time"])
def test_broken_main_cf(sandbox, text, where):
    sb = sandbox
    sb.make_spool()
    base = "".join("%s = %s\n" % kv for kv in sb.base_params().items())
    if where == "line 1":
        sb.write_main_cf(text + base)
    else:
        sb.write_main_cf(base + text)
    err = refused(sb, ["-i", "bob@example.com"], EX_CONFIG)
    assert "main.cf" in err and where in err, err


def test_main_cf_is_a_directory(sandbox):
    sb = sandbox
    sb.make_spool()
    path = os.path.join(sb.confdir, "main.cf")
    os.remove(path)
    os.mkdir(path)
    err = refused(sb, ["-i", "bob@example.com"], EX_CONFIG)
    assert "main.cf" in err, err


def test_missing_queue_directory(sandbox):
    sb = sandbox
    missing = os.path.join(sb.root, "no-such-spool")
    sb.write_config(queue_directory=missing)
    refused(sb, ["-i", "bob@example.com"], EX_TEMPFAIL)
    assert not os.path.exists(missing)
