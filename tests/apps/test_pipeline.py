"""The one-command pipeline: stages run once, re-runs skip, a changed value re-runs what it reaches."""
import json

import pytest

from edge_taaf.apps.pipeline import run_pipeline
from edge_taaf.apps.sweep import pareto_front, summarise_sweep
from tests.support.configs import TINY, compose_config


def pipeline_cfg(tmp_path, *extra):
    tiny = [o for o in TINY if not o.startswith(("data.T=", "trainer.epochs="))]
    return compose_config("pipeline", [*tiny, "data.T=6", "float_epochs=1", "qat_epochs=1",
                                       f"workdir={tmp_path / 'work'}", f"data.cache_dir={tmp_path / 'cache'}", *extra])


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipe")
    report = run_pipeline(pipeline_cfg(tmp), tmp / "run1")
    return tmp, report


def test_report_holds_every_stage_and_the_contract_checks(first_run):
    tmp, report = first_run
    assert report["synthetic"] is True and report["T"] == 6 and report["weight_bits"] == 8
    assert report["onnx_ort_exact"] == 1 and report["sim_equals_int_mode"] == 1
    assert report["sim_acc"] == report["int_acc"]
    assert report["selected_on"] == "val" and 0.0 <= report["val_acc"] <= 1.0
    assert report["val_samples"] == 30 and report["test_samples"] == 30        # data.n_val follows data.n_test
    assert report["vision_test_source"] is None                                 # synth: no MNIST digits to name
    assert {"float_val_acc", "qat_val_acc"} <= set(report) and "float_acc" not in report
    assert report["energy_uj_per_inference"] > 0 and report["latency_us_per_inference"] > 0
    # the total is the network plus the front-end rows both sides pay, each reported; the covers list says so
    assert report["energy_uj_per_inference"] == pytest.approx(report["network_energy_uj_per_inference"]
                                                              + report["frontend_energy_uj_per_inference"])
    assert report["frontend_energy_uj_per_inference"] > 0 and any("filterbank" in c for c in report["energy_covers"])
    r, r_total = report["energy_ratio_ann_int8_vs_snn"], report["energy_ratio_ann_int8_vs_snn_with_frontend"]
    assert (1 < r_total < r) if r > 1 else (r <= r_total <= 1)     # a row both sides pay pulls the ratio towards 1
    assert report["energy_ratio_bound_if_later_layers_free"] > report["energy_ratio_ann_int8_vs_snn"] > 0
    assert report["spikes_per_inference"] > 0
    assert not any(s["cached"] for s in report["stages"].values())
    saved = json.loads((tmp / "run1" / "report.json").read_text())
    assert saved["sim_acc"] == report["sim_acc"]
    md = (tmp / "run1" / "report.md").read_text()
    assert "simulator accuracy" in md and md.index("**validation** (30 samples") < md.index("**test** (30 samples")
    assert f"| deployed int8 program, val accuracy (integer mode) | {100 * report['val_acc']:.2f} % |" in md
    assert (tmp / "run1" / "simulate_energy.png").exists()
    # the same counts priced by every shipped hardware config: the range a user sees
    assert set(report["energy_by_hardware"]) == {"horowitz45nm", "sne22nm"}
    assert report["energy_by_hardware"]["horowitz45nm"]["energy_uj"] == report["energy_uj_per_inference"]
    assert "sne22nm: energy" in (tmp / "run1" / "report.md").read_text()
    rates = report["layer_spike_rates"]           # per-layer firing rates, counted by the simulator
    assert set(rates) == {"vision.conv0", "vision.conv1", "vision.dense", "audio.fc0", "audio.fc1"}
    assert all(0 <= r <= 1 for r in rates.values()) and report["max_layer_spike_rate"] == max(rates.values()) > 0
    assert "firing rate per layer" in (tmp / "run1" / "report.md").read_text()


def test_rerun_skips_and_changed_hardware_reruns_only_the_simulator(first_run):
    tmp, report = first_run
    again = run_pipeline(pipeline_cfg(tmp), tmp / "run2")
    assert all(s["cached"] for s in again["stages"].values())
    assert again["sim_acc"] == report["sim_acc"]
    changed = run_pipeline(pipeline_cfg(tmp, "hardware.clock_mhz=200"), tmp / "run3")
    cached = {k: s["cached"] for k, s in changed["stages"].items()}
    assert cached == {"data": True, "float": True, "qat": True, "export": True, "simulate": False}
    assert changed["latency_us_per_inference"] == pytest.approx(report["latency_us_per_inference"] / 2)


def test_the_deployed_programs_val_accuracy_is_integer_mode_on_val(first_run):
    from edge_taaf.apps.export import quant_model_from_checkpoint
    from quant.qmodel import run_integer
    from sensors.datasets import build_dataset

    tmp, report = first_run
    model, cfg, _ = quant_model_from_checkpoint(report["stages"]["qat"]["folder"] + "/checkpoint.pt")
    val = build_dataset(pipeline_cfg(tmp).data, "val")
    assert report["val_acc"] == float((run_integer(model, val.vision, val.audio)["logits"].argmax(1) == val.labels).mean())


