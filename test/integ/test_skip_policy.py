"""test_skip_policy.py - the skip policy of conftest.py, run for real.

Under CI=true a skip whose reason is not in OPTIONAL_SKIPS must fail the
run; without CI it stays a skip; either way the summary counts the skips
and says why. Each case runs pytest in a subprocess on a small test file
next to a copy of this directory's conftest.py.
"""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = '''
import pytest


def test_needs_root():
    pytest.skip("needs root: a reason CI must provide")


def test_optional():
    pytest.skip("../shared/examples is not beside this clone")


@pytest.fixture
def gone():
    pytest.skip("cannot make network namespaces here: EPERM")


def test_fixture_skip(gone):
    pass


def test_passes():
    pass
'''


def run_cases(tmp_path, ci):
    shutil.copy(os.path.join(HERE, "conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_cases.py").write_text(CASES)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    env.pop("CI", None)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p",
         "no:cacheprovider", str(tmp_path)], cwd=str(tmp_path), env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=120)


def test_ci_fails_a_skip_ci_must_not_have(tmp_path):
    r = run_cases(tmp_path, ci=True)
    assert r.returncode != 0, r.stdout
    # The test body's skip fails, the fixture's skip is an error (setup),
    # the optional one stays a skip.
    assert "1 failed, 1 passed, 1 skipped, 1 error" in r.stdout, r.stdout
    assert "CI=true and this test was skipped: needs root" in r.stdout
    assert ("CI=true and this test was skipped: cannot make network "
            "namespaces here") in r.stdout
    assert "1 skipped: ../shared/examples is not beside this clone" \
        in r.stdout
    assert "postern: 1 test(s) skipped; CI=true: 2 unexpected skip(s), " \
        "failed" in r.stdout, r.stdout
    assert "unexpected skip, failed: test_cases.py::test_needs_root: " \
        "needs root" in r.stdout, r.stdout


def test_without_ci_skips_are_counted(tmp_path):
    r = run_cases(tmp_path, ci=False)
    assert r.returncode == 0, r.stdout
    assert "1 passed, 3 skipped" in r.stdout, r.stdout
    assert "postern: 3 test(s) skipped\n" in r.stdout
    assert "1 skipped: needs root: a reason CI must provide" in r.stdout
