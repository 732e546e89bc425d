"""postern conf (like postconf), postern queue and sendmail -bp."""

import re


LINE = re.compile(r"^([A-Za-z0-9_]+) =(?: (.*))?$")


def parse_conf(cp):
    assert cp.returncode == 0, cp.stderr
    out = {}
    for line in cp.stdout.decode().splitlines():
        m = LINE.match(line)
        assert m, "not a 'name = value' line: %r" % line
        assert m.group(1) not in out, "%s printed twice" % m.group(1)
        out[m.group(1)] = (m.group(2) or "").strip()
    return out


def test_conf_effective(sandbox):
    sb = sandbox
    c = parse_conf(sb.postern(["conf"]))
    assert len(c) >= 40, c
    assert c["relayhost"] == "[127.0.0.1]:%d" % sb.smarthost.port
    assert c["smtp_tls_security_level"] == "none"
    assert c["myhostname"] == "client.test.example"
    assert c["queue_directory"] == sb.spool
    assert c["minimal_backoff_time"] == "1h"
    assert c["message_size_limit"] == "10240000"
    assert c["smtp_line_length_limit"] == "998"
    assert sb.postern(["conf"]).stderr == b""


def test_conf_n_only_main_cf(sandbox):
    sb = sandbox
    c = parse_conf(sb.postern(["conf", "-n"]))
    assert c == sb.base_params()


def test_conf_d_defaults(sandbox):
    sb = sandbox
    c = parse_conf(sb.postern(["conf", "-d"]))
    assert c["smtp_tls_security_level"] == "verify"
    assert c["relayhost"] == ""
    assert c["minimal_backoff_time"] == "300s"
    assert c["maximal_backoff_time"] == "4000s"
    assert c["message_size_limit"] == "10240000"
    assert c["queue_directory"] != sb.spool
    assert c["myorigin"] == "$myhostname"
    assert set(c) == set(parse_conf(sb.postern(["conf"])))


def test_conf_named(sandbox):
    sb = sandbox
    cp = sb.postern(["conf", "relayhost", "myhostname"])
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.decode().splitlines() == [
        "relayhost = [127.0.0.1]:%d" % sb.smarthost.port,
        "myhostname = client.test.example"]
    cp = sb.postern(["conf", "-d", "smtp_tls_security_level"])
    assert cp.stdout.decode().splitlines() == \
        ["smtp_tls_security_level = verify"]


def test_unknown_parameter_warns(sandbox):
    sb = sandbox
    sb.make_spool()
    base = "".join("%s = %s\n" % kv for kv in sb.base_params().items())
    nlines = base.count("\n")
    path = sb.write_main_cf(base + "# a comment\nbogus_parameter = 1\n")
    cp = sb.postern(["conf", "relayhost"])
    assert cp.returncode == 0, cp.stderr
    err = cp.stderr.decode()
    assert len(err.splitlines()) == 1, err
    assert path in err and "line %d" % (nlines + 2) in err, err
    assert "bogus_parameter" in err and "warning" in err, err
    # A warning, not a failure: sendmail still takes mail.
    cp = sb.send(["-i", "bob@example.com"], b"Subject: x\n\ny\n")
    assert cp.returncode == 0, cp.stderr
    assert "bogus_parameter" in cp.stderr.decode()
    assert len(sb.queue_files("incoming/new")) == 1


def test_queue_listing_and_bp(sandbox):
    sb = sandbox
    sb.make_spool()
    q = sb.postern(["queue"])
    assert q.returncode == 0, q.stderr
    assert "Mail queue is empty" in q.stdout.decode()
    bp = sb.send(["-bp"])
    assert bp.returncode == 0, bp.stderr
    assert "Mail queue is empty" in bp.stdout.decode()

    a = sb.send_ok(["-i", "-f", "alice", "bob@example.com",
                    "carol@example.org"], b"Subject: one\n\n1\n")
    b = sb.send_ok(["-i", "-f", "dave@example.net", "erin@example.com"],
                   b"Subject: two\n\n" + b"x" * 5000 + b"\n")
    assert a and b
    q = sb.postern(["queue"])
    out = q.stdout.decode()
    assert q.returncode == 0, q.stderr
    assert "Mail queue is empty" not in out
    for qid, size_min, words in (
            (a, 10, ["alice@client.test.example", "bob@example.com",
                     "carol@example.org"]),
            (b, 5000, ["dave@example.net", "erin@example.com"])):
        m = re.search(r"^%s\S*\s+(\d+)\s+.*$" % qid, out, re.M)
        assert m, out
        size = int(m.group(1))
        assert size >= size_min, out
        block = out[m.start():].split("\n\n")[0]
        for w in words:
            assert w in block, (w, out)
    bp = sb.send(["-bp"])
    assert bp.returncode == 0, bp.stderr
    assert bp.stdout == q.stdout
    # Listing changes nothing.
    assert sorted(sb.queue_files("incoming/new")) == sorted([a, b])
