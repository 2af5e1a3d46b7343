"""``overfitting``: validation gets worse while training keeps getting better.

Judged per evaluation (epoch), against the best validation value so far, as early stopping
does: validation must have stopped improving for ``patience`` evaluations, and the worsening
must exceed both a relative margin and the series' own noise, so a wiggling val curve is quiet.
Overfitting also means validation ends worse than training (a val loss below the train loss is
not it), and the rise must hold on each of the last evaluations: a val curve that jumps around
a lucky low point is instability (often a learning rate too high), not memorisation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import fmt
from netdoctor.rules.fixes import fix
from netdoctor.rules.series import jump_noise, robust_noise
from netdoctor.runlog.run_data import RunData

RULE_ID = "overfitting"
#: How many noise σ the worsening must exceed: a flat noisy curve's minimum sits ~2σ low.
NOISE_SIGMAS = 3.0
#: Share of the largest val loss of the run a worsening must reach to count.
SCALE_SHARE = 0.01


@dataclass(frozen=True, slots=True)
class _Curves:
    """Per-evaluation values aligned on the epochs where the validation metric is finite."""

    epochs: np.ndarray
    steps: np.ndarray
    val: np.ndarray
    train: np.ndarray  # NaN where the epoch has no train value


def _curves(run: RunData, val_key: str, train_key: str | None) -> _Curves:
    epochs, steps, val = run.epoch_series(val_key)
    if train_key is None:
        t_epochs, _, t_vals = run.train_loss_by_epoch()
    else:
        t_epochs, _, t_vals = run.epoch_series(train_key)
    lookup = dict(zip(t_epochs.tolist(), t_vals.tolist(), strict=True))
    train = np.array([lookup.get(e, math.nan) for e in epochs.tolist()], dtype=np.float64)
    ok = np.isfinite(val)
    return _Curves(epochs[ok], steps[ok], val[ok], train[ok])


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    patience = max(1, int(th["patience"]))
    found = _by_loss(_curves(run, "val_loss", None), th, patience)
    if found is None:
        found = _by_accuracy(_curves(run, "val_acc", "train_acc"), th, patience)
    if found is None:
        return []
    message, evidence, curves, best = found
    best_epoch = int(curves.epochs[best])
    step = int(curves.steps[best + 1])
    stop = fix(
        "early_stopping",
        f"stop once the validation metric has not improved for {patience} epochs and keep the "
        f"weights of epoch {best_epoch}, the best one: if val_loss < best: best, state = "
        "val_loss, copy.deepcopy(model.state_dict())",
    )
    fixes = (stop, fix("dropout"), fix("weight_decay"), fix("data_augmentation"))
    return [Diagnosis(RULE_ID, Severity.WARNING, step, None, message, evidence, fixes)]


_Found = tuple[str, dict[str, Any], _Curves, int]
_ADVICE = "stop at epoch {e} (early stopping), then add dropout or weight decay"


def _by_loss(c: _Curves, th: Mapping[str, float], patience: int) -> _Found | None:
    """Val loss rose clearly from its best, or stalled while the train/val gap widened."""
    if c.val.size < patience + 1:
        return None
    best = int(np.argmin(c.val))
    since = c.val.size - 1 - best
    t_best, t_last = c.train[best], c.train[-1]
    if since < patience or not (math.isfinite(t_best) and math.isfinite(t_last)):
        return None
    if t_last > t_best - th["train_drop"] * abs(t_best):  # train is not falling: not this rule
        return None
    v_best, v_now = float(c.val[best]), float(np.median(c.val[-patience:]))
    rise = (v_now - v_best) / abs(v_best) if v_best else math.inf
    noise = max(robust_noise(c.val), jump_noise(c.val))
    gap_best, gap_now = v_best - t_best, v_now - t_last
    if gap_now <= 0:  # validation no worse than training: not memorising the training set
        return None
    rel_gap = float(gap_now / abs(t_last)) if t_last else math.inf
    # the worsening must beat the noise, and matter on the scale of the whole curve (a val loss
    # of 1e-6 that doubles on a solved task is not overfitting)
    least = max(NOISE_SIGMAS * noise, SCALE_SHARE * float(np.max(np.abs(c.val))))
    recent = c.val[-patience:]
    held = bool(np.all(recent - v_best >= least / 2))  # every recent evaluation, not one
    rising = rise >= th["min_rise"] and v_now - v_best >= least and held
    widening = (
        rel_gap >= th["gap"]
        and gap_now - gap_best >= th["gap_widening"] * abs(v_best)
        and gap_now - gap_best >= least
    )
    if not (rising or widening):
        return None
    e_best, e_last = int(c.epochs[best]), int(c.epochs[-1])
    evidence: dict[str, Any] = {
        "criterion": "val_loss_rising" if rising else "gap_widening",
        "best_epoch": e_best,
        "best_val_loss": v_best,
        "last_val_loss": float(c.val[-1]),
        "recent_val_loss": v_now,
        "val_rise": rise,
        "epochs_since_best": since,
        "train_loss_at_best": float(t_best),
        "last_train_loss": float(t_last),
        "train_change_since_best": float((t_last - t_best) / abs(t_best)) if t_best else None,
        "gap_at_best": float(gap_best),
        "gap": float(gap_now),
        "relative_gap": rel_gap,
        "val_noise": noise,
    }
    trained = f"train loss fell from {fmt(t_best)} to {fmt(t_last)}"
    if rising:
        head = (
            f"val_loss rose from {fmt(v_best)} at epoch {e_best} to {fmt(float(c.val[-1]))} at "
            f"epoch {e_last} (the median of the last {patience} evaluations, {fmt(v_now)}, is "
            f"{rise * 100:.0f} % above that best) while {trained}"
        )
    else:
        head = (
            f"val_loss has not improved for {since} epochs (best {fmt(v_best)} at epoch {e_best})"
            f" while {trained}, widening the val-train gap from {fmt(gap_best)} to {fmt(gap_now)}"
        )
    return f"{head}: {_ADVICE.format(e=e_best)}", evidence, c, best


def _by_accuracy(c: _Curves, th: Mapping[str, float], patience: int) -> _Found | None:
    """AUTOTRAINER's train−val accuracy gap, required to widen while val accuracy stalls."""
    if c.val.size < patience + 1 or not np.isfinite(c.train).all():
        return None
    scale = 100.0 if max(float(np.max(c.val)), float(np.max(c.train))) > 1.5 else 1.0
    val, train = c.val / scale, c.train / scale  # accuracies given in percent work too
    best = int(np.argmax(val))
    since = val.size - 1 - best
    if since < patience:
        return None
    t_now, v_now = float(np.median(train[-patience:])), float(np.median(val[-patience:]))
    gap_now, gap_best = t_now - v_now, float(train[best] - val[best])
    limit = th["acc_gap"]
    noise = max(robust_noise(val), jump_noise(val))
    if gap_now < limit or gap_now - gap_best < max(limit / 2, NOISE_SIGMAS * noise):
        return None
    e_best = int(c.epochs[best])
    evidence: dict[str, Any] = {
        "criterion": "accuracy_gap",
        "best_epoch": e_best,
        "best_val_acc": float(val[best]),
        "recent_val_acc": v_now,
        "recent_train_acc": t_now,
        "acc_gap": gap_now,
        "acc_gap_at_best": gap_best,
        "epochs_since_best": since,
    }
    message = (
        f"train accuracy {fmt(t_now)} vs val accuracy {fmt(v_now)} (gap {fmt(gap_now)}, was "
        f"{fmt(gap_best)} at epoch {e_best} when val accuracy peaked at {fmt(float(val[best]))}): "
        + _ADVICE.format(e=e_best)
    )
    return message, evidence, c, best


