"""netdoctor.checkup: each check on a real tiny model that has the problem, and healthy models
(MLP, CNN, LSTM, GRU regression, residual, batchnorm + dropout, dict batches) that get nothing
above info. The caller's model, its gradients and the random number generators stay untouched.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import netdoctor
from netdoctor.capture.checkup import checkup
from netdoctor.diagnosis import Diagnosis, Severity


def blobs(n: int = 64, features: int = 20, classes: int = 4, seed: int = 0):
    """Linearly separable classes (argmax of a random projection)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    return x, (x @ torch.randn(features, classes, generator=g)).argmax(1)


def mlp(*sizes: int, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def loud(found: list[Diagnosis]) -> list[Diagnosis]:
    return [d for d in found if d.severity is not Severity.INFO]


def only(found: list[Diagnosis], rule: str) -> Diagnosis:
    hits = [d for d in found if d.rule == rule]
    assert len(hits) == 1, [(d.rule, d.severity.value, d.message) for d in found]
    return hits[0]


# ---- healthy models ----------------------------------------------------------------------------
class LSTMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(8, 32, batch_first=True)
        self.head = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class GRURegressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(4, 32, batch_first=True)
        self.head = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).squeeze(-1)


class ResMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(20, 64)
        self.blocks = nn.ModuleList(mlp(64, 64, 64) for _ in range(2))
        self.out = nn.Linear(64, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.inp(x))
        for block in self.blocks:
            h = F.relu(h + block(h))
        return self.out(h)


def healthy_cases():
    g = torch.Generator().manual_seed(1)
    x, y = blobs()
    yield "mlp", mlp(20, 64, 64, 4), (x, y), nn.CrossEntropyLoss()
    bn = nn.Sequential(nn.Linear(20, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.5),
                       nn.Linear(64, 4))
    yield "batchnorm_dropout", bn, (x, y), nn.CrossEntropyLoss(label_smoothing=0.1)
    yield "tanh", mlp(20, 64, 64, 4, act=nn.Tanh), (x, y), F.cross_entropy
    yield "residual", ResMLP(), (x, y), nn.CrossEntropyLoss()
    images = torch.randn(32, 3, 12, 12, generator=g)
    cnn = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    yield "cnn", cnn, (images, torch.randint(0, 10, (32,), generator=g)), nn.CrossEntropyLoss()
    seqs = torch.randn(32, 12, 8, generator=g)
    yield "lstm", LSTMNet(), (seqs, torch.randint(0, 3, (32,), generator=g)), F.cross_entropy
    xr = torch.randn(64, 10, 4, generator=g)
    yield "gru_regression", GRURegressor(), (xr, xr.sum((1, 2)) / 5), nn.MSELoss()
    xq = torch.randn(64, 10, generator=g)
    yq = (xq[:, :3] ** 2).sum(1, keepdim=True) - 3
    yield "mlp_regression", mlp(10, 64, 64, 1), [xq, yq], nn.MSELoss()
    yield "log_softmax_nll", nn.Sequential(mlp(20, 64, 4), nn.LogSoftmax(1)), (x, y), F.nll_loss


@pytest.mark.parametrize("name, model, batch, loss_fn", list(healthy_cases()),
                         ids=[c[0] for c in healthy_cases()])
def test_healthy_models_get_nothing_above_info(name, model, batch, loss_fn):
    found = checkup(model, batch, loss_fn)
    assert loud(found) == [], [(d.rule, d.message) for d in found]


def test_exported_lazily_from_the_package():
    assert netdoctor.checkup is checkup
    assert "checkup" in dir(netdoctor)


# ---- the caller's state ------------------------------------------------------------------------
def test_the_callers_model_gradients_mode_and_random_state_are_untouched():
    model = nn.Sequential(nn.Linear(20, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(64, 4))
    model.eval()
    x, y = blobs()
    F.cross_entropy(model(x), y).backward()  # the caller has gradients of their own
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    torch.manual_seed(123)
    random.seed(5)
    np.random.seed(7)
    torch_state, py_state = torch.get_rng_state(), random.getstate()
    np_state = np.random.get_state()

    checkup(model, (x, y), nn.CrossEntropyLoss())

    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == py_state
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm stats too
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters(), strict=True))
    assert not model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_the_same_findings_on_every_call():
    x, y = blobs()
    model = mlp(20, 3, 4)
    first = checkup(model, (x, y), nn.CrossEntropyLoss())
    again = checkup(model, (x, y), nn.CrossEntropyLoss())
    assert [(d.rule, d.evidence.get("final_loss")) for d in first] == [
        (d.rule, d.evidence.get("final_loss")) for d in again]


