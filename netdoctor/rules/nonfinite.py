"""``nan_loss``: the loss, an activation or a gradient became NaN or Inf.

The message names the step, the first layer where it happened and what led there (the grad-norm
trend just before, the learning rate), because the fix depends on the cause: a loss written as
log(softmax) needs a stable loss, an explosion needs clipping and a lower learning rate, and NaN
already in the data needs the data fixed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import fmt, lr_at, param_module, valid_loss
from netdoctor.rules.fixes import fix
from netdoctor.rules.onset import (
    PERSIST_STEPS,
    NonFiniteOnset,
    TrendBefore,
    nonfinite_onset,
    trend_before,
)
from netdoctor.rules.series import finite
from netdoctor.runlog.run_data import RunData
from netdoctor.runlog.schema import ActStat, ParamStat

RULE_ID = "nan_loss"


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    onset = nonfinite_onset(run, th["persist_steps"])
    if onset is None:
        return []
    window = int(th["window"])
    trend = trend_before(run, onset.index, window)
    exploded = trend is not None and trend.growth >= th["growth"] and trend.loss_not_falling
    loss = float(valid_loss(run)[onset.index])
    lr = lr_at(run, onset.index)
    site, module, param, sites, params = _location(run, onset)
    evidence: dict[str, Any] = {
        "step": onset.step,
        "source": onset.source,
        "site": site,
        "module": module,
        "param": param,
        "sites": sites[:20],
        "params": params[:20],
        "loss": loss,
        "nonfinite_steps": onset.total,
        "streak": onset.streak,
        "lr": None if math.isnan(lr) else lr,
        "window": window,
        "grad_norm_growth": None if trend is None else trend.growth,
        "grad_norm_baseline": None if trend is None else trend.baseline,
        "grad_norm_peak": None if trend is None else trend.peak,
        "followed_explosion": exploded,
    }
    where = _where(onset.source, site, param, module)
    explosion = trend if exploded else None
    rose = _loss_rose(run, onset.index, window)
    evidence["loss_rose_before"] = rose
    message, fixes = _explain(onset, where, explosion, trend, loss, lr, window, module, rose)
    return [
        Diagnosis(
            RULE_ID,
            Severity.ERROR,
            onset.step,
            module,
            message,
            evidence,
            tuple(fixes),
        )
    ]


def _explain(
    onset: NonFiniteOnset,
    where: str,
    explosion: TrendBefore | None,
    trend: TrendBefore | None,
    loss: float,
    lr: float,
    window: int,
    module: str | None,
    rose: bool,
) -> tuple[str, list[Fix]]:
    """The message and the fixes, ranked for where the NaN came from and what preceded it.

    Input: fix the data. After an explosion, wherever it surfaced (an overflowing loss too):
    clip and lower the learning rate. The loss alone, with no explosion: a log/division in it.
    An activation with no explosion and a loss that was not climbing: the numerics of that
    layer (a division by a std, a log, a sqrt without an epsilon) lead; a climbing loss points
    at the learning rate instead.
    """
    s = onset.step
    lr_text = "" if math.isnan(lr) else f", lr {fmt(lr)}"
    trend_text = (
        "" if trend is None else f"grad norm ×{fmt(trend.growth)} over the {window} steps before"
    )
    if onset.source == "input":
        message = (
            f"{where} was already non-finite at step {s}, before any layer ran: check the data "
            "with torch.isfinite(x).all() and normalise it"
        )
        return message, [fix("normalize_inputs", _INPUT_FIX), fix("lower_lr")]
    if onset.source == "loss" and explosion is None:
        before = trend_text or "too early for a grad-norm trend"
        message = (
            f"loss became {fmt(loss)} at step {s} while every activation was finite, so a log, "
            f"sqrt or division in the loss met a non-positive value ({before}{lr_text}): compute "
            "the loss from raw logits with a fused loss such as nn.CrossEntropyLoss, then lower "
            "the learning rate"
        )
        return message, [fix("stable_loss"), fix("lower_lr")]
    if explosion is not None:
        message = (
            f"{where} became non-finite at step {s} (loss {fmt(loss)}) after the grad norm grew "
            f"×{fmt(explosion.growth)} from {fmt(explosion.baseline)} to {fmt(explosion.peak)} "
            f"over the {window} steps before{lr_text}: it followed exploding gradients, so clip "
            "gradients and lower the learning rate"
        )
        return message, [fix("grad_clipping"), fix("lower_lr")]
    context = ", ".join(p for p in (f"loss {fmt(loss)}", trend_text, lr_text[2:]) if p)
    if onset.source == "activation" and not rose:  # no explosion, no climb: the numerics
        place = f"the forward of {module}" if module else "the layer that produced it"
        message = (
            f"{where} became non-finite at step {s} ({context}) with no explosion before it and "
            f"a loss that was not climbing: look in {place} for a division, log or sqrt without "
            "an epsilon (e.g. dividing by a batch std that can be 0), then lower the learning "
            "rate if it persists"
        )
        return message, [_eps_fix(module), fix("lower_lr"), fix("grad_clipping")]
    message = (
        f"{where} became non-finite at step {s} ({context}): lower the learning rate, clip "
        "gradients, and look for a log, sqrt or division without an epsilon"
        + (f" in {module}" if module else "")
    )
    return message, [fix("lower_lr"), fix("grad_clipping"), _eps_fix(module)]


def _loss_rose(run: RunData, index: int, window: int) -> bool:
    """Whether the loss climbed to twice its level over the ``window`` steps before ``index``."""
    kept = finite(valid_loss(run)[max(0, index - window) : index])
    if kept.size < 4:
        return False
    half = kept.size // 2
    start, end = float(np.median(kept[:half])), float(np.max(kept[half:]))
    return start > 0 and end >= 2 * start


_INPUT_FIX = (
    "check the data for NaN/Inf before training (assert torch.isfinite(x).all() on each batch), "
    "drop or impute the bad samples, then standardise: x = (x - mean) / std"
)


def _eps_fix(module: str | None) -> Fix:
    place = f"the forward of {module}" if module else "the model's forward"
    return fix(
        "stable_loss",
        f"look in {place} for a log, sqrt or division of a value that can reach zero and guard "
        "it with an epsilon: (h - mean) / (h.std(0) + 1e-5), torch.log(x.clamp_min(1e-8)), "
        "torch.sqrt(x + 1e-8); or use the built-in layer (nn.BatchNorm1d, nn.LayerNorm) and "
        "compute losses from logits with nn.CrossEntropyLoss",
    )


def _where(source: str, site: str | None, param: str | None, module: str | None) -> str:
    if source == "input":
        return f"the input of {module}" if module else "the model's input"
    if source == "gradient":
        return f"the gradient of {param}" if param else "the gradient"
    if source == "activation" and site:
        return f"the output of {site}"
    return "the loss" if source == "loss" else "an activation"


def _location(
    run: RunData, onset: NonFiniteOnset
) -> tuple[str | None, str | None, str | None, list[str], list[str]]:
    """First bad site, its module, first bad param, all bad sites and params at the onset."""
    data = onset.event.data if onset.event is not None else {}
    sites = [str(v) for v in data.get("sites") or []]
    params = [str(v) for v in data.get("params") or []]
    if not sites and not params:
        sites, params = _from_samples(run, onset.step)
    site = data.get("site") or (sites[0] if sites else None)
    param = data.get("param") or (params[0] if params else None)
    module = data.get("module")
    if onset.source == "loss":  # the loss is computed outside any layer
        return site, None, param, sites, params
    if module is None and site is not None:
        module = next((s.module for s in run.sites if s.name == site), None)
    if module is None:
        module = param_module(run, param)
    if module is None and onset.event is not None:
        module = onset.event.layer
    return site, module, param, sites, params


def _from_samples(run: RunData, step: int) -> tuple[list[str], list[str]]:
    """Non-finite sites and gradients at ``step`` from the sampled statistics, when sampled."""
    rows = np.nonzero(run.sample_steps == step)[0]
    if not rows.size:
        return [], []
    k = int(rows[0])
    nonfinite = run.act[k, :, ActStat.NONFINITE]
    sites = [s.name for s in run.sites_in_forward_order() if nonfinite[s.idx] > 0]
    grads = run.param[k, :, ParamStat.GRAD_NORM]
    has = run.param[k, :, ParamStat.HAS_GRAD] > 0.5
    params = [p.name for p in run.params if has[p.idx] and not np.isfinite(grads[p.idx])]
    return sites, params


RULE = Rule(
    id=RULE_ID,
    severity=Severity.ERROR,
    title="The loss, an activation or a gradient became NaN/Inf",
    thresholds=(
        Threshold(
            "persist_steps",
            PERSIST_STEPS,
            "gradient-only non-finite steps in a row (finite loss and activations) that count; "
            "fewer are a GradScaler calibrating its fp16 loss scale, which is normal",
            "PyTorch AMP GradScaler (skips inf steps by design)",
        ),
        Threshold(
            "window",
            20.0,
            "steps before the first non-finite one over which the grad-norm trend is measured",
            "netdoctor",
        ),
        Threshold(
            "growth",
            10.0,
            "grad-norm growth over that window, with a loss that did not fall, that marks the "
            "NaN as the end of an explosion",
            "Pascanu et al. 2013 (exploding gradients end in NaN); netdoctor",
        ),
    ),
    fixes=("stable_loss", "lower_lr", "grad_clipping", "normalize_inputs"),
    doc=RuleDoc(
        what=(
            "A step where the loss, a layer's output or a gradient was NaN or Inf. Reports the "
            "first such step, the first layer (in forward order) that produced it, and whether "
            "the total gradient norm was growing in the steps before. Isolated inf-gradient "
            "steps with a finite loss under fp16 (a GradScaler calibrating) are not reported."
        ),
        why=(
            "One NaN spreads: the optimizer writes it into the weights and every later step is "
            "NaN too, so the rest of the run is wasted. The usual causes are a learning rate so "
            "large that the weights diverge, numerical overflow in a softmax/sigmoid followed by "
            "log (log(0) = -inf), a division by zero or sqrt of a negative number, and NaN "
            "already present in the input data."
        ),
        how_to_fix=(
            "If the loss alone went non-finite, compute it from logits with a fused loss "
            "(nn.CrossEntropyLoss, nn.BCEWithLogitsLoss) and add an epsilon to any log or "
            "division. If the gradient norm grew before it, clip gradients and lower the "
            "learning rate. If a layer's output went non-finite with no explosion and no "
            "climbing loss before it, guard the division, log or sqrt in that layer with an "
            "epsilon (a home-made normalisation dividing by a batch std that can be 0). If the "
            "input was already non-finite, clean and normalise the data."
        ),
        example=(
            "probs = torch.softmax(logits, 1); loss = -torch.log(probs[range(n), y]).mean()  "
            "# log(0) = -inf once a probability underflows\n"
            "loss = nn.CrossEntropyLoss()(logits, y)  # stable: log-sum-exp inside"
        ),
    ),
    check=check,
)
