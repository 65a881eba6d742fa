"""sensors.mnist.load_mnist_test: MNIST's official test set (writers the training digits never met), IDX files.

The fixture tests/data/mnist_test holds the first 20 digits of each class of the real test set
(tests/data/ATTRIBUTION.md); the malformed files are written here.
"""
from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from sensors.mnist import MNIST_TEST_IMAGES, MNIST_TEST_LABELS, load_mnist5k, load_mnist_test
from tests.support.make_fixtures import MNIST_TEST_PER_CLASS, idx_ubyte, make_mnist_test

# The first labels of MNIST's official test set, in its own order.
T10K_FIRST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@pytest.fixture(scope="module")
def mnist_test(fixture_data_root):
    return load_mnist_test(fixture_data_root)


def write_test_set(root, images: np.ndarray, labels: np.ndarray) -> None:
    """IDX files of ``images`` (N, H, W) and ``labels`` (N,) under root/mnist_test/."""
    (root / "mnist_test").mkdir(parents=True, exist_ok=True)
    (root / MNIST_TEST_IMAGES).write_bytes(idx_ubyte(images))
    (root / MNIST_TEST_LABELS).write_bytes(idx_ubyte(labels))


def test_fixture_loads_as_the_first_digits_of_each_class_of_the_official_test_set(mnist_test):
    images, labels = mnist_test
    assert images.shape == (200, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (200,) and labels.dtype == np.int64
    assert np.all(np.bincount(labels, minlength=10) == MNIST_TEST_PER_CLASS)
    assert labels[:10].tolist() == T10K_FIRST_LABELS  # the test set's order, not sorted by label
    assert images.max() == 255 and images.min() == 0
    ink = (images > 0).sum(axis=(1, 2))
    assert ink.min() > 30 and ink.max() < 500  # every entry is a digit, none blank or filled


def test_fixture_digits_are_none_of_the_training_subsets(mnist_test, fixture_data_root):
    train_images, _ = load_mnist5k(fixture_data_root)
    train = {bytes(d) for d in train_images.reshape(len(train_images), -1)}
    assert not any(bytes(d) in train for d in mnist_test[0].reshape(200, -1))


@pytest.mark.full_data
def test_fixture_digits_are_none_of_the_5k_training_digits(mnist_test, full_data_root):
    train_images, _ = load_mnist5k(full_data_root)
    train = {bytes(d) for d in train_images.reshape(len(train_images), -1)}
    assert len(train) > 4990 and not any(bytes(d) in train for d in mnist_test[0].reshape(200, -1))


def test_make_fixtures_keeps_the_first_digits_per_class_in_order(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, size=400).astype(np.uint8)
    images = rng.integers(0, 256, size=(400, 28, 28)).astype(np.uint8)
    write_test_set(tmp_path / "full", images, labels)
    make_mnist_test(tmp_path / "full", tmp_path / "out")
    got_images, got_labels = load_mnist_test(tmp_path / "out")
    keep = [i for i in range(400) if (labels[:i] == labels[i]).sum() < MNIST_TEST_PER_CLASS]
    assert np.array_equal(got_images, images[keep]) and got_labels.tolist() == labels[keep].tolist()


def test_make_fixtures_reproduces_the_fixture_from_itself(fixture_data_root, tmp_path):
    """The fixture holds exactly 20 per class, so the selection applied to it returns it byte for byte."""
    make_mnist_test(fixture_data_root, tmp_path)
    for rel in (MNIST_TEST_IMAGES, MNIST_TEST_LABELS):
        assert (tmp_path / rel).read_bytes() == (fixture_data_root / rel).read_bytes(), rel


# ---- bad input -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", [MNIST_TEST_IMAGES, MNIST_TEST_LABELS])
def test_missing_file_is_named_with_the_fetch_command(fixture_data_root, tmp_path, missing):
    shutil.copytree(fixture_data_root / "mnist_test", tmp_path / "mnist_test")
    (tmp_path / missing).unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_mnist_test(tmp_path)
    assert str(tmp_path / missing) in str(err.value) and "edge-taaf-data fetch" in str(err.value)


def test_gzipped_file_is_named_by_its_magic_number(fixture_data_root, tmp_path):
    shutil.copytree(fixture_data_root / "mnist_test", tmp_path / "mnist_test")
    path = tmp_path / MNIST_TEST_IMAGES
    path.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: magic number 1f8b0800; expected 00000803"):
        load_mnist_test(tmp_path)


def test_wrong_image_size_names_the_dimensions(tmp_path):
    write_test_set(tmp_path, np.zeros((2, 27, 28), np.uint8), np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: dimensions 2 x 27 x 28; expected N x 28 x 28"):
        load_mnist_test(tmp_path)


def test_truncated_file_names_the_byte_count(fixture_data_root, tmp_path):
    shutil.copytree(fixture_data_root / "mnist_test", tmp_path / "mnist_test")
    path = tmp_path / MNIST_TEST_IMAGES
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: 156700 data bytes after the header; "
                                         r"expected 156800 for dimensions 200 x 28 x 28"):
        load_mnist_test(tmp_path)


def test_label_file_with_image_dimensions_is_rejected(tmp_path):
    write_test_set(tmp_path, np.zeros((2, 28, 28), np.uint8), np.zeros((2, 1), np.uint8))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: magic number 00000802; expected 00000801"):
        load_mnist_test(tmp_path)


def test_count_mismatch_names_both_files(tmp_path):
    write_test_set(tmp_path, np.zeros((2, 28, 28), np.uint8), np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"holds 2 images but .*t10k-labels-idx1-ubyte holds 3 labels"):
        load_mnist_test(tmp_path)


def test_label_outside_0_to_9_is_named(tmp_path):
    write_test_set(tmp_path, np.zeros((3, 28, 28), np.uint8), np.array([3, 10, 1], np.uint8))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: entry 1 holds label 10; expected 0..9"):
        load_mnist_test(tmp_path)