# ---- batches -----------------------------------------------------------------------------------
class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = nn.Linear(20, 32), nn.Linear(5, 32), nn.Linear(64, 4)

    def forward(self, x: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([F.relu(self.a(x)), F.relu(self.b(extra))], 1))


def test_a_dict_batch_gives_the_inputs_as_keywords():
    x, y = blobs()
    found = checkup(TwoInputs(), {"x": x, "extra": torch.randn(64, 5), "labels": y},
                    nn.CrossEntropyLoss())
    assert loud(found) == []


def test_a_dict_batch_with_one_input_is_called_positionally():
    x, y = blobs()
    assert loud(checkup(mlp(20, 64, 4), {"image": x, "target": y}, F.cross_entropy)) == []


def test_bad_batches_and_arguments_are_clear_errors():
    x, y = blobs()
    model = mlp(20, 8, 4)
    with pytest.raises(ValueError, match="targets under one of y, target"):
        checkup(model, {"x": x, "class": y}, F.cross_entropy)
    with pytest.raises(TypeError, match=r"an \(x, y\) pair or a dict"):
        checkup(model, (x, y, y), F.cross_entropy)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        checkup(model, (x, y), F.cross_entropy, steps=0)
    with pytest.raises(TypeError, match="scalar tensor"):
        checkup(model, (x, y), lambda out, t: F.cross_entropy(out, t, reduction="none"))


def test_a_watched_model_is_refused(tmp_path: Path):
    model = mlp(20, 8, 4)
    x, y = blobs()
    with (netdoctor.watch(model, log=tmp_path / "run.sqlite"),
          pytest.raises(ValueError, match="before watch")):
        checkup(model, (x, y), F.cross_entropy)


def test_the_log_is_kept_where_asked(tmp_path: Path):
    from netdoctor.runlog import open_run

    x, y = blobs()
    checkup(mlp(20, 64, 4), (x, y), F.cross_entropy, log=tmp_path / "checkup.sqlite")
    run = open_run(tmp_path / "checkup.sqlite")
    assert run.meta["source"] == "checkup"
    assert run.meta["checkup"]["batch_size"] == 64
    assert 20 <= run.n_steps <= 100


# ---- problems ----------------------------------------------------------------------------------
def test_softmax_before_cross_entropy_is_a_double_softmax():
    x, y = blobs()
    model = nn.Sequential(mlp(20, 64, 4), nn.Softmax(dim=1))
    found = checkup(model, (x, y), nn.CrossEntropyLoss())
    d = only(found, "double_softmax")
    assert found[0] is d and d.severity is Severity.ERROR
    assert d.fixes[0].id == "stable_loss" and "return the logits" in d.fixes[0].text
    assert d.layer == "1"
    evidence = d.evidence.get("checkup", d.evidence)  # the log may have found it as well
    assert evidence["classes"] == 4 and evidence["loss_ignores_row_shift"]


def test_a_softmax_with_a_log_and_nll_is_fine():
    x, y = blobs()
    model = nn.Sequential(mlp(20, 64, 4), nn.Softmax(dim=1))
    found = checkup(model, (x, y), lambda p, t: F.nll_loss(torch.log(p + 1e-8), t))
    assert loud(found) == []


def test_a_first_loss_far_above_chance_is_poor_init():
    x, y = blobs()
    model = mlp(20, 64, 64, 4)
    with torch.no_grad():
        model[-1].weight.mul_(100)
    d = only(checkup(model, (x, y), nn.CrossEntropyLoss()), "poor_init")
    assert d.fixes[0].id == "he_init" and d.layer == "4"  # the output layer
    assert "initialise 4 so the first predictions are near chance" in d.fixes[0].text
    numbers = d.evidence.get("checkup", d.evidence)
    assert numbers["chance_loss"] == pytest.approx(np.log(4), rel=1e-4)
    assert numbers["first_loss"] > 3 * np.log(4)


def test_a_regression_is_judged_against_the_targets_variance():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, 10, generator=g)
    y = x[:, :3].sum(1, keepdim=True)
    model = mlp(10, 64, 1)
    with torch.no_grad():
        model[-1].weight.mul_(100)
    d = only(checkup(model, (x, y), nn.MSELoss()), "poor_init")
    assert d.evidence["chance_loss"] == pytest.approx(float(y.var(unbiased=False)), rel=1e-4)
    assert "targets' mean" in d.evidence["chance_how"]


def test_signal_vanishing_with_depth_is_poor_init_with_he_init_first():
    x, y = blobs()
    model = mlp(20, *[64] * 8, 4)
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0, 0.01)
            nn.init.zeros_(layer.bias)
    found = checkup(model, (x, y), nn.CrossEntropyLoss())
    d = found[0]
    assert d.rule == "poor_init" and d.fixes[0].id == "he_init"
    assert d.evidence["std_ratio_per_layer"] < 0.5


