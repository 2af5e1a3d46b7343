"""Hand-written loops from an outside review, trained for real under watch(): the right call.

Each is a compact rewrite of a script someone wrote without reading the rules: explosions in
the very first steps (after which the gradients look quiet), a learning rate too small, a weight
decay that crushes the weights, a home-made batchnorm without an epsilon, and healthy runs that
must stay quiet (label noise that keeps the loss near chance, a GRU, a small transformer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import netdoctor
from netdoctor.diagnosis import Severity

HARMFUL_AFTER_EXPLOSION = {"raise_lr", "train_longer"}


def _loud(diagnoses):
    return [d for d in diagnoses if d.severity in (Severity.ERROR, Severity.WARNING)]


def _train(model, opt, x, y, log, *, epochs, batch, loss_fn=F.mse_loss, clip=None, **task):
    """A plain loop under watch(); returns the loud diagnoses and the loss of every step."""
    losses = []
    with netdoctor.watch(model, opt, log=log, **task) as monitor:
        for _ in range(epochs):
            for i in range(0, len(x), batch):
                opt.zero_grad()
                loss = loss_fn(model(x[i : i + batch]), y[i : i + batch])
                loss.backward()
                if clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                monitor.step(loss)
                losses.append(loss.item())
    return _loud(monitor.close()), losses


def _adding_problem(n, t, seed):
    """Sum of the two marked values in a sequence of (value, mark) pairs."""
    g = torch.Generator().manual_seed(seed)
    vals, mark = torch.rand(n, t, generator=g), torch.zeros(n, t)
    for row in range(n):
        mark[row, torch.randperm(t, generator=g)[:2]] = 1
    return torch.stack([vals, mark], -1), (vals * mark).sum(1, keepdim=True)


class LastStep(nn.Module):
    def __init__(self, rnn: nn.Module, hidden: int) -> None:
        super().__init__()
        self.rnn, self.head = rnn, nn.Linear(hidden, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


def _assert_early_explosion(found, layer, first_fix, last_step=1):
    assert found[0].rule == "exploding_gradients", [d.rule for d in found]
    assert 0 <= found[0].step <= last_step and found[0].layer == layer
    assert found[0].fixes[0].id == first_fix
    for after in found[1:]:  # what it left behind comes after it and never says "go faster"
        assert after.evidence.get("caused_by"), after.rule
        assert not HARMFUL_AFTER_EXPLOSION & {f.id for f in after.fixes}, after.rule


def test_tanh_rnn_with_spectral_radius_three_explodes_at_step_zero(tmp_path):
    torch.manual_seed(5)
    x, y = _adding_problem(256, 60, seed=5)
    rnn = nn.RNN(2, 64, nonlinearity="tanh", batch_first=True)
    nn.init.orthogonal_(rnn.weight_hh_l0, gain=3.0)  # "to carry memory"; no clipping
    model = LastStep(rnn, 64)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    found, _ = _train(model, opt, x, y, tmp_path / "rnn.sqlite", epochs=8, batch=32)
    _assert_early_explosion(found, "rnn", "grad_clipping")
    assert "vanishing_gradients" in [d.rule for d in found]  # tanh saturated from step 1 on


def test_identity_initialised_relu_rnn_explodes_in_its_first_steps(tmp_path):
    torch.manual_seed(0)
    x, y = _adding_problem(256, 100, seed=5)
    rnn = nn.RNN(2, 64, nonlinearity="relu", batch_first=True)  # IRNN, without its clipping
    nn.init.eye_(rnn.weight_hh_l0)
    nn.init.zeros_(rnn.bias_hh_l0), nn.init.zeros_(rnn.bias_ih_l0)
    nn.init.normal_(rnn.weight_ih_l0, std=0.001)
    model = LastStep(rnn, 64)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    found, _ = _train(
        model, opt, x, y, tmp_path / "irnn.sqlite", epochs=8, batch=32, chance_loss=float(y.var())
    )
    _assert_early_explosion(found, "rnn", "grad_clipping")


def test_house_prices_on_raw_columns_explode_and_want_normalised_inputs(tmp_path):
    torch.manual_seed(7)
    n = 600
    sqft, beds = torch.empty(n).uniform_(600, 4000), torch.randint(1, 6, (n,)).float()
    year = torch.empty(n).uniform_(1950, 2020)
    x = torch.stack([sqft, beds, year], 1)
    y = (150 * sqft + 1e4 * beds + 800 * (year - 1950) + 2e4 * torch.randn(n))[:, None]
    model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=1e-7)  # "looked small enough"
    found, _ = _train(
        model, opt, x, y, tmp_path / "house.sqlite", epochs=6, batch=40, chance_loss=float(y.var())
    )
    # raw columns (RMS ~2e3) are the root cause: unnormalized_inputs leads, the explosion follows
    assert found[0].rule == "unnormalized_inputs" and found[0].fixes[0].id == "normalize_inputs"
    _assert_early_explosion(found[1:], "0", "normalize_inputs")
    assert found[1].evidence["caused_by"] == "unnormalized_inputs"
    assert "lower_lr" in [f.id for f in found[1].fixes][:3]


def test_learning_rate_typo_asks_for_a_higher_learning_rate(tmp_path):
    torch.manual_seed(16)
    protos = torch.randn(10, 64) * 1.5
    y = torch.randint(0, 10, (2000,))
    x = protos[y] + torch.randn(2000, 64)
    model = nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    opt = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)  # meant 1e-2
    found, _ = _train(
        model,
        opt,
        x,
        y,
        tmp_path / "lowlr.sqlite",
        epochs=4,
        batch=64,
        loss_fn=F.cross_entropy,
        num_classes=10,
    )
    # lr_too_low owns the finding; the flat loss and the underfitting are its consequences
    assert [d.rule for d in found] == ["lr_too_low", "loss_not_decreasing", "underfitting"]
    assert found[0].fixes[0].id == "raise_lr" and found[0].evidence["update_ratio"] < 1e-4
    assert all(d.fixes[0].id == "raise_lr" for d in found)  # they agree on what to do


def test_weight_decay_of_one_in_adam_leads_with_lowering_it(tmp_path):
    torch.manual_seed(17)
    x = torch.randn(1500, 12)
    y = (torch.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] ** 2)[:, None]
    y = (y - y.mean()) / y.std()  # standardised; no chance_loss given
    model = nn.Sequential(
        nn.Linear(12, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 1)
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1.0)
    with netdoctor.watch(model, opt, log=tmp_path / "wd.sqlite") as monitor:
        for _ in range(8):
            for i in range(0, 1200, 64):
                opt.zero_grad()
                loss = F.mse_loss(model(x[i : i + 64]), y[i : i + 64])
                loss.backward()
                opt.step()
                monitor.step(loss)
            with torch.no_grad():
                monitor.epoch(
                    train_loss=F.mse_loss(model(x[:1200]), y[:1200]).item(),
                    val_loss=F.mse_loss(model(x[1200:]), y[1200:]).item(),
                )
    found = _loud(monitor.close())
    # the loss never left its first level: loss_not_decreasing, with underfitting after it
    assert [d.rule for d in found] == ["loss_not_decreasing", "underfitting"]
    assert found[1].evidence["criterion"] == "no_progress"
    for d in found:  # both weigh the same evidence: lower the weight decay first
        assert d.fixes[0].id == "weight_decay" and "lower" in d.fixes[0].text


class HomeMadeBatchNorm(nn.Module):
    def forward(self, h):
        return (h - h.mean(0, keepdim=True)) / h.std(0, keepdim=True)  # no epsilon


def test_batchnorm_without_epsilon_points_at_that_layer(tmp_path):
    torch.manual_seed(2)
    x = torch.randn(2000, 20)
    y = ((x[:, :5].sum(1) > 0).long() + (x[:, 5] > 1).long()).clamp(max=2)
    model = nn.Sequential(
        nn.Linear(20, 64),
        nn.ReLU(),
        HomeMadeBatchNorm(),
        nn.Linear(64, 64),
        nn.ReLU(),
        HomeMadeBatchNorm(),
        nn.Linear(64, 3),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    found, losses = _train(
        model,
        opt,
        x[:600],
        y[:600],
        tmp_path / "bn.sqlite",
        epochs=1,
        batch=12,
        loss_fn=F.cross_entropy,
    )
    first_nan = next(i for i, v in enumerate(losses) if v != v)
    assert [d.rule for d in found] == ["nan_loss"]
    assert found[0].step == first_nan and found[0].layer in ("2", "5")
    assert found[0].evidence["followed_explosion"] is False
    assert found[0].fixes[0].id == "stable_loss" and found[0].layer in found[0].fixes[0].text


def test_logistic_regression_on_noisy_labels_is_healthy(tmp_path):
    torch.manual_seed(26)
    x = torch.randn(12000, 10)
    clean = (x[:, 0] - x[:, 1] + 0.5 * x[:, 2] > 0).long()
    y = torch.where(torch.rand(12000) < 0.35, 1 - clean, clean)  # best loss: 93 % of ln 2
    model = nn.Linear(10, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt, xv, yv = x[:10000], y[:10000], x[10000:], y[10000:]
    with netdoctor.watch(model, opt, log=tmp_path / "noisy.sqlite", num_classes=2) as monitor:
        for _ in range(3):
            for i in range(0, 10000, 250):
                opt.zero_grad()
                loss = F.cross_entropy(model(xt[i : i + 250]), yt[i : i + 250])
                loss.backward()
                opt.step()
                monitor.step(loss)
            with torch.no_grad():
                ot, ov = model(xt), model(xv)
                monitor.epoch(
                    train_loss=F.cross_entropy(ot, yt).item(),
                    val_loss=F.cross_entropy(ov, yv).item(),
                    train_acc=(ot.argmax(1) == yt).float().mean().item(),
                    val_acc=(ov.argmax(1) == yv).float().mean().item(),
                )
    assert _loud(monitor.close()) == []


class Counter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.gru = nn.Embedding(3, 16), nn.GRU(16, 48, batch_first=True)
        self.fc = nn.Linear(48, 2)

    def forward(self, t):
        return self.fc(self.gru(self.emb(t))[0][:, -1])


def test_gru_counting_tokens_with_clipping_and_cosine_schedule_is_healthy(tmp_path):
    torch.manual_seed(22)
    tok = torch.randint(0, 3, (960, 30))
    y = ((tok == 2).sum(1) > (tok == 0).sum(1)).long()
    model = Counter()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5 * 25)
    with netdoctor.watch(model, opt, log=tmp_path / "gru.sqlite", num_classes=2) as monitor:
        for _ in range(5):
            for i in range(0, 800, 32):
                opt.zero_grad()
                loss = F.cross_entropy(model(tok[i : i + 32]), y[i : i + 32])
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                monitor.step(loss)
            with torch.no_grad():
                out = model(tok[800:])
                monitor.epoch(
                    val_loss=F.cross_entropy(out, y[800:]).item(),
                    val_acc=(out.argmax(1) == y[800:]).float().mean().item(),
                )
    assert _loud(monitor.close()) == []


class Block(nn.Module):
    def __init__(self, d: int = 32) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, 4, dropout=0.1, batch_first=True)
        self.mlp = nn.Sequential(
            nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(0.1)
        )

    def forward(self, x):
        a = self.ln1(x)
        x = x + self.attn(a, a, a, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class Tiny(nn.Module):
    def __init__(self, vocab: int = 6, length: int = 12, d: int = 32) -> None:
        super().__init__()
        self.emb, self.pos = nn.Embedding(vocab, d), nn.Parameter(torch.randn(length, d) * 0.02)
        self.blocks, self.ln = nn.Sequential(Block(d), Block(d)), nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, t):
        return self.head(self.ln(self.blocks(self.emb(t) + self.pos)).mean(1))


def test_small_transformer_with_warmup_and_decay_is_healthy(tmp_path):
    torch.manual_seed(23)
    tok = torch.randint(0, 6, (1400, 12))
    y = torch.stack([torch.bincount(r, minlength=6) for r in tok]).argmax(1)  # most frequent
    model = Tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    total = 4 * 24
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 20) * max(0.05, 1 - s / total)
    )
    with netdoctor.watch(model, opt, log=tmp_path / "tf.sqlite", num_classes=6) as monitor:
        for _ in range(4):
            model.train()
            for i in range(0, 1200, 50):
                opt.zero_grad()
                loss = F.cross_entropy(model(tok[i : i + 50]), y[i : i + 50])
                loss.backward()
                opt.step()
                sched.step()
                monitor.step(loss)
            model.eval()
            with torch.no_grad():
                out = model(tok[1200:])
                monitor.epoch(
                    val_loss=F.cross_entropy(out, y[1200:]).item(),
                    val_acc=(out.argmax(1) == y[1200:]).float().mean().item(),
                )
    assert _loud(monitor.close()) == []
