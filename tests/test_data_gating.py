"""The real-data fixture set (tests/data) and the gating of full-data tests (tests/support/data_gating.py).

The gating is run in a child pytest on a scratch test file: a full_data test skips, with a reason
naming EDGE_TAAF_DATA, when the variable is unset, and fails under --require-data (what .ci/run uses).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import make_fixtures
from tests.support.data_gating import EXPECTED, FIXTURE_ROOT, OPTION

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 3 * 1024 * 1024


def fixture_files() -> list[Path]:
    return sorted(p for p in FIXTURE_ROOT.rglob("*") if p.is_file() and p.name != "ATTRIBUTION.md")


# ---------------------------------------------------------------- the fixture set


def test_fixture_set_is_complete_small_and_attributed(fixture_data_root):
    files = fixture_files()
    rel = {p.relative_to(FIXTURE_ROOT).as_posix() for p in files}
    wavs = {r.removeprefix("fsdd/recordings/") for r in rel if r.startswith("fsdd/recordings/")}
    assert wavs == set(make_fixtures.fsdd_names()) and len(wavs) == 60
    assert rel - {f"fsdd/recordings/{w}" for w in wavs} == {
        "fsdd/speakers.json", "mnist5k/mnist_5k.csv.gz", "events/sample_nmnist.bin", "events/sample.aedat4",
        "mnist_test/t10k-images-idx3-ubyte", "mnist_test/t10k-labels-idx1-ubyte"}
    total = sum(p.stat().st_size for p in files)
    assert total <= MAX_BYTES, f"tests/data holds {total:,} bytes, more than {MAX_BYTES:,}"
    attribution = (FIXTURE_ROOT / "ATTRIBUTION.md").read_text()
    for name in ("fsdd/recordings/", "fsdd/speakers.json", "mnist5k/mnist_5k.csv.gz", "events/sample_nmnist.bin",
                 "events/sample.aedat4", "mnist_test/t10k-images-idx3-ubyte", "mnist_test/t10k-labels-idx1-ubyte",
                 "CC BY-SA 4.0", "CC BY-SA 3.0", "GPL-3.0"):
        assert name in attribution, f"tests/data/ATTRIBUTION.md does not mention {name}"


def test_gitignore_does_not_hide_the_fixture_set():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = [str(p.relative_to(ROOT)) for p in [*fixture_files(), FIXTURE_ROOT / "ATTRIBUTION.md"]]
    proc = subprocess.run(["git", "check-ignore", "--no-index", "-v", *paths], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == "", f"ignored by git:\n{proc.stdout}{proc.stderr}"


@pytest.mark.full_data
def test_fixture_set_is_exactly_what_make_fixtures_writes_from_the_full_data(full_data_root, tmp_path):
    """Every fixture file is real data: make_fixtures.py reproduces tests/data byte for byte."""
    written = make_fixtures.make(full_data_root, tmp_path)  # all but mnist_test/ (not in ../shared/data)
    assert sorted(p.relative_to(tmp_path) for p in written) == [
        p.relative_to(FIXTURE_ROOT) for p in fixture_files() if p.parent.name != "mnist_test"]
    differ = [str(p.relative_to(tmp_path)) for p in written if p.read_bytes() != (FIXTURE_ROOT / p.relative_to(tmp_path)).read_bytes()]
    assert not differ, f"tests/data differs from make_fixtures.py's output in {differ}"
    for name in make_fixtures.fsdd_names():  # the clips are the full set's files, unchanged
        assert (tmp_path / "fsdd" / "recordings" / name).read_bytes() == (full_data_root / "fsdd" / "recordings" / name).read_bytes()


# ---------------------------------------------------------------- the gating, in a child pytest

SCRATCH_TESTS = '''
import pytest


@pytest.mark.full_data
def test_marked():
    pass


def test_uses_root(full_data_root):
    assert (full_data_root / "fsdd" / "recordings").is_dir()


@pytest.mark.full_data
def test_skips_itself():
    pytest.skip("skipped for a reason of its own")


def test_plain():
    pass
'''


def run_child(tmp_path, data: str | None, *args: str) -> tuple[int, dict[str, str], str]:
    """Run pytest on the scratch tests; (exit code, {test name: PASSED/FAILED/ERROR/SKIPPED}, output)."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.support.data_gating"]\n')
    (tmp_path / "test_scratch.py").write_text(SCRATCH_TESTS)
    env = {k: v for k, v in os.environ.items() if k not in ("EDGE_TAAF_DATA", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    if data is not None:
        env["EDGE_TAAF_DATA"] = data
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q", *args, "test_scratch.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    outcomes = {m.group(2): m.group(1) for m in re.finditer(r"^(PASSED|FAILED|ERROR|SKIPPED)\S* test_scratch\.py::(\w+)", out, re.M)}
    skipped = re.findall(r"^SKIPPED \[\d+\] \S+: (.*)$", out, re.M)
    for reason in skipped:  # -rA lists skips by reason, not by name
        name = "test_skips_itself" if "reason of its own" in reason else None
        if name:
            outcomes[name] = "SKIPPED"
    return proc.returncode, outcomes, out


def test_without_the_variable_full_data_tests_skip_naming_it(tmp_path):
    code, outcomes, out = run_child(tmp_path, None)
    assert code == 0, out
    assert re.search(r"\b1 passed, 3 skipped\b", out), out
    assert outcomes.get("test_plain") == "PASSED", out
    reasons = re.findall(r"^SKIPPED \[(\d+)\] \S+: (.*)$", out, re.M)
    assert sum(int(n) for n, r in reasons if "set the environment variable EDGE_TAAF_DATA" in r) == 3, out


def test_require_data_turns_every_full_data_skip_into_a_failure(tmp_path):
    code, outcomes, out = run_child(tmp_path, None, OPTION)
    assert code == 1, out
    # failed in setup (pytest reports those as errors): the suite fails either way
    assert outcomes == {"test_marked": "ERROR", "test_uses_root": "ERROR", "test_skips_itself": "ERROR",
                        "test_plain": "PASSED"}, out
    assert re.search(r"\b1 passed, 3 errors\b", out), out
    assert out.count(f"{OPTION}: full data sets not available: set the environment variable EDGE_TAAF_DATA") >= 3, out


def test_with_the_variable_full_data_tests_run(tmp_path):
    # tests/data has the full root's layout, so it stands in for it here
    code, outcomes, out = run_child(tmp_path, str(FIXTURE_ROOT), OPTION)
    assert code == 1, out
    assert outcomes == {"test_marked": "PASSED", "test_uses_root": "PASSED", "test_skips_itself": "FAILED",
                        "test_plain": "PASSED"}, out
    # a skip from anywhere else (here the test's own pytest.skip) is a failure too
    assert "a full_data test may not be skipped (skipped for a reason of its own)" in out, out


def test_with_the_variable_but_without_the_option_other_skips_stay_skips(tmp_path):
    code, outcomes, out = run_child(tmp_path, str(FIXTURE_ROOT))
    assert code == 0, out
    assert outcomes == {"test_marked": "PASSED", "test_uses_root": "PASSED", "test_skips_itself": "SKIPPED",
                        "test_plain": "PASSED"}, out


def test_variable_naming_a_missing_folder_fails_without_the_option(tmp_path):
    code, outcomes, out = run_child(tmp_path, str(tmp_path / "nowhere"))
    assert code == 1, out
    assert outcomes["test_marked"] == "ERROR" and outcomes["test_uses_root"] == "ERROR", out
    assert "nowhere" in out and "does not exist" in out, out


def test_variable_naming_an_incomplete_folder_fails_naming_what_is_missing(tmp_path):
    (tmp_path / "partial" / "fsdd" / "recordings").mkdir(parents=True)
    code, outcomes, out = run_child(tmp_path, str(tmp_path / "partial"))
    assert code == 1 and outcomes["test_marked"] == "ERROR", out
    assert "mnist5k/mnist_5k.csv.gz" in out, out


def test_the_suite_registers_the_option_and_the_marker(pytestconfig):
    assert pytestconfig.getoption(OPTION) in (True, False)
    assert any(line.startswith("full_data:") for line in pytestconfig.getini("markers"))
    assert set(EXPECTED) >= {"events/sample.aedat4", "mnist5k/mnist_5k.csv.gz"}


# ---------------------------------------------------------------- .ci/run


def test_ci_run_fails_at_once_without_the_data_folder(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    (repo / ".ci" / "run").write_bytes((ROOT / ".ci" / "run").read_bytes())
    proc = subprocess.run(["bash", str(repo / ".ci" / "run")], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": os.environ.get("PATH", "")})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "../shared/data" in proc.stderr and "missing" in proc.stderr, proc.stderr
    assert not (repo / ".venv-ci").exists()  # stopped before any install


def test_ci_run_never_skips_full_data_tests():
    lines = [line.split("#")[0].split() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    pytest_runs = [words for words in lines if words[:3] == ["python", "-m", "pytest"]]
    assert pytest_runs and all(OPTION in words for words in pytest_runs), pytest_runs