def test_select_on_test_is_a_config_error_before_any_data_is_built(tmp_path, monkeypatch):
    import edge_taaf.apps.pipeline as pipeline
    from edge_taaf.apps.sweep import SweepSummary
    from edge_taaf.config import ConfigError

    def no_data(*args):
        raise AssertionError("data built before the config was checked")
    monkeypatch.setattr(pipeline, "build_dataset", no_data)
    with pytest.raises(ConfigError, match=r"select_on='test': choices are made on the validation split; expected 'val'"):
        run_pipeline(pipeline_cfg(tmp_path, "select_on=test"), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"select_on='test'"):
        SweepSummary().on_multirun_end(pipeline_cfg(tmp_path, "select_on=test"))
    assert not (tmp_path / "work").exists()


def test_pareto_front_and_sweep_table(tmp_path):
    assert pareto_front([(1.0, 0.9), (2.0, 0.95), (2.5, 0.94), (0.5, 0.5)]) == [0, 1, 3]
    # the test accuracies would put point 2 on the front and point 1 off it: the front follows val
    for i, (t, bits, energy, acc, test) in enumerate([(4, 8, 1.0, 0.90, 0.90), (8, 8, 2.0, 0.97, 0.91),
                                                       (8, 4, 2.5, 0.93, 0.99)]):
        d = tmp_path / f"point{i}"
        d.mkdir()
        d.joinpath("report.json").write_text(json.dumps({
            "T": t, "weight_bits": bits, "val_acc": acc, "int_acc": test, "sim_acc": test,
            "energy_uj_per_inference": energy, "latency_us_per_inference": 10.0,
            "energy_ratio_ann_int8_vs_snn": 4.0 / energy, "energy_ratio_single_pass_ann_vs_snn": 0.5 / energy,
            "energy_ratio_single_pass_zero_skip_vs_snn": 0.25 / energy, "onnx_ort_exact": 1, "sim_equals_int_mode": 1,
            "spikes_per_inference": 1000 * energy,
            "energy_by_hardware": {"horowitz45nm": {"energy_uj": energy}, "sne22nm": {"energy_uj": energy / 10}}}))
    competitor = tmp_path / "ann_result.json"
    competitor.write_text(json.dumps({"accuracy": 0.96, "energy_uj": {"horowitz45nm": {"dense": 0.6, "zero_skip": 0.4},
                                                                      "sne22nm": {"dense": 0.06, "zero_skip": 0.04}}}))
    rows = summarise_sweep(tmp_path, competitor)
    assert [r["pareto"] for r in rows] == [True, True, False]
    assert rows[1]["energy_by_hardware"] == {"horowitz45nm": 2.0, "sne22nm": 0.2}
    table = (tmp_path / "comparison.md").read_text()
    assert "| yes | 2000 | 2.0000 | 2.00x | 0.25x | 0.12x |" in table and (tmp_path / "pareto.png").exists()
    assert "| point1 | 8 | 8 | 97.00 | 91.00 |" in table and all(r["selected_on"] == "val" for r in rows)
    (tmp_path / "point3").mkdir()
    (tmp_path / "point3" / "report.json").write_text(json.dumps({"T": 4, "sim_acc": 0.9}))
    with pytest.raises(ValueError, match=r"point3/report.json: no val_acc"):
        summarise_sweep(tmp_path)


def test_warm_start_sweep_point_fine_tunes_a_float_run(first_run):
    """float_init: the float stage starts from a trained float checkpoint (a fine-tuning sweep over front-ends
    and firing-rate targets), keyed by the file's digest; a missing file is a config error naming the option."""
    from edge_taaf.config import ConfigError

    tmp, report = first_run
    base = report["stages"]["float"]["folder"] + "/checkpoint.pt"
    warm = run_pipeline(pipeline_cfg(tmp, f"float_init={base}", "frontend.audio.clip=1"), tmp / "warm")
    assert not warm["stages"]["float"]["cached"] and warm["stages"]["float"]["folder"] != report["stages"]["float"]["folder"]
    assert warm["onnx_ort_exact"] == 1 and warm["sim_equals_int_mode"] == 1
    with pytest.raises(ConfigError, match="float_init='/nowhere/checkpoint.pt': no such checkpoint file"):
        run_pipeline(pipeline_cfg(tmp, "float_init=/nowhere/checkpoint.pt"), tmp / "bad")


def test_an_impossible_step_count_stops_the_command_with_the_option_named(tmp_path):
    """edge-taaf-pipeline data.T=0: one line naming the option (no traceback), before any data is built."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "EDGE_TAAF_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "edge_taaf.apps.pipeline", "data.T=0", f"hydra.run.dir={tmp_path / 'run'}",
                           f"workdir={tmp_path / 'work'}", f"data.cache_dir={tmp_path / 'cache'}"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0 and "edge-taaf-pipeline: data.T must be >= 1, got 0" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "cache").exists()
