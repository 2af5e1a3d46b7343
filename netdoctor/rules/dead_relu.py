"""``dead_relu``: most units of a ReLU layer output zero for every sample, for good.

Measured where the capture side measures it: the share of a layer's units (features, or conv
channels) that are ≤ 0 for every sample of the batch, on each sampled step. ReLU modules are
read at their output; a ReLU applied with ``F.relu`` inside ``forward`` is read at the input of
the layer after it (an input site whose values are never negative and that follows a weighted
layer directly). One batch cannot tell a dead unit from a rarely active one, so the fraction has
to hold on most of the run's later samples; a run that went non-finite is judged up to that
point. Which fix leads depends on when the units died: from the first step (the initialisation
or the biases put their inputs below zero), right after large updates (a learning rate too
high pushed them there), or slowly over training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.activity import (
    Persistence,
    activation_before,
    first_site,
    layer_before,
    percent,
    persistence,
    units_of,
    update_before_onset,
    usable_rows,
)
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import MIN_STEPS, fmt
from netdoctor.rules.fixes import fix
from netdoctor.runlog.run_data import RunData, SiteInfo
from netdoctor.runlog.schema import ActStat

RULE_ID = "dead_relu"


def relu_sites(run: RunData) -> list[SiteInfo]:
    """Sites that carry ReLU units, forward order: ReLU modules, and inputs after ``F.relu``.

    An input site counts when it is not the model's own input, comes straight after a weighted
    layer (no activation module in between, which would be measured already) and never held a
    negative value: what a ReLU leaves.
    """
    found: list[SiteInfo] = []
    first = first_site(run)
    low = run.act_stat(ActStat.MIN)
    for site in run.sites_in_forward_order():
        if site.family == "relu" and site.role == "output":
            found.append(site)
            continue
        if site.role != "input" or first is None or site.idx == first.idx:
            continue
        lows = low[:, site.idx]
        lows = lows[np.isfinite(lows)]
        if not lows.size or float(lows.min()) < 0:
            continue
        if activation_before(run, site) is None and layer_before(run, site) is not None:
            found.append(site)
    return found


def _units_layer(run: RunData, site: SiteInfo) -> str:
    """The module to name: the ReLU module itself, or for ``F.relu`` the layer it follows."""
    if site.role == "output":
        return site.module
    before = layer_before(run, site)
    return before.module if before is not None else site.module


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    if run.n_steps < MIN_STEPS:
        return []
    dead = run.act_stat(ActStat.DEAD_FRAC)
    rows = usable_rows(run)
    found: list[tuple[SiteInfo, Persistence]] = []
    for site in relu_sites(run):
        held = persistence(
            run, dead[:, site.idx], th["dead_fraction"], th["min_share"], th["min_samples"], rows
        )
        if held is not None:
            found.append((site, held))
    if not found:
        return []
    site, held = max(found, key=lambda f: f[1].level)  # the worst; others in the evidence
    layer = _units_layer(run, site)
    before = layer_before(run, site)
    units = units_of(site)
    from_start = held.rise_step is None
    # the update that killed them ran after the last sample that saw most of them alive
    feeding = before.module if before is not None else None
    big = update_before_onset(run, held, feeding, th["big_update"])
    after_big = big is not None and big.ratio >= th["big_update"]
    evidence: dict[str, Any] = {
        "layer": layer,
        "site": site.name,
        "after_layer": before.module if before is not None else None,
        "units": units,
        "dead_fraction": held.level,
        "dead_at_start": held.first,
        "since_step": held.onset_step,
        "share": held.share,
        "samples": held.samples,
        "dead_layers": {_units_layer(run, s): h.level for s, h in found},
        "from_start": from_start,
    }
    if big is not None:
        evidence.update(
            largest_update=big.ratio, largest_update_param=big.param, largest_update_step=big.step
        )
    fixes, why = _fixes(from_start, after_big, big)
    of_units = f"of the {units} units " if units else ""
    where = f"ReLU {site.name}" if site.role == "output" else f"{layer} (through a ReLU)"
    after = f" (after {before.module})" if before is not None and site.role == "output" else ""
    message = (
        f"{percent(held.level)} {of_units}of {where}{after} are zero for every sample, on "
        f"{held.hits} of {held.samples} later sampled steps since step {held.onset_step} "
        f"({percent(held.first)} at the start): {why}"
    )
    return [
        Diagnosis(
            RULE_ID, Severity.WARNING, held.onset_step, layer, message, evidence, tuple(fixes)
        )
    ]


def _fixes(from_start: bool, after_big: bool, big: Any) -> tuple[list[Fix], str]:
    """Rank the fixes by when the units died, and say the first in words."""
    if from_start:
        he = fix(
            "he_init",
            "re-initialise the layer so its pre-activations start centred on zero: He init for "
            "the weights and zero biases, nn.init.kaiming_normal_(layer.weight, "
            "nonlinearity='relu'); nn.init.zeros_(layer.bias)",
        )
        return (
            [he, fix("leaky_relu"), fix("batchnorm"), fix("lower_lr")],
            "they were dead from the first step, so their inputs started below zero (weights or "
            "biases initialised off-centre): re-initialise with He init and zero biases, or use "
            "LeakyReLU so they can recover",
        )
    if after_big:
        return (
            [fix("lower_lr"), fix("leaky_relu"), fix("batchnorm"), fix("he_init")],
            f"they died after an update moved {big.param} by ×{fmt(big.ratio)} of its norm in one "
            f"step (step {big.step}): a learning rate that high pushes the pre-activations below "
            "zero for every input, where ReLU passes no gradient to bring them back; lower the "
            "learning rate",
        )
    return (
        [fix("leaky_relu"), fix("batchnorm"), fix("lower_lr"), fix("he_init")],
        "they drifted below zero during training and a dead ReLU passes no gradient to bring "
        "them back: use LeakyReLU, or batchnorm to keep the pre-activations centred",
    )


RULE = Rule(
    id=RULE_ID,
    severity=Severity.WARNING,
    title="Most units of a ReLU layer never fire (dead ReLUs)",
    thresholds=(
        Threshold(
            "dead_fraction",
            0.7,
            "share of a layer's units that are ≤ 0 for every sample of the batch from which the "
            "layer counts as dead",
            "AUTOTRAINER (ICSE'21) / DeepDiagnosis (ICSE'22): ≥ 70 %; SageMaker DeadRelu and "
            "TheDeepChecker use 50 % over a whole data set, ours is per batch so we take 70 %",
        ),
        Threshold(
            "min_share",
            0.75,
            "share of the run's later sampled steps (its second half) on which the layer must "
            "be dead: lasting, not one batch",
            "netdoctor",
        ),
        Threshold(
            "min_samples",
            3.0,
            "later sampled steps needed before judging",
            "netdoctor",
        ),
        Threshold(
            "big_update",
            0.1,
            "update over weight norm (‖ΔW‖ / ‖W‖) of one step up to the onset from which the "
            "units are said to have died from a learning rate too high",
            "cs231n (≈1e-3 is healthy); TheDeepChecker (TOSEM'22): upper bound 1e-1",
        ),
    ),
    fixes=("lower_lr", "he_init", "leaky_relu", "batchnorm"),
    doc=RuleDoc(
        what=(
            "A ReLU layer (an nn.ReLU module, or F.relu seen at the next layer's input) where "
            "at least 70 % of the units (features, or conv channels) output zero for every "
            "sample of the batch, on most of the run's later sampled steps. Reports the worst "
            "layer, since when it has been dead, how dead it was at the start, and the largest "
            "update before it died."
        ),
        why=(
            "ReLU passes no gradient for negative inputs. A unit whose pre-activation is "
            "negative for every input gets no gradient at all, so nothing pulls it back: it is "
            "dead for good and the layer works with a fraction of its width. Units die when a "
            "large update (a learning rate too high) throws the weights or biases far negative, "
            "when the initialisation or the biases start the pre-activations below zero, or "
            "slowly as training drifts. Many dead units cost capacity (the model underfits) and "
            "starve the layers before them of gradient."
        ),
        how_to_fix=(
            "If they died right after large updates, lower the learning rate (or warm it up). "
            "If they were dead from the first step, initialise with He init and zero biases. In "
            "any case LeakyReLU (or ELU/GELU) keeps a small gradient for negative inputs so "
            "units can recover, and batch normalisation before the activation keeps the "
            "pre-activations centred around zero."
        ),
        example=(
            "nn.Linear(64, 128), nn.ReLU()  # with torch.optim.SGD(..., lr=0.5): units die\n"
            "nn.Linear(64, 128), nn.BatchNorm1d(128), nn.LeakyReLU(0.01)  # and lr=0.05"
        ),
    ),
    check=check,
)
