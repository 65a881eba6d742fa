"""docs/check_numbers.py: a results-table figure with no matching value in the JSON its section cites fails the check."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "check_numbers.py"


def load_module():
    spec = importlib.util.spec_from_file_location("check_numbers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


README = """# demo

## Install

| thing | value |
|---|---|
| not a result | 123.45 uJ |

## Results

### Energy

Numbers from `docs/bench/sim.json` and `docs/sweep/`.

| hardware | energy | latency | ratio | accuracy | goal | command |
|---|---|---|---|---|---|---|
| `hw45nm` | {energy} uJ | 1,283 us | **5.14x** (the ANN is 3.3x cheaper, issue #14) | 97.33 ± 0.61 % (>= 97 %) | >= 5 | `run --seed 7 --steps 999` |

### Other

Quoted from `docs/other.json`.

| key | value |
|---|---|
| accuracy | 99.67 % |

## Next section

| free | 42.42 ms |
|---|---|
| text | 77.77 ms |
"""


def write_repo(tmp_path: Path, energy: str) -> Path:
    (tmp_path / "docs" / "bench").mkdir(parents=True)
    (tmp_path / "docs" / "sweep" / "p1").mkdir(parents=True)
    (tmp_path / "docs" / "bench" / "sim.json").write_text(json.dumps(
        {"energy_uj": 2.8512, "latency": {"us": [1283.2]}, "ratio": 5.137, "flag": True}))
    (tmp_path / "docs" / "sweep" / "p1" / "report.json").write_text(json.dumps({"acc": 0.97333, "std": 0.0061,
                                                                               "ann_ratio": 0.303}))
    (tmp_path / "docs" / "other.json").write_text(json.dumps({"acc": 0.996667}))
    readme = tmp_path / "README.md"
    readme.write_text(README.format(energy=energy))
    return readme


def run_script(readme: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--readme", str(readme), *extra],
                          capture_output=True, text=True, timeout=60)


def test_every_figure_matched_after_the_tables_rounding_exits_0(tmp_path):
    readme = write_repo(tmp_path, "2.85")
    res = run_script(readme, "--verbose")
    assert res.returncode == 0, res.stdout + res.stderr
    # 2.85 uJ <- 2.8512, 1,283 us <- 1283.2, 5.14x <- 5.137, 3.3x <- 1 / 0.303, 97.33 % <- 0.97333, 0.61 % <- 0.0061,
    # 99.67 % <- 0.996667 (a cited file of another section), the goal/command columns and the >= and # numbers skipped
    assert "check_numbers: 7 figures" in res.stdout
    assert "docs/bench/sim.json.latency.us[0] = 1283.2" in res.stdout
    assert "(1 / v)" in res.stdout


def test_a_figure_without_a_json_value_is_named_and_exits_1(tmp_path):
    readme = write_repo(tmp_path, "4.23")
    res = run_script(readme)
    assert res.returncode == 1
    misses = [line for line in res.stdout.splitlines() if line.startswith("no JSON value")]
    assert misses == ["no JSON value: Energy (line 15) | `hw45nm` | energy | 4.23 uj"]


def test_a_value_in_a_json_the_section_does_not_cite_does_not_count(tmp_path):
    readme = write_repo(tmp_path, "2.85")
    readme.write_text(readme.read_text().replace("Quoted from `docs/other.json`.", "Quoted from nowhere."))
    res = run_script(readme)
    assert res.returncode == 1
    assert "Other (line 23) | (section) | (sources) | the section cites no docs/...json file or folder" in res.stdout
    assert "Other (line 23) | accuracy | value | 99.67 %" in res.stdout


def test_a_cited_json_that_does_not_exist_is_reported(tmp_path):
    readme = write_repo(tmp_path, "2.85")
    readme.write_text(readme.read_text().replace("docs/other.json", "docs/gone.json"))
    res = run_script(readme)
    assert res.returncode == 1 and "cited docs/gone.json does not exist" in res.stdout


@pytest.mark.parametrize("shown, stored, ok", [
    ("99.67 %", 0.99667, True), ("99.67 %", 99.666, True), ("99.67 %", 0.9962, False),
    ("2.85 uJ", 2.8512, True), ("2.85 uJ", 2851200.0, True), ("2.85 uJ", 2.86, False),
    ("5.14x", 5.137, True), ("5.14x", 5.146, False), ("1,283 us", 1283.4, True), ("1,283 us", 1.2831, True),
    ("1,283 us", 1284, False), ("0.30x", 0.295, True), ("10x", 1 / 0.097, True), ("-6.4 pp", -0.064, True),
    ("-6.4 pp", 0.064, False), ("100.00 %", 1.0, True), ("5e-4", 0.0005, True),
])
def test_rounding_and_units(shown, stored, ok):
    module = load_module()
    (figure,) = module.figures(shown)
    numbers = module.JsonNumbers.__new__(module.JsonNumbers)
    numbers.values, numbers.where = [stored], ["x.json.key"]
    assert (module.match(figure, numbers) is not None) == ok


def test_targets_issue_numbers_and_names_are_not_figures():
    module = load_module()
    texts = [f.text for f in module.figures("97.40 % (>= 97 %, issue #14, `sne22nm`, int6, 2x2 pixels) 96.6-98.0 %")]
    assert texts == ["97.40", "96.6", "98.0"]
    (mean, std) = module.figures("97.33 ± 0.61 %")
    assert mean.unit == std.unit == "%"


def test_sources_expand_braces_and_folders():
    module = load_module()
    assert module.cited_sources("see `docs/bench/r_seed{0,1}.json`, docs/frontend_sweep/ and docs/loso.md.") == [
        "docs/bench/r_seed0.json", "docs/bench/r_seed1.json", "docs/frontend_sweep/"]
