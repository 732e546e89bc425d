"""Man page checks.

postern.conf(5) must document exactly the parameters the program knows:
every name printed by `postern conf -d` has an entry, and every entry names
a real parameter. Each entry shows the parameter's default, and the
parameters the table flags as ignored (IGN in src/conf/params.c) are in the
"ACCEPTED AND IGNORED PARAMETERS" section. Every man page under src/ renders
with groff's warnings on and produces none.

Environment: POSTERN_BIN is the directory holding the built programs.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONF_MAN = ROOT / "src" / "conf" / "postern.conf.5"
PARAM_SECTIONS = ("PARAMETERS", "ACCEPTED AND IGNORED PARAMETERS")
# Defaults that depend on the host or on build-time directories.
HOST_DEPENDENT = {"myhostname", "mydomain", "config_directory",
                  "queue_directory"}


def postern_bin():
    """The postern program under test."""
    bindir = os.environ.get("POSTERN_BIN")
    if not bindir:
        pytest.fail("POSTERN_BIN is not set (the directory of the built "
                    "programs, e.g. test/build)")
    return os.path.join(bindir, "postern")


def conf_defaults(tmp_path):
    """{name: default} from `postern conf -d`, with an empty config dir."""
    env = dict(os.environ, POSTERN_CONFIG_DIR=str(tmp_path))
    out = subprocess.run([postern_bin(), "conf", "-d"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    table = {}
    for line in out.stdout.splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_]+) =(?: (.*))?", line)
        assert m, "unexpected conf -d line: %r" % line
        table[m.group(1)] = m.group(2) or ""
    assert len(table) > 10
    return table


def unescape(text):
    """Roff source text to plain text, for matching values."""
    text = re.sub(r"\\f[BIRP]", "", text)
    return text.replace("\\-", "-").replace("\\&", "").replace('"', "")


def man_entries():
    """{name: (section, entry text)} for the .TP entries of parameters."""
    lines = CONF_MAN.read_text(encoding="utf-8").splitlines()
    entries, section, current, tag_line = {}, None, None, -1
    for i, line in enumerate(lines):
        if i == tag_line:
            continue
        if line.startswith(".SH"):
            section = line[3:].strip().strip('"')
            current = None
            continue
        if section not in PARAM_SECTIONS:
            continue
        if line.startswith(".TP") and i + 1 < len(lines):
            tag = lines[i + 1].split()
            if tag and tag[0] in (".B", ".BR") and len(tag) > 1:
                current = tag[1].strip('"')
                assert current not in entries, "%s documented twice" % current
                entries[current] = [section, ""]
                tag_line = i + 1
                continue
        if line.startswith(".SS"):
            current = None
        elif current is not None:
            entries[current][1] += " " + line
    return {k: (s, unescape(t)) for k, (s, t) in entries.items()}


def ignored_in_source():
    """Names the parameter table flags as accepted and ignored."""
    src = (ROOT / "src" / "conf" / "params.c").read_text(encoding="utf-8")
    return set(re.findall(r'\bIGN\("([A-Za-z0-9_]+)"', src))


def test_every_parameter_is_documented(tmp_path):
    table = conf_defaults(tmp_path)
    documented = man_entries()
    missing = sorted(set(table) - set(documented))
    assert not missing, "not in postern.conf.5: %s" % ", ".join(missing)


def test_every_documented_entry_exists(tmp_path):
    table = conf_defaults(tmp_path)
    documented = man_entries()
    unknown = sorted(set(documented) - set(table))
    assert not unknown, "documented but unknown: %s" % ", ".join(unknown)


def test_entries_show_their_defaults(tmp_path):
    table = conf_defaults(tmp_path)
    documented = man_entries()
    for name, value in table.items():
        if name in HOST_DEPENDENT or name not in documented:
            continue
        text = " ".join(documented[name][1].split())
        want = value if value else "empty"
        assert want in text, "%s: default %r not in its entry" % (name, want)


def test_ignored_parameters_are_listed_as_ignored():
    documented = man_entries()
    ignored = ignored_in_source()
    assert ignored, "no IGN() rows found in params.c"
    for name in ignored:
        assert name in documented
        assert documented[name][0] == "ACCEPTED AND IGNORED PARAMETERS", name
    for name, (section, _) in documented.items():
        if section == "ACCEPTED AND IGNORED PARAMETERS":
            assert name in ignored, "%s is not ignored by postern" % name


def test_tls_default_difference_is_documented():
    src = CONF_MAN.read_text(encoding="utf-8")
    src = re.sub(r"(?m)^\.[A-Z]+ ?", "", src)     # drop font macros
    text = " ".join(unescape(src).split())
    assert re.search(r"smtp_tls_security_level\s+defaults? to\s+verify", text)


def man_pages():
    """Every man page in the source tree."""
    pages = []
    for pattern in ("*.1", "*.5", "*.8"):
        pages.extend((ROOT / "src").rglob(pattern))
    return sorted(pages)


@pytest.mark.parametrize("page", man_pages(),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_man_page_renders_without_warnings(page):
    if shutil.which("groff") is None:
        pytest.fail("groff is missing: scripts/install-deps installs groff-base")
    env = dict(os.environ, LC_ALL="C.UTF-8")
    out = subprocess.run(["groff", "-ww", "-man", "-Tutf8", str(page)],
                         env=env, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    assert out.stderr == b"", out.stderr.decode(errors="replace")
    assert len(out.stdout) > 200
