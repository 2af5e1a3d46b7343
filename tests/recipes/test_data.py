"""Recipe data: generated problems, user files, split, normalisation, augmentation, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from netdoctor.errors import ConfigError
from netdoctor.recipes.data import (
    COPY_SYMBOLS,
    MAX_INFERRED_CLASSES,
    SHAPE_NAMES,
    augment_batch,
    make_dataset,
)
from netdoctor.recipes.spec import DataSpec

SOURCE = "recipes/x.toml"


def dataset(kind: str, seed: int = 0, **options):
    options.setdefault("samples", 60)
    return make_dataset(DataSpec(kind=kind, **options), seed, SOURCE)


# ---- generated problems -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "options", "input_shape", "num_classes", "n_outputs", "sequence"),
    [
        ("spirals", {"classes": 4}, (2,), 4, 4, False),
        ("blobs", {"classes": 3, "features": 5}, (5,), 3, 3, False),
        ("shapes", {"classes": 5, "image_size": 12}, (1, 12, 12), 5, 5, False),
        ("adding", {"seq_len": 9}, (9, 2), None, 1, True),
        ("copy", {"seq_len": 8, "classes": 4}, (8, 4 + COPY_SYMBOLS), 4, 4, True),
        ("regression", {"features": 3}, (3,), None, 1, False),
    ],
)
def test_generated_shapes_and_dtypes(kind, options, input_shape, num_classes, n_outputs,
                                     sequence):
    data = dataset(kind, **options)
    assert data.input_shape == input_shape
    assert (data.num_classes, data.n_outputs, data.sequence) == (num_classes, n_outputs, sequence)
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == torch.float32
        assert tuple(split.x.shape[1:]) == input_shape
        if num_classes is None:
            assert split.y.dtype == torch.float32 and tuple(split.y.shape) == (len(split), 1)
        else:
            assert split.y.dtype == torch.int64 and tuple(split.y.shape) == (len(split),)
    if num_classes is not None:
        labels = torch.cat([data.train.y, data.val.y, data.test.y])
        assert set(labels.tolist()) == set(range(num_classes))
    assert len(data.train) + len(data.val) + len(data.test) == 60


@pytest.mark.parametrize("kind", ["spirals", "blobs", "shapes", "adding", "copy", "regression"])
def test_same_seed_same_data_other_seed_other_data(kind):
    a, b, c = dataset(kind, seed=3), dataset(kind, seed=3), dataset(kind, seed=4)
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(a, name).x, getattr(b, name).x)
        assert torch.equal(getattr(a, name).y, getattr(b, name).y)
    assert not torch.equal(a.train.x, c.train.x)


def test_adding_target_is_the_sum_of_the_marked_values():
    data = dataset("adding", seq_len=12, normalize=False)
    x, y = data.train.x, data.train.y[:, 0]
    assert torch.equal(x[:, :, 1].sum(dim=1), torch.full((len(x),), 2.0))
    first_half = x[:, :6, 1].sum(dim=1)
    assert torch.equal(first_half, torch.ones(len(x)))  # one mark in each half
    assert torch.allclose((x[:, :, 0] * x[:, :, 1]).sum(dim=1), y)


def test_copy_target_is_the_queried_symbol():
    k = 4
    data = dataset("copy", seq_len=10, classes=k, normalize=False)
    x, y = data.train.x, data.train.y
    symbols = x[:, :COPY_SYMBOLS, :k].argmax(dim=2)  # (n, COPY_SYMBOLS)
    query = x[:, -1, k:].argmax(dim=1)
    assert torch.equal(symbols[torch.arange(len(x)), query], y)
    assert torch.count_nonzero(x[:, COPY_SYMBOLS:-1]) == 0  # the delay is blank


def test_shapes_classes_look_different():
    data = dataset("shapes", samples=400, classes=len(SHAPE_NAMES), noise=0.0, normalize=False)
    x, y = data.train.x[:, 0], data.train.y
    filled = torch.stack([(x[y == c] > 0).float().mean() for c in range(len(SHAPE_NAMES))])
    assert torch.all(filled > 0.02)  # every class draws something inside the image
    square, circle, diamond = (filled[SHAPE_NAMES.index(n)] for n in ("square", "circle",
                                                                      "diamond"))
    assert square > circle > diamond  # areas 4r², πr², 2r²


def test_noise_controls_the_blob_spread():
    tight = dataset("blobs", samples=300, noise=0.05, normalize=False)
    loose = dataset("blobs", samples=300, noise=0.5, normalize=False)

    def spread(data):
        x, y = data.train.x, data.train.y
        return float(torch.stack([x[y == c].std(dim=0).mean() for c in range(3)]).mean())

    assert spread(tight) == pytest.approx(0.05, rel=0.3)
    assert spread(loose) == pytest.approx(0.5, rel=0.3)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"kind": "shapes", "classes": len(SHAPE_NAMES) + 1}, "data.classes"),
        ({"kind": "spirals", "classes": 1}, "data.classes"),
        ({"kind": "spirals", "samples": 2}, "data.samples"),
        ({"kind": "adding", "seq_len": 1}, "data.seq_len"),
        ({"kind": "copy", "seq_len": COPY_SYMBOLS}, "data.seq_len"),
        ({"kind": "regression", "features": 0}, "data.features"),
        ({"kind": "shapes", "image_size": 4}, "data.image_size"),
        ({"kind": "blobs", "noise": -1.0}, "data.noise"),
        ({"kind": "parquet"}, "data.kind"),
    ],
)
def test_bad_generated_settings_name_the_file_and_key(options, key):
    with pytest.raises(ConfigError) as info:
        make_dataset(DataSpec(**options), 0, SOURCE)
    assert str(info.value).startswith(f"{SOURCE}: {key} = ")
    assert "\n" not in str(info.value)


# ---- split and normalisation --------------------------------------------------------------------
def index_npz(tmp_path: Path, n: int = 100) -> Path:
    """Row i holds the value i: which rows went where can be read back from the splits."""
    path = tmp_path / "rows.npz"
    np.savez(path, x=np.arange(n, dtype=np.float32)[:, None], y=np.arange(n) % 2)
    return path


def test_split_sizes_are_disjoint_and_cover_everything(tmp_path):
    path = index_npz(tmp_path)
    data = make_dataset(DataSpec(kind="npz", path=str(path), normalize=False,
                                 split=(0.6, 0.25, 0.15)), 0, SOURCE)
    assert (len(data.train), len(data.val), len(data.test)) == (60, 25, 15)
    rows = torch.cat([data.train.x, data.val.x, data.test.x])[:, 0]
    assert sorted(rows.tolist()) == list(range(100))
    assert data.train.x[:, 0].tolist() != sorted(data.train.x[:, 0].tolist())  # shuffled


def test_split_is_shuffled_by_the_seed(tmp_path):
    spec = DataSpec(kind="npz", path=str(index_npz(tmp_path)), normalize=False)
    a, b = make_dataset(spec, 1, SOURCE), make_dataset(spec, 2, SOURCE)
    assert torch.equal(make_dataset(spec, 1, SOURCE).train.x, a.train.x)
    assert not torch.equal(a.train.x, b.train.x)


def test_empty_splits_are_allowed():
    data = dataset("spirals", samples=50, split=(1.0, 0.0, 0.0))
    assert (len(data.train), len(data.val), len(data.test)) == (50, 0, 0)
    assert tuple(data.val.x.shape) == (0, 2)


@pytest.mark.parametrize(
    "split",
    [(0.5, 0.5, 0.5), (0.0, 0.5, 0.5), (1.1, -0.1, 0.0), (0.5, 0.5), "0.7,0.15,0.15",
     (0.7, float("nan"), 0.3), (True, 0, 0), (0.7, "a", 0.3)],
)
def test_bad_split_is_a_config_error(split):
    with pytest.raises(ConfigError, match=r"^recipes/x\.toml: data\.split = .*sum"):
        dataset("spirals", split=split)


def test_small_sets_round_val_and_test_down():
    data = dataset("spirals", samples=10)
    assert (len(data.train), len(data.val), len(data.test)) == (8, 1, 1)
    data = dataset("spirals", samples=3, split=(0.01, 0.49, 0.5))
    assert (len(data.train), len(data.val), len(data.test)) == (1, 1, 1)


def test_normalisation_uses_the_train_split_only():
    raw = dataset("blobs", samples=200, features=3, normalize=False, input_offset=5.0)
    data = dataset("blobs", samples=200, features=3, normalize=True, input_offset=5.0)
    mean, std = raw.train.x.mean(dim=0), raw.train.x.std(dim=0, correction=0)
    assert torch.allclose(data.train.x, (raw.train.x - mean) / std, atol=1e-5)
    assert torch.allclose(data.val.x, (raw.val.x - mean) / std, atol=1e-5)
    assert torch.allclose(data.train.x.mean(dim=0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(data.train.x.std(dim=0, correction=0), torch.ones(3), atol=1e-5)
    # the val split's own statistics were not used: its mean is not exactly 0
    assert data.val.x.mean(dim=0).abs().max() > 1e-3


def test_images_are_normalised_per_channel(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2, 5, 5)).astype(np.float32)
    x[:, 1] = x[:, 1] * 30 + 100
    np.savez(tmp_path / "img.npz", x=x, y=np.arange(40) % 2)
    data = make_dataset(DataSpec(kind="npz", path=str(tmp_path / "img.npz")), 0, SOURCE)
    per_channel = data.train.x.transpose(0, 1).reshape(2, -1)
    assert torch.allclose(per_channel.mean(dim=1), torch.zeros(2), atol=1e-4)
    assert torch.allclose(per_channel.std(dim=1, correction=0), torch.ones(2), atol=1e-4)


def test_sequences_are_normalised_per_feature():
    data = dataset("adding", samples=100, seq_len=10)
    flat = data.train.x.reshape(-1, 2)
    assert torch.allclose(flat.mean(dim=0), torch.zeros(2), atol=1e-4)
    assert torch.allclose(flat.std(dim=0, correction=0), torch.ones(2), atol=1e-4)


def test_scale_and_offset_apply_to_the_raw_inputs():
    raw = dataset("spirals", normalize=False)
    shifted = dataset("spirals", normalize=False, input_scale=100.0, input_offset=50.0)
    assert torch.allclose(shifted.train.x, raw.train.x * 100 + 50)
    assert torch.equal(shifted.train.y, raw.train.y)
    normalised = dataset("spirals", input_scale=100.0, input_offset=50.0)
    assert float(normalised.train.x.abs().max()) < 10


def test_a_constant_feature_is_not_divided_by_zero(tmp_path):
    x = np.stack([np.arange(30.0), np.full(30, 7.0)], axis=1)
    np.savez(tmp_path / "c.npz", x=x, y=np.arange(30) % 3)
    data = make_dataset(DataSpec(kind="npz", path=str(tmp_path / "c.npz")), 0, SOURCE)
    assert torch.isfinite(data.train.x).all()
    assert torch.equal(data.train.x[:, 1], torch.zeros(len(data.train)))


# ---- .npz ---------------------------------------------------------------------------------------
def test_npz_classification_round_trip(tmp_path):
    x = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    y = np.array([3, 5, 7] * 16 + [3, 5])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = make_dataset(DataSpec(kind="npz", path=str(tmp_path / "d.npz"), normalize=False,
                                 split=(1.0, 0.0, 0.0)), 0, SOURCE)
    assert (data.num_classes, data.n_outputs, data.input_shape) == (3, 3, (4,))
    # labels 3, 5, 7 become 0, 1, 2; each row keeps its own label
    lookup = {tuple(row): label for row, label in zip(x.tolist(), [0, 1, 2] * 16 + [0, 1],
                                                  strict=True)}
    for row, label in zip(data.train.x.tolist(), data.train.y.tolist(), strict=True):
        assert lookup[tuple(row)] == label


@pytest.mark.parametrize(("y", "n_outputs"), [(np.linspace(0, 1, 30), 1),
                                              (np.ones((30, 3)) * np.arange(3), 3)])
def test_npz_regression_round_trip(tmp_path, y, n_outputs):
    np.savez(tmp_path / "r.npz", x=np.arange(60.0).reshape(30, 2), y=y)
    data = make_dataset(DataSpec(kind="npz", path=str(tmp_path / "r.npz")), 0, SOURCE)
    assert data.num_classes is None and data.n_outputs == n_outputs
    assert data.train.y.dtype == torch.float32 and data.train.y.shape[1] == n_outputs


def test_npz_sequences_and_images(tmp_path):
    np.savez(tmp_path / "s.npz", x=np.zeros((10, 7, 3)), y=np.arange(10) % 2)
    np.savez(tmp_path / "i.npz", x=np.zeros((10, 3, 6, 6)), y=np.arange(10) % 2)
    seq = make_dataset(DataSpec(kind="npz", path=str(tmp_path / "s.npz")), 0, SOURCE)
    img = make_dataset(DataSpec(kind="npz", path=str(tmp_path / "i.npz")), 0, SOURCE)
    assert (seq.sequence, seq.input_shape) == (True, (7, 3))
    assert (img.sequence, img.input_shape) == (False, (3, 6, 6))


def test_relative_paths_are_found_next_to_the_recipe(tmp_path, monkeypatch):
    (tmp_path / "recipes").mkdir()
    np.savez(tmp_path / "recipes" / "d.npz", x=np.zeros((10, 2)), y=np.arange(10) % 2)
    monkeypatch.chdir(tmp_path)
    recipe = str(tmp_path / "recipes" / "r.toml")
    data = make_dataset(DataSpec(kind="npz", path="d.npz"), 0, recipe)
    assert len(data.train) == 8
    # ... and in the current folder, as typed on the command line
    data = make_dataset(DataSpec(kind="npz", path="recipes/d.npz"), 0, "elsewhere/r.toml")
    assert len(data.train) == 8


def npz_error(tmp_path: Path, **arrays) -> str:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ConfigError) as info:
        make_dataset(DataSpec(kind="npz", path=str(path)), 0, SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: data.path = {str(path)!r}: ")
    assert "\n" not in message
    return message


def test_npz_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"^recipes/x\.toml: data\.path = 'a\.npz': no such "
                                          r"file$"):
        make_dataset(DataSpec(kind="npz", path="a.npz"), 0, SOURCE)


def test_npz_without_a_path():
    with pytest.raises(ConfigError, match=r"^recipes/x\.toml: data\.path is required"):
        make_dataset(DataSpec(kind="npz"), 0, SOURCE)


def test_npz_missing_array(tmp_path):
    assert npz_error(tmp_path, x=np.zeros((5, 2))).endswith("array 'y' missing")


def test_npz_nan_names_the_row_and_column(tmp_path):
    x = np.zeros((8, 3))
    x[4, 1] = np.nan
    assert "x[4, 1] is nan (row 4)" in npz_error(tmp_path, x=x, y=np.arange(8) % 2)


def test_npz_nan_in_a_regression_target(tmp_path):
    y = np.zeros(8)
    y[6] = np.inf
    assert "y[6] is inf" in npz_error(tmp_path, x=np.zeros((8, 2)), y=y)


def test_npz_mismatched_lengths(tmp_path):
    assert "array 'y' has shape (7,)" in npz_error(tmp_path, x=np.zeros((8, 2)), y=np.zeros(7))


def test_npz_bad_x_shape(tmp_path):
    assert "array 'x' has shape (8,)" in npz_error(tmp_path, x=np.zeros(8), y=np.zeros(8))


def test_npz_text_arrays(tmp_path):
    assert "not numbers" in npz_error(tmp_path, x=np.array([["a", "b"]] * 4), y=np.zeros(4))


def test_npz_single_class(tmp_path):
    assert "single value" in npz_error(tmp_path, x=np.zeros((8, 2)), y=np.ones(8, dtype=int))


def test_npz_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros(4))
    with pytest.raises(ConfigError, match=r"not a readable \.npz file"):
        make_dataset(DataSpec(kind="npz", path=str(path)), 0, SOURCE)


def test_not_an_npz_file(tmp_path):
    path = tmp_path / "fake.npz"
    path.write_text("hello")
    with pytest.raises(ConfigError, match=r"not a readable \.npz file"):
        make_dataset(DataSpec(kind="npz", path=str(path)), 0, SOURCE)


# ---- .csv ---------------------------------------------------------------------------------------
def write_csv(tmp_path: Path, text: str) -> DataSpec:
    path = tmp_path / "d.csv"
    path.write_text(text)
    return DataSpec(kind="csv", path=str(path), target="label", normalize=False,
                    split=(1.0, 0.0, 0.0))


def test_csv_integer_target_with_few_values_is_classification(tmp_path):
    rows = "".join(f"{i},{i * 0.5},{i % 3 + 1}\n" for i in range(30))
    data = make_dataset(write_csv(tmp_path, "a,b,label\n" + rows), 0, SOURCE)
    assert (data.num_classes, data.input_shape) == (3, (2,))
    for (a, b), label in zip(data.train.x.tolist(), data.train.y.tolist(), strict=True):
        assert b == a * 0.5 and label == int(a) % 3


def test_csv_float_target_is_regression(tmp_path):
    rows = "".join(f"{i},{i / 7:.4f}\n" for i in range(30))
    data = make_dataset(write_csv(tmp_path, "a,label\n" + rows), 0, SOURCE)
    assert data.num_classes is None
    assert torch.allclose(data.train.y[:, 0], data.train.x[:, 0] / 7, atol=1e-4)


def test_csv_integer_target_with_many_values_is_regression(tmp_path):
    n = MAX_INFERRED_CLASSES + 5
    rows = "".join(f"{i},{i}\n" for i in range(n))
    data = make_dataset(write_csv(tmp_path, "a,label\n" + rows), 0, SOURCE)
    assert data.num_classes is None and data.n_outputs == 1


def test_csv_target_column_may_be_anywhere_and_blank_lines_are_skipped(tmp_path):
    rows = "".join(f"{i % 2}, {i}\n\n" for i in range(10))
    data = make_dataset(write_csv(tmp_path, "label, a\n" + rows), 0, SOURCE)
    assert data.num_classes == 2
    assert torch.equal(data.train.x[:, 0].long() % 2, data.train.y)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a,b\n1,2\n3,4\n5,6\n", "data.target = 'label' is not a column (columns: a, b)"),
        ("a,label\n1,0\n2,nan\n3,1\n", "line 3, column 'label' is nan"),
        ("a,label\n1,0\n2,1\n,1\n", "line 4, column 'a' is empty"),
        ("a,label\n1,0\n2,x\n3,1\n", "line 3, column 'label': 'x' is not a number"),
        ("a,label\n1,0\n2,1,5\n3,1\n", "line 3 has 3 values, the header has 2"),
        ("label\n1\n0\n1\n", "no feature column"),
        ("", "the file is empty"),
    ],
)
def test_csv_errors_name_the_line_and_column(tmp_path, text, problem):
    spec = write_csv(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        make_dataset(spec, 0, SOURCE)
    assert str(info.value).startswith(f"{SOURCE}: data.path = {spec.path!r}: ")
    assert problem in str(info.value)


# ---- augmentation -------------------------------------------------------------------------------
def test_augmentation_is_off_unless_asked():
    x = torch.randn(8, 2)
    assert augment_batch(x, DataSpec(kind="spirals"), torch.Generator()) is x


def test_image_augmentation_flips_and_shifts_reproducibly():
    x = dataset("shapes", samples=64, image_size=16, noise=0.0, normalize=False).train.x
    spec = DataSpec(kind="shapes", augment=True)
    a = augment_batch(x, spec, torch.Generator().manual_seed(0))
    b = augment_batch(x, spec, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, x)
    # flips and zero-padded shifts move pixels but never create new values
    assert set(a.unique().tolist()) <= set(x.unique().tolist()) | {0.0}


def test_vector_augmentation_is_small_noise():
    x = torch.randn(256, 3) * torch.tensor([1.0, 10.0, 100.0])
    a = augment_batch(x, DataSpec(kind="blobs", augment=True), torch.Generator().manual_seed(0))
    relative = ((a - x).std(dim=0) / x.std(dim=0))
    assert torch.all((relative > 0.02) & (relative < 0.1))


def test_sequence_augmentation_keeps_the_shape():
    x = dataset("adding", seq_len=7).train.x
    a = augment_batch(x, DataSpec(kind="adding", augment=True), torch.Generator().manual_seed(0))
    assert a.shape == x.shape and not torch.equal(a, x)
    assert math.isclose(float((a - x).std()), 0.05, rel_tol=0.3)
