"""The test tools under the MX tests: netns.py (a scenario in its own
network, mount and PID namespaces) and test/dnsserver.py. A harness that
quietly ran on the real network, lost a failure, or left processes behind
would make every test built on it worthless; these tests say it does not.
"""

import os
import socket
import struct
import subprocess
import sys
import time
import uuid

import pytest

from dnsserver import DnsServer, encode_name
from netns import NetnsError, run_in_netns


def _query(name, qtype, ident=7):
    return (struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) +
            encode_name(name) + struct.pack(">HH", qtype, 1))


def _header(reply):
    ident, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", reply[:12])
    return {"id": ident, "rcode": flags & 15, "tc": bool(flags & 0x0200),
            "aa": bool(flags & 0x0400), "an": an}


def _udp(msg, port=53):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(msg, ("127.0.0.1", port))
    try:
        return s.recv(65535)
    finally:
        s.close()


def _tcp(msg, port=53):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(struct.pack(">H", len(msg)) + msg)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack(
                ">H", data[:2])[0]:
            chunk = s.recv(65535)
            if not chunk:
                break
            data += chunk
        return data[2:]


# ---- the namespace -----------------------------------------------------

def _network():
    names = [n for _, n in socket.if_nameindex()]
    # Any address of 127/8, any port, as root.
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.2", 25))
    srv.listen(1)
    c = socket.create_connection(("127.0.0.2", 25), timeout=3)
    c.close()
    srv.close()
    # Nothing outside: no route anywhere but the loopback.
    try:
        socket.create_connection(("192.0.2.1", 25), timeout=3).close()
        outside = "connected"
    except OSError as e:
        outside = e.errno
    with open("/etc/resolv.conf") as f:
        resolv = f.read()
    with open("/etc/nsswitch.conf") as f:
        nss = f.read()
    return names, outside, resolv, nss, os.getpid()


def test_network_is_private():
    names, outside, resolv, nss, pid = run_in_netns(_network)
    assert names == ["lo"], names
    assert outside != "connected", outside
    assert resolv.startswith("nameserver 127.0.0.1\n"), resolv
    assert [l for l in nss.splitlines() if l.startswith("hosts:")] == \
        ["hosts: files dns"], nss
    # PID 1 is the namespace's reaper; the scenario comes right after it.
    assert pid == 2, pid


def test_machine_files_untouched():
    """Mounts made inside stay inside."""
    before = {}
    for p in ("/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf"):
        with open(p, "rb") as f:
            before[p] = f.read()
    got = run_in_netns(lambda: open("/etc/hosts").read(),
                       hosts={"only.inside.example": "127.0.0.9"})
    assert "127.0.0.9\tonly.inside.example" in got, got
    for p, data in before.items():
        with open(p, "rb") as f:
            assert f.read() == data, p


def _names():
    with DnsServer({"dns.test.example": {"A": ["127.0.0.7"]}}) as dns:
        a = socket.getaddrinfo("hosts.test.example", 25, socket.AF_INET,
                               socket.SOCK_STREAM)[0][4][0]
        b = socket.getaddrinfo("dns.test.example", 25, socket.AF_INET,
                               socket.SOCK_STREAM)[0][4][0]
        try:
            socket.getaddrinfo("missing.test.example", 25)
            c = "found"
        except socket.gaierror as e:
            c = e.errno
        return a, b, c, list(dns.queries)


def test_hosts_file_and_dns_server():
    a, b, c, queries = run_in_netns(
        _names, hosts={"hosts.test.example": "127.0.0.6"})
    assert a == "127.0.0.6"
    assert b == "127.0.0.7"
    assert c == socket.EAI_NONAME, c
    # /etc/hosts first: the name it knows never reached the DNS server.
    assert ("dns.test.example", "A") in queries, queries
    assert not [q for q in queries if q[0] == "hosts.test.example"], queries


# ---- results, failures, skips -------------------------------------------

def _value(x, y=None):
    return {"x": x, "y": y, "uid": os.geteuid()}


def _assert_fails():
    left = 2
    assert left + 2 == 5, "arithmetic inside"


def _raises():
    raise KeyError("inside")


def _skips():
    pytest.skip("skipped inside")


def _fails():
    pytest.fail("failed inside", pytrace=False)


def _dies():
    os.kill(os.getpid(), 9)


