"""Real-data gating for the tests (a pytest plugin; tests/conftest.py loads it via ``pytest_plugins``).

Two kinds of real-data tests:

* ``fixture_data_root`` (session fixture): tests/data, a small set of real recordings laid out like
  the full data root (fsdd/, mnist5k/, events/; see tests/data/ATTRIBUTION.md). Always present in a
  checkout, so these tests always run.
* ``@pytest.mark.full_data`` and the ``full_data_root`` fixture: tests that need the whole data sets,
  read from the folder EDGE_TAAF_DATA names. Without EDGE_TAAF_DATA they are skipped with a reason
  naming it; with ``--require-data`` (what .ci/run passes) that skip, and any other skip of a
  full_data test, is a failure. EDGE_TAAF_DATA set to a folder that lacks the data is always a
  failure (a misconfiguration, not an absent data set).

A test that requests ``full_data_root`` gets the full_data marker automatically.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from sensors.paths import DATA_ENV, data_root, require_files

FIXTURE_ROOT = Path(__file__).resolve().parents[1] / "data"
EXPECTED = ["fsdd/recordings", "fsdd/speakers.json", "mnist5k/mnist_5k.csv.gz",
            "events/sample_nmnist.bin", "events/sample.aedat4"]
MARKER = "full_data"
OPTION = "--require-data"
SKIP_REASON = (f"full data sets not available: set the environment variable {DATA_ENV} to the folder holding "
               "fsdd/, mnist5k/ and events/ (e.g. ../shared/data) to run this test")


def pytest_addoption(parser):
    parser.addoption(OPTION, action="store_true", default=False,
                     help=f"fail (never skip) tests marked {MARKER} when {DATA_ENV} is unset (CI passes this)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", f"{MARKER}: needs the whole real data sets in ${DATA_ENV}; skipped without it, "
                   f"a failure under {OPTION}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "full_data_root" in getattr(item, "fixturenames", ()) and item.get_closest_marker(MARKER) is None:
            item.add_marker(MARKER)


def full_root(config) -> Path:
    """The full data root from EDGE_TAAF_DATA, or skip (fail under --require-data) when it is unset."""
    if not os.environ.get(DATA_ENV):
        if config.getoption(OPTION):
            pytest.fail(f"{OPTION}: {SKIP_REASON}", pytrace=False)
        pytest.skip(SKIP_REASON)
    root = data_root()  # set: a missing folder raises FileNotFoundError naming it
    require_files(root, EXPECTED, f"full data root (from {DATA_ENV})")
    return root


def pytest_runtest_setup(item):
    if item.get_closest_marker(MARKER) is not None:
        full_root(item.config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if (report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker(MARKER) is not None
            and item.config.getoption(OPTION)):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"{OPTION}: a {MARKER} test may not be skipped ({reason})"
    return report


@pytest.fixture(scope="session")
def full_data_root(request) -> Path:
    """The whole data sets (EDGE_TAAF_DATA); skipped without it, a failure under --require-data."""
    return full_root(request.config)


@pytest.fixture(scope="session")
def fixture_data_root() -> Path:
    """tests/data: a few real recordings of every kind, laid out like the full data root."""
    require_files(FIXTURE_ROOT, EXPECTED, "test fixture data (regenerate with tests/support/make_fixtures.py)")
    return FIXTURE_ROOT