def test_weights_too_large_for_tanh_is_poor_init_with_xavier_first():
    x, y = blobs()
    model = mlp(20, 64, 64, 64, 4, act=nn.Tanh)
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0, 1.0)
    d = checkup(model, (x, y), nn.CrossEntropyLoss())[0]
    assert d.rule == "poor_init" and d.fixes[0].id == "xavier_init"


def test_zero_init_is_symmetric_weights_and_cannot_be_overfit():
    x, y = blobs()
    model = mlp(20, 64, 64, 4)
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
    found = checkup(model, (x, y), nn.CrossEntropyLoss())
    assert found[0].rule == "symmetric_weights" and found[0].fixes[0].id == "break_symmetry"
    d = only(found, "cannot_overfit_batch")
    assert d.fixes[0].id == "break_symmetry"
    assert "symmetric_weights" in d.evidence["explained_by"]


def test_raw_inputs_are_unnormalized_inputs():
    x, y = blobs()
    d = only(checkup(mlp(20, 64, 4), (x * 300 + 1000, y), nn.CrossEntropyLoss()),
             "unnormalized_inputs")
    assert d.fixes[0].id == "normalize_inputs"


def test_an_output_broadcast_against_the_targets_cannot_be_overfit():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, 10, generator=g)
    y = x[:, :3].sum(1)  # (64,), while the model says (64, 1)
    found = checkup(mlp(10, 64, 1), (x, y), nn.MSELoss())
    d = only(found, "cannot_overfit_batch")
    assert d.severity is Severity.WARNING
    assert d.fixes[0].id == "check_targets" and "[64, 1]" in d.fixes[0].text
    assert any("target size" in w for w in d.evidence["loss_warnings"])
    assert d.evidence["final_over_first"] > 0.5


def test_regression_targets_far_from_unit_scale_lead_with_standardising_them():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, 10, generator=g)
    y = x[:, :3].sum(1, keepdim=True) * 50 + 5000
    d = only(checkup(mlp(10, 64, 1), (x, y), nn.MSELoss()), "cannot_overfit_batch")
    assert d.fixes[0].id == "normalize_inputs" and "regression targets" in d.fixes[0].text
    assert loud(checkup(mlp(10, 64, 1), (x, (y - y.mean()) / y.std()), nn.MSELoss())) == []


def test_too_little_capacity_leads_with_more_capacity():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(128, 20, generator=g), torch.randint(0, 10, (128,), generator=g)
    d = only(checkup(mlp(20, 3, 10), (x, y), nn.CrossEntropyLoss()), "cannot_overfit_batch")
    assert d.fixes[0].id == "more_capacity"
    assert d.evidence["trainable_params"] < 10 * d.evidence["target_values"]
    # the same random labels are memorised by a model with room for them
    assert loud(checkup(mlp(20, 256, 10), (x, y), nn.CrossEntropyLoss())) == []


def test_the_callers_optimizer_too_slow_to_fit_says_raise_lr():
    x, y = blobs()
    found = checkup(mlp(20, 64, 4), (x, y), nn.CrossEntropyLoss(),
                    optimizer_factory=lambda p: torch.optim.SGD(p, lr=1e-5))
    d = only(found, "cannot_overfit_batch")
    assert d.evidence["optimizer"] == "SGD" and d.evidence["lr"] is None
    assert d.fixes[0].id == "raise_lr"


class LogOfInputs(nn.Module):
    """A hand-written log of the raw inputs: NaN wherever an input is negative."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(20, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.log(x))


def test_a_non_finite_loss_at_init_is_nan_loss():
    x, y = blobs()
    found = checkup(LogOfInputs(), (x, y), nn.CrossEntropyLoss())
    assert found[0].rule == "nan_loss" and found[0].severity is Severity.ERROR
    assert found[0].step == 0


class UnusedBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = mlp(20, 64, 4)
        self.aux = nn.Linear(20, 4)  # defined, never called

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class DetachedEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc, self.head = nn.Linear(20, 64), nn.Linear(64, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.enc(x)).detach())  # the encoder never learns


def test_an_unused_branch_is_reported_as_harmless_information():
    x, y = blobs()
    found = checkup(UnusedBranch(), (x, y), nn.CrossEntropyLoss())
    d = only(found, "frozen_parameters")
    assert d.severity is Severity.INFO and d.layer == "aux"
    assert d.evidence["checkup"]["params"] == ["aux.weight", "aux.bias"]


def test_a_detached_branch_is_frozen_parameters():
    x, y = blobs()
    d = only(checkup(DetachedEncoder(), (x, y), nn.CrossEntropyLoss()), "frozen_parameters")
    assert d.severity is Severity.WARNING and d.layer == "enc"
    assert d.fixes[0].id == "unfreeze_parameters"
