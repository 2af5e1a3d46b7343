"""Recipe models: every kind builds and learns, the module names, init statistics, freezing."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from netdoctor.errors import ConfigError
from netdoctor.recipes.data import Dataset, make_dataset
from netdoctor.recipes.models import build_model
from netdoctor.recipes.spec import DataSpec, ModelSpec

SOURCE = "recipes/x.toml"


def data_for(kind: str, **options) -> Dataset:
    options.setdefault("samples", 64)
    return make_dataset(DataSpec(kind=kind, **options), 0, SOURCE)


def build(kind: str, data: Dataset, seed: int = 0, **options) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelSpec(kind=kind, **options), data, source=SOURCE)


def loss_of(model: nn.Module, data: Dataset) -> torch.Tensor:
    out = model(data.train.x)
    if data.num_classes is None:
        return F.mse_loss(out, data.train.y)
    return F.cross_entropy(out, data.train.y)


def train_steps(model: nn.Module, data: Dataset, steps: int, lr: float = 1e-2) -> list[float]:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_of(model, data)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


TINY = {"depth": 2, "width": 8}
CASES = [
    ("mlp", "blobs", {}),
    ("mlp", "blobs", {"batchnorm": True, "dropout": 0.1, "activation": "tanh"}),
    ("resmlp", "blobs", {"activation": "gelu"}),
    ("cnn", "shapes", {"batchnorm": True}),
    ("rescnn", "shapes", {"activation": "leaky_relu"}),
    ("rnn", "adding", {"activation": "tanh"}),
    ("lstm", "adding", {"dropout": 0.1}),
    ("gru", "copy", {"batchnorm": True}),
]


@pytest.mark.parametrize(("kind", "data_kind", "options"), CASES)
def test_every_kind_builds_and_learns(kind, data_kind, options):
    data = data_for(data_kind, image_size=8, seq_len=6)
    model = build(kind, data, **TINY, **options)
    model.eval()
    assert model(data.val.x).shape == (len(data.val), data.n_outputs)
    model.train()
    losses = train_steps(model, data, 25)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.7 * losses[0]


def test_mlp_module_names():
    model = build("mlp", data_for("spirals"), depth=2, width=8, batchnorm=True, dropout=0.2,
                  output_softmax=True)
    names = [name for name, _ in model.named_modules()][1:]
    block = ["linear", "norm", "act", "dropout"]
    assert names == (["hidden"] + ["hidden.0"] + [f"hidden.0.{n}" for n in block]
                     + ["hidden.1"] + [f"hidden.1.{n}" for n in block] + ["head", "softmax"])
    assert isinstance(model.hidden[0].act, nn.ReLU)
    assert isinstance(model.hidden[0].norm, nn.BatchNorm1d)


def test_plain_mlp_has_only_what_it_uses():
    model = build("mlp", data_for("blobs"), depth=1, width=4)
    assert [n for n, _ in model.named_modules()][1:] == [
        "hidden", "hidden.0", "hidden.0.linear", "hidden.0.act", "head"]


def test_cnn_module_names():
    model = build("cnn", data_for("shapes", image_size=8), depth=2, width=4, dropout=0.1)
    names = [name for name, _ in model.named_modules()][1:]
    assert names == ["blocks", "blocks.0", "blocks.0.conv", "blocks.0.act", "blocks.0.pool",
                     "blocks.1", "blocks.1.conv", "blocks.1.act", "blocks.1.pool", "flatten",
                     "fc", "fc.linear", "fc.act", "fc.dropout", "head"]
    assert [model.blocks[i].conv.out_channels for i in range(2)] == [4, 8]  # doubled per block
    assert model.fc.linear.out_features == 8


def test_rescnn_module_names_and_projection():
    model = build("rescnn", data_for("shapes", image_size=8), depth=1, width=4, batchnorm=True)
    names = [name for name, _ in model.named_modules()][1:]
    block = ["conv1", "norm1", "act1", "conv2", "norm2", "skip", "act2", "pool"]
    assert names == (["blocks", "blocks.0"] + [f"blocks.0.{n}" for n in block]
                     + ["flatten", "fc", "fc.linear", "fc.norm", "fc.act", "head"])
    assert model.blocks[0].skip.kernel_size == (1, 1)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_recurrent_module_names(kind):
    model = build(kind, data_for("adding", seq_len=5), depth=2, width=6, batchnorm=True,
                  dropout=0.1)
    names = [name for name, _ in model.named_modules()][1:]
    assert names == [kind, "norm", "dropout", "head"]
    layer = getattr(model, kind)
    assert (layer.num_layers, layer.hidden_size, layer.batch_first) == (2, 6, True)


@pytest.mark.parametrize(("activation", "nonlinearity"),
                         [("relu", "relu"), ("tanh", "tanh"), ("sigmoid", "tanh")])
def test_rnn_activation_maps_to_its_nonlinearity(activation, nonlinearity):
    model = build("rnn", data_for("adding", seq_len=4), depth=1, width=4, activation=activation)
    assert model.rnn.nonlinearity == nonlinearity


@pytest.mark.parametrize(("activation", "cls"), [
    ("relu", nn.ReLU), ("leaky_relu", nn.LeakyReLU), ("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid),
    ("gelu", nn.GELU), ("elu", nn.ELU), ("identity", nn.Identity)])
def test_activations_are_real_modules(activation, cls):
    model = build("mlp", data_for("blobs"), depth=1, width=4, activation=activation)
    assert type(model.hidden[0].act) is cls


def test_depth_zero_mlp_is_a_linear_model():
    model = build("mlp", data_for("blobs"), depth=0)
    assert [type(m) for m in model.modules()][1:] == [nn.Sequential, nn.Linear]


def test_mlp_flattens_images_and_sequences():
    for data in (data_for("shapes", image_size=8), data_for("adding", seq_len=5)):
        model = build("mlp", data, depth=1, width=4)
        assert model.hidden[0].linear.in_features == math.prod(data.input_shape)
        assert model(data.train.x[:3]).shape == (3, data.n_outputs)


def test_residual_blocks_add_their_input_where_widths_match():
    model = build("resmlp", data_for("blobs"), depth=3, width=5)
    assert [block.residual for block in model.hidden] == [False, True, True]
    block = model.hidden[1]
    with torch.no_grad():
        block.linear.weight.zero_()
        block.linear.bias.fill_(-1.0)  # relu(-1) = 0: the block's branch adds nothing
    x = torch.randn(4, 5)
    assert torch.equal(block(x), x)
    assert all(not b.residual for b in build("mlp", data_for("blobs"), depth=3, width=5).hidden)
    assert all(b.residual for b in build("mlp", data_for("blobs"), depth=3, width=5,
                                         residual=True).hidden[1:])


def test_cnn_stops_pooling_when_the_image_is_one_pixel():
    data = data_for("shapes", image_size=8)
    model = build("cnn", data, depth=4, width=2)
    assert [hasattr(b, "pool") for b in model.blocks] == [True, True, True, False]
    assert model(data.train.x[:2]).shape == (2, data.n_outputs)


def test_output_softmax_ends_in_a_softmax():
    data = data_for("spirals")
    model = build("mlp", data, depth=1, width=4, output_softmax=True)
    assert isinstance(list(model.modules())[-1], nn.Softmax)
    out = model(data.train.x)
    assert torch.allclose(out.sum(dim=1), torch.ones(len(out)))
    assert torch.all(out >= 0)


def test_output_softmax_on_regression_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^recipes/x\.toml: model\.output_softmax = True"):
        build("mlp", data_for("regression"), output_softmax=True)


@pytest.mark.parametrize(("kind", "data_kind", "needs"),
                         [("cnn", "spirals", "needs images"), ("rescnn", "adding", "needs images"),
                          ("lstm", "blobs", "needs sequences"),
                          ("gru", "shapes", "needs sequences")])
def test_a_model_that_cannot_read_the_data_is_a_config_error(kind, data_kind, needs):
    with pytest.raises(ConfigError, match=rf"^recipes/x\.toml: model\.kind = '{kind}' {needs}"):
        build(kind, data_for(data_kind, image_size=8, seq_len=4))


@pytest.mark.parametrize(("options", "key"), [
    ({"kind": "transformer"}, "kind"), ({"kind": "mlp", "activation": "relu6"}, "activation"),
    ({"kind": "mlp", "init": "orthogonal"}, "init"), ({"kind": "mlp", "depth": -1}, "depth"),
    ({"kind": "rnn", "depth": 0}, "depth"), ({"kind": "mlp", "width": 0}, "width"),
    ({"kind": "mlp", "dropout": 1.0}, "dropout")])
def test_bad_model_settings_name_the_key(options, key):
    data = data_for("adding", seq_len=4) if options["kind"] == "rnn" else data_for("blobs")
    with pytest.raises(ConfigError, match=rf"^recipes/x\.toml: model\.{key} = "):
        build_model(ModelSpec(**options), data, source=SOURCE)


def test_same_seed_same_weights():
    data = data_for("spirals")
    a, b = build("mlp", data, seed=5), build("mlp", data, seed=5)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


# ---- initialisation -----------------------------------------------------------------------------
def weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]


WIDE = data_for("blobs", features=400)


@pytest.mark.parametrize(("init", "activation", "expected_std"), [
    ("he", "relu", lambda fan_in, fan_out: math.sqrt(2 / fan_in)),
    ("he", "leaky_relu", lambda fan_in, fan_out: math.sqrt(2 / (1 + 0.01**2) / fan_in)),
    ("lecun", "tanh", lambda fan_in, fan_out: 1 / math.sqrt(fan_in)),
    ("normal", "relu", lambda fan_in, fan_out: 0.05),
    ("xavier", "tanh", lambda fan_in, fan_out: 5 / 3 * math.sqrt(2 / (fan_in + fan_out))),
    ("xavier", "sigmoid", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out))),
    ("xavier", "relu", lambda fan_in, fan_out: math.sqrt(2) * math.sqrt(2 / (fan_in + fan_out))),
])
def test_init_gives_the_documented_weight_spread(init, activation, expected_std):
    model = build("mlp", WIDE, depth=1, width=300, init=init, activation=activation,
                  init_std=0.05, bias_init=0.25)
    weight = model.hidden[0].linear.weight.detach()  # 300 x 400
    assert float(weight.std()) == pytest.approx(expected_std(400, 300), rel=0.03)
    assert abs(float(weight.mean())) < 0.1 * expected_std(400, 300)
    if init == "xavier":  # uniform within gain * sqrt(6 / (fan_in + fan_out))
        bound = expected_std(400, 300) * math.sqrt(3)
        assert float(weight.abs().max()) <= bound
        assert float(weight.abs().max()) > 0.99 * bound
    else:  # normal: about 4.6 % of draws beyond two standard deviations
        beyond = float((weight.abs() > 2 * expected_std(400, 300)).float().mean())
        assert beyond == pytest.approx(0.0455, abs=0.01)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            assert torch.all(module.bias == 0.25)


def test_he_init_counts_a_convolutions_kernel_in_fan_in():
    model = build("cnn", data_for("shapes", image_size=8), depth=2, width=16, init="he")
    weight = model.blocks[1].conv.weight.detach()  # 32 x 16 x 3 x 3
    assert float(weight.std()) == pytest.approx(math.sqrt(2 / (16 * 9)), rel=0.05)


def test_recurrent_init_is_per_gate_with_one_effective_bias():
    data = data_for("adding", seq_len=4)
    model = build("lstm", data, depth=2, width=200, init="xavier", activation="tanh",
                  bias_init=0.5)
    hh = model.lstm.weight_hh_l1.detach()  # 4 gates of 200 x 200
    bound = 5 / 3 * math.sqrt(6 / 400)
    for gate in hh.chunk(4):
        assert float(gate.abs().max()) <= bound
        assert float(gate.std()) == pytest.approx(bound / math.sqrt(3), rel=0.03)
    assert torch.all(model.lstm.bias_ih_l0 == 0.5) and torch.all(model.lstm.bias_hh_l0 == 0)
    rnn = build("rnn", data, depth=1, width=300, init="he")
    assert float(rnn.rnn.weight_hh_l0.detach().std()) == pytest.approx(math.sqrt(2 / 300), rel=0.03)


def test_default_init_is_pytorchs():
    data = data_for("blobs")
    ours = build("mlp", data, seed=1, depth=1, width=8, bias_init=3.0)
    torch.manual_seed(1)
    theirs = nn.Linear(2, 8)
    assert torch.equal(ours.hidden[0].linear.weight, theirs.weight)
    assert torch.equal(ours.hidden[0].linear.bias, theirs.bias)  # bias_init needs an init


@pytest.mark.parametrize(("init", "value"), [("zeros", 0.0), ("constant", 0.1)])
def test_zeros_and_constant_init_make_units_identical(init, value):
    data = data_for("spirals")
    model = build("mlp", data, depth=2, width=6, init=init, init_value=value,
                  activation="tanh")
    for weight in weights(model):
        assert torch.all(weight == value)
    train_steps(model, data, 10)
    for block in model.hidden:  # every unit got the same gradient: they are still copies
        w = block.linear.weight
        assert torch.allclose(w, w[:1].expand_as(w), atol=1e-6)
    # ... while a random init keeps them apart
    other = build("mlp", data, depth=2, width=6, init="he")
    w = other.hidden[1].linear.weight
    assert not torch.allclose(w, w[:1].expand_as(w), atol=1e-3)


def test_batchnorm_keeps_its_own_init():
    model = build("mlp", data_for("blobs"), depth=1, width=4, batchnorm=True, init="zeros")
    assert torch.all(model.hidden[0].norm.weight == 1) and torch.all(model.hidden[0].norm.bias == 0)


# ---- freezing -----------------------------------------------------------------------------------
def test_freeze_stops_exactly_the_named_modules():
    data = data_for("spirals")
    model = build("mlp", data, depth=3, width=8, batchnorm=True, freeze=("hidden.0", "head"))
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"hidden.0.linear.weight", "hidden.0.linear.bias", "hidden.0.norm.weight",
                      "hidden.0.norm.bias", "head.weight", "head.bias"}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    train_steps(model, data, 3)
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]) == (name in frozen), name


def test_freeze_a_recurrent_layer():
    model = build("gru", data_for("adding", seq_len=4), depth=1, width=4, freeze=("gru",))
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight",
                                                                          "head.bias"]


def test_freeze_an_unknown_module_lists_the_names():
    with pytest.raises(ConfigError) as info:
        build("mlp", data_for("blobs"), depth=1, width=4, freeze=("hidden.3",))
    assert str(info.value) == (
        "recipes/x.toml: model.freeze: 'hidden.3' is not a module with parameters (modules: "
        "hidden, hidden.0, hidden.0.linear, head)")


def test_freeze_does_not_match_a_name_prefix_inside_a_word():
    with pytest.raises(ConfigError, match="'hid' is not a module"):
        build("mlp", data_for("blobs"), depth=1, width=4, freeze=("hid",))
