"""Training data from Tonic data sets: N-MNIST + SHD and N-MNIST + N-TIDIGITS18 pairs, one-sensor sets,
and the unimodal chain train -> QAT -> ONNX -> onnxruntime == integer mode == simulator.

Every file is written here in the data set's own format (tests/support/tonic_files.py); a sample's
events encode its class, so the pairing can be checked. Nothing is downloaded.
"""
from __future__ import annotations

import socket

import numpy as np
import pytest

from sensors.datasets import build_dataset
from sensors.tonic_pairs import DataConfigError, carve
from tests.support.configs import compose_config
from tests.support.tonic_files import make_nmnist, make_ntidigits, make_shd

SHD_TRAIN = [t for t in range(20) for _ in range(2)]      # English 0-9 and German 10-19, 2 each
SHD_TEST = list(range(20))
NTIDIGITS_IDS = [f"spk{k}-x-{d}" for k in range(2) for d in "o123456789z"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def tonic_root(tmp_path_factory):
    """N-MNIST (both splits, 1,000 files per digit: Tonic's minimum), SHD and N-TIDIGITS18 files."""
    root = tmp_path_factory.mktemp("tonic")
    make_nmnist(root, "Train", by_class=True)
    make_nmnist(root, "Test", by_class=True)
    make_shd(root, "shd_train.h5", SHD_TRAIN)
    make_shd(root, "shd_test.h5", SHD_TEST)
    make_ntidigits(root, NTIDIGITS_IDS)
    return root


def data_cfg(root, tmp_path, name, *extra):
    return compose_config("train", [f"data={name}", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}",
                                    "data.T=4", "data.vision.max_per_class=3", *extra]).data


