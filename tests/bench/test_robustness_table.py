"""docs/robustness_table.py: the seeds table quotes the bench JSON, and says how many seeds a key rests on."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_table_module():
    spec = importlib.util.spec_from_file_location("robustness_table", ROOT / "docs" / "robustness_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def result(official, speaker=None, vision_only=0.9, audio_silent=0.9):
    return {"official_sim_acc": official, "speaker_heldout_fused": speaker, "loso_fused_mean": speaker,
            "min_fused_minus_best_unimodal": 0.02, "audio_silent_acc": audio_silent, "vision_silent_acc": 0.8,
            "audio_only_acc": 0.8, "vision_only_acc": vision_only, "noisy_audio_acc": 0.9, "noisy_dvs_acc": 0.9}


def row(text, key):
    return next(line for line in text.splitlines() if line.startswith(f"| `{key}`"))


def test_the_table_quotes_each_seed_its_mean_and_whether_every_seed_met_the_target():
    table = load_table_module().table([result(0.996, 0.975), result(0.994), result(0.998)], ["0", "1", "2"])
    official = row(table, "official_sim_acc")
    assert "99.60 %" in official and "99.40 %" in official and "99.60 ± 0.16 %" in official and official.endswith("**no** |")
    speaker = row(table, "speaker_heldout_fused")
    assert "97.50 %" in speaker and speaker.count("n/a") == 2 and speaker.endswith("yes (1 of 3 seeds run) |")
    assert row(table, "audio_silent_acc").endswith("yes |")                       # 0.9 >= vision alone 0.9 - 1 pp
    assert row(table, "noisy_dvs_acc").endswith("reported |  |")


def test_the_script_reads_the_last_line_of_each_file(tmp_path, capsys):
    for seed, acc in (("0", 0.99), ("1", 0.97)):
        (tmp_path / f"robustness_seed{seed}.json").write_text("log line\n" + json.dumps(result(acc)) + "\n")
    load_table_module().main([str(p) for p in tmp_path.glob("*.json")])
    out = capsys.readouterr().out
    assert "| seed 0 | seed 1 |" in out and "98.00 ± 1.00 %" in out


def test_unseen_failures_get_a_table_of_their_own(tmp_path, capsys):
    for seed, acc in (("0", 0.5), ("1", 0.7)):
        (tmp_path / f"robustness_seed{seed}.json").write_text(json.dumps(result(0.99) | {"ood_dead_channels": acc}))
    load_table_module().main([str(p) for p in tmp_path.glob("*.json")])
    in_dist, ood = capsys.readouterr().out.split("Failures never seen in training")
    assert "ood_" not in in_dist and "| `ood_dead_channels` | 25 % dead cochlea channels | 50.00 % | 70.00 % |" in ood
    assert row(ood, "ood_clipping").count("n/a") == 3                       # two seeds and their mean