def test_value_comes_back():
    assert run_in_netns(_value, 1, y=[2, 3]) == {"x": 1, "y": [2, 3],
                                                 "uid": 0}


def test_assertion_comes_back_with_traceback():
    with pytest.raises(AssertionError) as ei:
        run_in_netns(_assert_fails)
    text = str(ei.value)
    assert "arithmetic inside" in text
    assert "raised in the network namespace" in text
    assert "_assert_fails" in text


def test_exception_type_kept():
    with pytest.raises(KeyError) as ei:
        run_in_netns(_raises)
    assert "_raises" in str(ei.value.__cause__)


def test_skip_and_fail_come_back():
    with pytest.raises(pytest.skip.Exception, match="skipped inside"):
        run_in_netns(_skips)
    with pytest.raises(pytest.fail.Exception, match="failed inside"):
        run_in_netns(_fails)


def test_killed_scenario_is_an_error():
    with pytest.raises(NetnsError, match="without a result"):
        run_in_netns(_dies)


# ---- nothing outlives the scenario ---------------------------------------

def _leave_process(token):
    # A daemon-like process in its own session, never waited for.
    subprocess.Popen([sys.executable, "-c",
                      "import time; time.sleep(300)", token],
                     start_new_session=True)
    return "started"


def _running(token):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if token.encode() in f.read().split(b"\0"):
                    found.append(pid)
        except OSError:
            pass
    return found


def test_processes_do_not_outlive_the_scenario():
    token = "postern-netns-" + uuid.uuid4().hex
    assert run_in_netns(_leave_process, token) == "started"
    deadline = time.monotonic() + 10
    while _running(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(token), "left behind: %s" % _running(token)


# ---- the DNS server --------------------------------------------------------

ZONE = {
    "mx.test.example": {"MX": [(10, "mail1.test.example"), (0, ".")],
                        "A": ["127.0.0.5"], "AAAA": ["::1"]},
    "alias.test.example": {"CNAME": "mx.test.example"},
    "big.test.example": {"MX": [(i, "mail%02d.a-long-name-that-fills-"
                                 "the-reply.test.example" % i)
                                for i in range(20)]},
    "fail.test.example": "SERVFAIL",
    "quiet.test.example": "DROP",
}


def _dns():
    out = {}
    with DnsServer(ZONE) as dns:
        out["mx"] = _header(_udp(_query("mx.test.example", 15)))
        out["aaaa"] = _header(_udp(_query("MX.test.example.", 28)))
        out["cname"] = _header(_udp(_query("alias.test.example", 28,
                                           ident=9)))
        out["nodata"] = _header(_udp(_query("big.test.example", 1)))
        out["nx"] = _header(_udp(_query("none.test.example", 1)))
        out["servfail"] = _header(_udp(_query("fail.test.example", 1)))
        big = _udp(_query("big.test.example", 15))
        out["big_udp"] = (_header(big), len(big))
        big = _tcp(_query("big.test.example", 15))
        out["big_tcp"] = (_header(big), len(big))
        try:
            _udp(_query("quiet.test.example", 1))
            out["drop"] = "answered"
        except socket.timeout:
            out["drop"] = "timeout"
        out["queries"] = list(dns.queries)
    return out


def test_dns_server_answers():
    """The server itself, on 127.0.0.1:53 (hence inside a namespace)."""
    out = run_in_netns(_dns)
    assert out["mx"]["rcode"] == 0 and out["mx"]["an"] == 2, out["mx"]
    assert out["mx"]["aa"] and out["mx"]["id"] == 7
    assert out["aaaa"]["rcode"] == 0 and out["aaaa"]["an"] == 1
    # alias -> mx.test.example, which has an AAAA: CNAME and AAAA.
    assert out["cname"]["an"] == 2 and out["cname"]["id"] == 9
    assert out["nodata"]["rcode"] == 0 and out["nodata"]["an"] == 0
    assert out["nx"]["rcode"] == 3 and out["nx"]["an"] == 0
    assert out["servfail"]["rcode"] == 2
    head, size = out["big_udp"]
    assert head["tc"] and head["an"] == 0 and size <= 512, (head, size)
    head, size = out["big_tcp"]
    assert not head["tc"] and head["an"] == 20 and size > 512, (head, size)
    assert out["drop"] == "timeout"
    assert ("mx.test.example", "MX") in out["queries"]
    assert ("mx.test.example", "AAAA") in out["queries"]