def vision_digit(frames: np.ndarray) -> np.ndarray:
    """(N, T, 2, 34, 34) -> the digit each sample's events encode (x = 3 * digit)."""
    return np.array([np.flatnonzero(f.sum(axis=(0, 1, 2)))[0] // 3 for f in frames])


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_nmnist_shd_pairs_by_class(tonic_root, tmp_path, split):
    data = build_dataset(data_cfg(tonic_root, tmp_path, "nmnist_shd"), split)
    assert data.modalities == ("audio", "vision")
    if split == "test":
        assert data.labels.tolist() == [t % 10 for t in SHD_TEST]   # German digits join the English class
    else:   # SHD's train split has 4 samples per class: val_fraction 0.1 carves 1 (at least one), train keeps 3
        assert np.bincount(data.labels).tolist() == [3 if split == "train" else 1] * 10
    assert data.audio.shape == (len(data.labels), 4, 700) and data.vision.shape[1:] == (4, 2, 34, 34)
    channel = np.array([np.flatnonzero(a.sum(0))[0] for a in data.audio])
    assert (channel // 30 == data.labels).all()                      # audio from its own sample
    assert (vision_digit(data.vision) == data.labels).all()          # vision paired by class
    assert len(data.vision_pool) == (20 if split == "train" else len(np.unique(data.vision_index)))   # 3 - 1 per class
    again = build_dataset(data_cfg(tonic_root, tmp_path / "other", "nmnist_shd"), split)
    assert np.array_equal(again.vision_index, data.vision_index)    # seeded, deterministic


def test_val_is_carved_from_the_train_split_disjointly_and_deterministically(tonic_root, tmp_path):
    classes = np.repeat(np.arange(10), 20)
    train, val = carve(classes, "train", 0.1, 0), carve(classes, "val", 0.1, 0)
    assert not set(train) & set(val) and sorted([*train, *val]) == list(range(200))
    assert np.bincount(classes[val]).tolist() == [2] * 10 and np.array_equal(val, carve(classes, "val", 0.1, 0))
    assert not np.array_equal(val, carve(classes, "val", 0.1, 1))        # pair_seed draws another carve
    with pytest.raises(DataConfigError, match=r"data.val_fraction=1.0; expected a fraction in \(0, 1\)"):
        build_dataset(data_cfg(tonic_root, tmp_path, "nmnist_shd", "data.val_fraction=1.0"), "val")


def test_nmnist_ntidigits18_maps_oh_and_zero_to_class_0(tonic_root, tmp_path):
    data = build_dataset(data_cfg(tonic_root, tmp_path, "nmnist_ntidigits18"), "test")
    assert np.bincount(data.labels, minlength=10).tolist() == [4] + [2] * 9   # o and z, 2 speakers
    assert (np.array([np.flatnonzero(a.sum(0))[0] for a in data.audio]) // 5 == data.labels).all()
    assert (vision_digit(data.vision) == data.labels).all()


def test_one_sensor_data_sets(tonic_root, tmp_path):
    vision = build_dataset(data_cfg(tonic_root, tmp_path, "nmnist"), "train")
    assert vision.modalities == ("vision",) and vision.audio is None and len(vision.labels) == 20   # 3 - 1 val per class
    assert (vision_digit(vision.vision) == vision.labels).all()
    audio = build_dataset(compose_config("train", ["data=shd", f"data.root={tonic_root}", "data.T=4",
                                                   f"data.cache_dir={tmp_path / 'cache'}"]).data, "test")
    assert audio.modalities == ("audio",) and audio.vision is None and audio.labels.tolist() == [t % 10 for t in SHD_TEST]


def test_a_class_map_leaving_a_class_unpaired_is_a_config_error(tonic_root, tmp_path):
    english_only_but_no_three = "data.audio.classes=[0,1,2,null,4,5,6,7,8,9,0,1,2,null,4,5,6,7,8,9]"
    cfg = data_cfg(tonic_root, tmp_path, "nmnist_shd", english_only_but_no_three)
    with pytest.raises(DataConfigError, match=r"class\(es\) \[3\] of data.vision.classes have no audio sample"):
        build_dataset(cfg, "test")
    cfg = data_cfg(tonic_root, tmp_path, "nmnist_shd", "data.audio.classes=[0,1,2,3,4,5,6,7,8,12]")
    with pytest.raises(DataConfigError, match=r"data.audio.classes\[9\]=12; expected a class in 0..9"):
        build_dataset(cfg, "test")


def test_a_wrong_folder_names_it_and_never_downloads(tmp_path):
    (tmp_path / "NMNIST" / "Train").mkdir(parents=True)      # wrong layout: no digit folders
    cfg = data_cfg(tmp_path, tmp_path, "nmnist")
    with pytest.raises(FileNotFoundError, match=r"NMNIST.*missing Train/0"):
        build_dataset(cfg, "train")
    with pytest.raises(DataConfigError, match="data.vision.dataset='shd'; expected one of"):
        build_dataset(data_cfg(tmp_path, tmp_path, "nmnist", "data.vision.dataset=shd"), "train")


TINY_MODEL = ["trainer=default", "model.vision.channels=[4]", "model.vision.kernels=[5]", "model.vision.strides=[2]",
              "model.vision.features=8", "model.audio.hidden=[8]", "model.audio.features=8", "model.score_hidden=4",
              "trainer.batch_size=8", "trainer.progress=false", "trainer.log_epochs=false"]


@pytest.mark.parametrize("name, modalities", [("nmnist", ["vision"]), ("shd", ["audio"]),
                                              ("nmnist_shd", ["vision"])])
def test_unimodal_chain_is_exact(tonic_root, tmp_path, name, modalities):
    """One sensor, one encoder: float training, QAT, ONNX with one input; integer mode == onnxruntime
    == simulator on every output, and the simulator counts only that modality."""
    from edge_taaf.apps.export import export_checkpoint, quant_model_from_checkpoint
    from edge_taaf.apps.train import run_training
    from firmware_sim.loader import load_program
    from firmware_sim.run import simulate
    from quant.ort_runner import OrtModel, compare
    from quant.qmodel import run_integer

    extra = [f"model.modalities=[{','.join(modalities)}]"]
    base = [f"data={name}", f"data.root={tonic_root}", f"data.cache_dir={tmp_path / 'cache'}", "data.T=4",
            *TINY_MODEL, *extra] + ([] if name == "shd" else ["data.vision.max_per_class=3"])
    metrics = run_training(compose_config("train", [*base, "trainer.epochs=2"]), tmp_path / "float")
    assert set(k for k in metrics if k.endswith("_acc")) == {"val_fused_acc", *(f"val_{m}_acc" for m in modalities)}
    run_training(compose_config("train", [*base, "quant.weight_bits=8", "trainer.epochs=1",
                                   f"init_from={tmp_path / 'float' / 'checkpoint.pt'}"]), tmp_path / "qat")
    summary = export_checkpoint(tmp_path / "qat" / "checkpoint.pt", tmp_path / "m.onnx", verify=50)
    assert summary["verified_samples"] > 0
    program = load_program(tmp_path / "m.onnx")
    assert set(program.inputs) == set(modalities)
    assert {layer.modality for layer in program.layers} == set(modalities)

    model, cfg, _ = quant_model_from_checkpoint(tmp_path / "qat" / "checkpoint.pt")
    test = build_dataset(cfg.data, "test").only(modalities)
    ours = run_integer(model, test.vision, test.audio)
    assert compare(OrtModel(tmp_path / "m.onnx").run(test.vision, test.audio), ours) == []
    result = simulate(program, {m: np.swapaxes(x, 0, 1) for m, x in test.inputs().items()})
    sim = result.outputs()
    if "scores" not in ours:
        sim.pop("scores")
    assert compare(sim, ours) == []
    assert {u.modality for u in result.counts.units.values()} == {*modalities, "fusion"}
    assert sum(s.sum() for s in ours.values() if s.ndim > 2) > 0          # the layers spike


def test_one_sensor_model_refuses_the_other_input():
    import torch

    from edge_taaf.model import TwoModalitySNN
    from omegaconf import OmegaConf

    cfg = compose_config("train", ["data=synth", "model.modalities=[audio]", *TINY_MODEL])
    model = TwoModalitySNN(OmegaConf.to_container(cfg.model, resolve=True))
    audio = torch.zeros(4, 2, 64)
    assert model(None, audio).head_vision is None and model.vision is None
    with pytest.raises(ValueError, match=r"modalities are \['audio'\], but vision input is given"):
        model(torch.zeros(4, 2, 2, 34, 34), audio)
    with pytest.raises(Exception, match=r"model.modalities=\['radar'\]"):
        from edge_taaf.config import check_train_config
        check_train_config(compose_config("train", ["data=synth", "model.modalities=[radar]"]))


def test_a_model_sensor_the_data_lacks_is_a_config_error(tonic_root, tmp_path):
    from edge_taaf.config import ConfigError
    from edge_taaf.apps.train import run_training

    cfg = compose_config("train", ["data=nmnist", f"data.root={tonic_root}", f"data.cache_dir={tmp_path / 'c'}",
                                   "data.T=4", "data.vision.max_per_class=3", "model.modalities=[audio,vision]",
                                   *TINY_MODEL])
    with pytest.raises(ConfigError, match=r"model.modalities=\['audio', 'vision'\] but data=nmnist holds only \['vision'\]"):
        run_training(cfg, tmp_path / "run")


def test_pipeline_and_simulator_app_run_a_tonic_pair(tonic_root, tmp_path):
    """edge-taaf-pipeline on N-MNIST + SHD (both sensors), then edge-taaf-sim on its ONNX file."""
    from edge_taaf.apps.simulate import run_simulation
    from edge_taaf.apps.pipeline import run_pipeline

    data = ["data=nmnist_shd", f"data.root={tonic_root}", f"data.cache_dir={tmp_path / 'cache'}",
            "data.vision.max_per_class=3"]
    cfg = compose_config("pipeline", [*data, *TINY_MODEL, "data.T=4", "float_epochs=1", "qat_epochs=1",
                                      f"workdir={tmp_path / 'work'}"])
    report = run_pipeline(cfg, tmp_path / "run")
    assert report["data"] == "nmnist_shd" and report["synthetic"] is False
    assert report["onnx_ort_exact"] == 1 and report["sim_equals_int_mode"] == 1
    onnx_file = report["stages"]["export"]["folder"] + "/model.onnx"
    sim_cfg = compose_config("simulate", [*data, "data.T=4", f"onnx={onnx_file}"])
    sim = run_simulation(sim_cfg, tmp_path / "sim")
    assert sim["samples"] == len(SHD_TEST) and sim["accuracy"] == report["sim_acc"]


def test_loader_refuses_a_program_whose_inputs_and_readout_disagree():
    from firmware_sim.program import ContractError
    from tests.support.sim_programs import random_program

    program = random_program(np.random.default_rng(0))
    program.readout.audio_input, program.readout.warp_audio = None, None
    with pytest.raises(ContractError, match=r"readout reads modalities \['vision'\] but the inputs are \['audio', 'vision'\]"):
        program.check()


def test_program_file_form_round_trips():
    """One Program, one file form: to_metadata then from_arrays gives back the same program."""
    from firmware_sim.program_io import from_arrays, to_metadata
    from tests.support.sim_programs import random_program

    for seed, fusion in ((0, "taaf"), (1, "concat")):
        program = random_program(np.random.default_rng(seed), fusion=fusion)
        meta, tensors = to_metadata(program)
        again = from_arrays(meta, tensors)
        assert to_metadata(again)[0] == meta
        assert all(np.array_equal(a, tensors[k]) for k, a in to_metadata(again)[1].items())