RULE = Rule(
    id=RULE_ID,
    severity=Severity.WARNING,
    title="Validation gets worse while training gets better (overfitting)",
    thresholds=(
        Threshold(
            "patience",
            3.0,
            "evaluations since the best validation value before judging",
            "early stopping practice (Keras/Lightning EarlyStopping patience)",
        ),
        Threshold(
            "min_rise",
            0.1,
            "relative rise of the recent val loss over its best that counts as rising",
            "UMLAUT (CHI'21): val loss up while train loss down; netdoctor margin",
        ),
        Threshold(
            "train_drop",
            0.02,
            "relative fall of the train loss since the best val epoch that counts as falling",
            "netdoctor",
        ),
        Threshold(
            "gap",
            0.1,
            "(val − train) / train loss the gap must exceed for the stalled-val test",
            "SageMaker Debugger Overfit: (val−train)/train > 0.1",
        ),
        Threshold(
            "gap_widening",
            0.25,
            "growth of the val−train gap since the best epoch, relative to the best val loss",
            "netdoctor (SageMaker's gap alone is too noisy)",
        ),
        Threshold(
            "acc_gap",
            0.1,
            "train − val accuracy gap that counts as overfitting",
            "AUTOTRAINER (ICSE'21): train−test acc ≥ 0.1",
        ),
    ),
    fixes=("early_stopping", "dropout", "weight_decay", "data_augmentation"),
    doc=RuleDoc(
        what=(
            "The validation loss stopped improving for `patience` evaluations and then rose "
            "clearly (by `min_rise` and beyond its own noise, on each of the last evaluations) "
            "while the train loss kept falling; or it stalled while the val−train gap widened; "
            "either way ending above the train loss. Or train accuracy pulled away from a "
            "stalled val accuracy. A val curve that jumps around a lucky low is noise, not a "
            "rise. Needs validation metrics (monitor.epoch(val_loss=...))."
        ),
        why=(
            "The validation set measures generalisation: data the weights were never fitted on. "
            "When training keeps improving but validation gets worse, the model has stopped "
            "learning patterns and started memorising the training examples; every further epoch "
            "makes it worse on new data. Early on both curves fall together; the point where "
            "they part is the best model."
        ),
        how_to_fix=(
            "Keep the weights from the best validation epoch and stop when it has not improved "
            "for a few epochs (early stopping). Regularise: dropout (10-50 % of hidden units), "
            "weight decay (an L2 penalty on the weights), data augmentation or more data, or a "
            "smaller model with fewer parameters for the amount of data."
        ),
        example=(
            "if val_loss < best:\n"
            "    best, wait, state = val_loss, 0, copy.deepcopy(model.state_dict())\n"
            "else:\n"
            "    wait += 1\n"
            "    if wait >= patience: break  # then model.load_state_dict(state)"
        ),
    ),
    check=check,
)
