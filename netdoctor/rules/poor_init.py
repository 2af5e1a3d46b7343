"""``poor_init``: at the first step the weights are scaled so that signals shrink or blow up.

Three independent witnesses, all read at initialisation (the first sampled step):

* depth: the standard deviation of the hidden layers' pre-activations (Linear/Conv outputs, the
  output layer excluded) changes geometrically with depth, ``depth_ratio``× or more from the
  first hidden layer to the last and at least ``per_layer``× per layer on average;
* weights: a hidden layer's weight RMS is ``weight_ratio``× or more off the scale made for the
  activation after it (He sqrt(2/fan_in) for ReLU, Glorot sqrt(2/(fan_in+fan_out)) for
  tanh/sigmoid, LeCun sqrt(1/fan_in) otherwise);
* outputs: the first loss of a classifier (the run gives ``num_classes``) is ``loss_ratio``× or
  more its chance loss -log(1/C) (Karpathy: "verify loss @ init"). A regression's first loss
  says little: targets far from zero make it large whatever the weights.

PyTorch's default init (kaiming_uniform with a=sqrt(5): 0.41× the He scale, 0.58× LeCun's)
passes all three on MLPs, CNNs and LSTMs of ordinary depth. A model with normalisation layers is
only judged on its outputs: the norms undo any weight scale. Weights with identical units (zero
or constant init) are ``symmetric_weights``'s, and a first loss explained by raw inputs is
``unnormalized_inputs``'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import INPUT_SCALE, LINEAR_TYPES, fmt, input_rms, valid_loss
from netdoctor.rules.fixes import fix
from netdoctor.runlog.run_data import ParamInfo, RunData, SiteInfo
from netdoctor.runlog.schema import ActStat, ParamStat

RULE_ID = "poor_init"
#: UNIT_SPREAD below which a weight's units are (nearly) copies of each other: that is
#: symmetric_weights's finding, not a question of scale.
SYMMETRIC_SPREAD = 0.1
#: ‖ΔW‖ / ‖W‖ of the first step from which the weight norm read after it no longer shows the
#: initial scale (the first update replaced the weights rather than nudged them).
FIRST_UPDATE_LIMIT = 0.5


def _layers(run: RunData) -> list[SiteInfo]:
    """Output sites of Linear/Conv layers in forward order (the model's output layer included)."""
    return [
        s
        for s in run.sites_in_forward_order("output")
        if s.family in ("linear", "conv") or s.module_type in LINEAR_TYPES
    ]


#: Site index -> the activation module right after it (None: none, or a functional one).
Follows = Mapping[int, SiteInfo | None]


def _activations_after(ordered: list[SiteInfo]) -> dict[int, SiteInfo | None]:
    """Which activation module directly follows each output site in forward order."""
    found: dict[int, SiteInfo | None] = {}
    for i, site in enumerate(ordered):
        nxt = None
        for later in ordered[i + 1 :]:
            if later.family in ("relu", "smooth", "bounded"):
                nxt = later
                break
            if later.family != "softmax":
                break
        found[site.idx] = nxt
    return found


@dataclass(frozen=True, slots=True)
class _Scale:
    """A weight's RMS at initialisation against the scale made for its activation."""

    param: str
    module: str
    rms: float
    expected: float
    scheme: str  # "He" | "Glorot" | "LeCun"
    activation: str | None  # module type of the activation after it ("ReLU", "Tanh"...)

    @property
    def ratio(self) -> float:
        return self.rms / self.expected

    @property
    def off(self) -> float:
        """How many times off, either way (≥ 1)."""
        r = self.ratio
        return max(r, 1 / r) if r > 0 else math.inf


def _weight_of(run: RunData, module: str) -> ParamInfo | None:
    return next(
        (
            p
            for p in run.params
            if p.name == f"{module}.weight" and len(p.shape) >= 2 and p.numel > 0
        ),
        None,
    )


def _scale(run: RunData, layer: SiteInfo, follows: Follows) -> _Scale | None:
    """The layer's weight RMS at the first sample against He/Glorot/LeCun; None if unknowable."""
    p = _weight_of(run, layer.module)
    if p is None:
        return None
    weight = float(run.param[0, p.idx, ParamStat.WEIGHT_NORM])
    update = float(run.param[0, p.idx, ParamStat.UPDATE_NORM])
    spread = float(run.param[0, p.idx, ParamStat.UNIT_SPREAD])
    if not math.isfinite(weight) or weight <= 0:
        return None
    if math.isfinite(spread) and spread < SYMMETRIC_SPREAD:
        return None  # constant or zero init: symmetric_weights
    if math.isfinite(update) and update / weight >= FIRST_UPDATE_LIMIT:
        return None  # the first update replaced the initial weights
    receptive = int(np.prod(p.shape[2:])) if len(p.shape) > 2 else 1
    fan_in, fan_out = int(np.prod(p.shape[1:])), int(p.shape[0]) * receptive
    after = follows.get(layer.idx)
    family = after.family if after is not None else None
    if family == "relu":
        expected, scheme = math.sqrt(2.0 / fan_in), "He"
    elif family == "bounded":
        expected, scheme = math.sqrt(2.0 / (fan_in + fan_out)), "Glorot"
    else:
        expected, scheme = math.sqrt(1.0 / fan_in), "LeCun"
    kind = after.module_type if after is not None else None
    return _Scale(p.name, layer.module, weight / math.sqrt(p.numel), expected, scheme, kind)


@dataclass
class _Findings:
    texts: list[str]
    evidence: dict[str, Any]
    smaller: bool | None = None  # the signal shrinks (True) or grows (False)
    layer: str | None = None


def _depth(run: RunData, th: Mapping[str, float], hidden: list[SiteInfo], out: _Findings) -> None:
    stds = [(s, float(run.act[0, s.idx, ActStat.STD])) for s in hidden]
    stds = [(s, v) for s, v in stds if math.isfinite(v) and v > 0]
    if len(stds) < 3:
        return
    total = stds[-1][1] / stds[0][1]
    per = total ** (1.0 / (len(stds) - 1))
    if max(total, 1 / total) < th["depth_ratio"] or max(per, 1 / per) < th["per_layer"]:
        return
    out.smaller = total < 1
    verb = "shrinks" if total < 1 else "grows"
    out.texts.append(
        f"the hidden pre-activation std {verb} ×{fmt(per)} per layer, from {fmt(stds[0][1])} at "
        f"{stds[0][0].module} to {fmt(stds[-1][1])} at {stds[-1][0].module}"
    )
    out.evidence.update(
        std_profile={s.module: v for s, v in stds[:30]},
        std_ratio_per_layer=per,
        std_ratio_total=total,
    )


def _weights(
    run: RunData, th: Mapping[str, float], hidden: list[SiteInfo], follows: Follows, out: _Findings
) -> None:
    scales = [sc for sc in (_scale(run, s, follows) for s in hidden) if sc is not None]
    off = [sc for sc in scales if sc.off >= th["weight_ratio"]]
    if not off:
        return
    worst = max(off, key=lambda sc: sc.off)
    if out.smaller is None:
        out.smaller = worst.ratio < 1
    out.layer = worst.module
    after = (
        f"the {worst.activation} after it"
        if worst.activation
        else "a layer with no activation module after it"
    )
    out.texts.append(
        f"{worst.param} has RMS {fmt(worst.rms)}, ×{fmt(worst.ratio)} the {worst.scheme} scale "
        f"{fmt(worst.expected)} for {after}"
    )
    out.evidence.update(
        weight_scales={sc.param: sc.ratio for sc in scales[:30]},
        worst_param=worst.param,
        worst_ratio=worst.ratio,
        worst_scheme=worst.scheme,
        layers_off_scale=[sc.param for sc in off],
    )


def _outputs(
    run: RunData, th: Mapping[str, float], layers: list[SiteInfo], follows: Follows, out: _Findings
) -> None:
    scale = input_rms(run)
    if scale is not None and scale >= th["input_scale"]:
        return  # raw inputs explain large first outputs: unnormalized_inputs
    task = run.task
    classes = _positive(task.get("num_classes"))
    if classes is None:
        return  # only a classifier's chance loss says what an untrained model should score
    chance = _positive(task.get("chance_loss")) or math.log(max(2, int(classes)))
    loss = valid_loss(run)[:3]
    loss = loss[np.isfinite(loss)]
    if not loss.size:
        return
    first = min(float(loss[0]), float(np.median(loss)))  # not one odd first batch
    if first < th["loss_ratio"] * chance:
        return
    out.smaller = False if out.smaller is None else out.smaller
    out.texts.append(
        f"the first loss {fmt(first)} is ×{fmt(first / chance)} the chance loss "
        f"{fmt(chance)} (-log(1/{int(classes)})), so the untrained model is confidently wrong"
    )
    out.evidence.update(first_loss=first, chance_loss=chance, first_loss_vs_chance=first / chance)
    scale_out = _scale(run, layers[-1], follows) if layers else None
    if scale_out is not None:
        out.evidence.update(output_layer=scale_out.module, output_weight_ratio=scale_out.ratio)
        out.layer = out.layer or scale_out.module


def _positive(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) and value > 0 else None


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    if not run.sample_steps.size:
        return []
    layers = _layers(run)
    follows = _activations_after(run.sites_in_forward_order("output"))
    out = _Findings([], {})
    normalised = any(s.family == "norm" for s in run.sites)
    if not normalised:  # norm layers undo any weight scale: only the outputs can tell
        hidden = layers[:-1]
        _depth(run, th, hidden, out)
        _weights(run, th, hidden, follows, out)
    _outputs(run, th, layers, follows, out)
    if not out.texts:
        return []
    fixes, advice = _fixes(run, out)
    step = int(run.sample_steps[0])
    message = f"at initialisation {'; '.join(out.texts)}: {advice}"
    evidence = {"findings": len(out.texts), **out.evidence}
    return [Diagnosis(RULE_ID, Severity.WARNING, step, out.layer, message, evidence, fixes)]


def _fixes(run: RunData, out: _Findings) -> tuple[tuple[Fix, ...], str]:
    families = {s.family for s in run.sites if s.role == "output"}
    he = "relu" in families or ("smooth" in families and "bounded" not in families)
    size = "too small" if out.smaller else "too large"
    if he:
        first = fix("he_init")
        advice = (
            f"the weights are {size} for the ReLU-family activations; initialise each layer "
            "with He init (std sqrt(2/fan_in)), or add batchnorm"
        )
    else:
        first = fix("xavier_init")
        advice = (
            f"the weights are {size} for the activations; initialise each layer with "
            "Xavier/Glorot (std sqrt(2/(fan_in+fan_out))), or add batchnorm"
        )
    outputs_only = len(out.texts) == 1 and "first_loss" in out.evidence
    if outputs_only:  # only the outputs are off: the output layer's scale
        layer = out.evidence.get("output_layer", "the output layer")
        call = "kaiming_normal_" if he else "xavier_uniform_"
        first = Fix(
            first.id,
            f"initialise {layer} so the first predictions are near chance: small weights and "
            f"a zero bias, nn.init.{call}(layer.weight); layer.weight.data.mul_(0.1); "
            "nn.init.zeros_(layer.bias) (and the hidden layers with the scale for their "
            "activation)",
        )
        advice = (
            "the output layer starts far too large; initialise it small (and the rest with "
            f"{'He' if he else 'Xavier'} init) so the first loss is near chance"
        )
    return (first, fix("batchnorm")), advice


RULE = Rule(
    id=RULE_ID,
    severity=Severity.WARNING,
    title="Weights initialised at the wrong scale (poor initialisation)",
    thresholds=(
        Threshold(
            "depth_ratio",
            100.0,
            "change of the hidden pre-activation std from the first hidden layer to the last, "
            "at init, from which the signal is lost or blown up with depth",
            "SageMaker Debugger PoorWeightInitialization compares activation variances across "
            "layers (ratio 10); netdoctor margin, PyTorch's default init shrinks a deep ReLU "
            "stack ~30× and trains",
        ),
        Threshold(
            "per_layer",
            2.0,
            "average change of that std per layer that must also hold (a geometric trend)",
            "cs231n (weight initialisation): activation statistics should stay about constant "
            "across layers; netdoctor margin",
        ),
        Threshold(
            "weight_ratio",
            10.0,
            "times off the He/Glorot/LeCun scale (either way) from which a hidden layer's "
            "weight RMS at init is wrong for its activation",
            "TheDeepChecker (TOSEM'22): F-test of the initial weight variance against "
            "LeCun/He/Glorot; DeepDiagnosis (ICSE'22): weight variance outside [1e-5, 10]; "
            "netdoctor margin",
        ),
        Threshold(
            "loss_ratio",
            5.0,
            "a classifier's first loss over its chance loss -log(1/C) from which the initial "
            "outputs are far too large",
            "Karpathy, A Recipe for Training Neural Networks (2019): verify loss @ init; "
            "netdoctor margin (He init on every layer, output head included, starts a CNN at "
            "~3.5× and trains well)",
        ),
        INPUT_SCALE,
    ),
    fixes=("he_init", "xavier_init", "batchnorm"),
    doc=RuleDoc(
        what=(
            "At the first step: the hidden layers' pre-activation std changing geometrically "
            "with depth (≥ 100× from first to last hidden layer, ≥ 2× per layer), a hidden "
            "layer's weight RMS ≥ 10× off the He/Glorot/LeCun scale for the activation after "
            "it, or (when the run gives num_classes) a classifier's first loss ≥ 5× the chance "
            "loss -log(1/C). Models with normalisation layers are judged on the first loss "
            "only."
        ),
        why=(
            "Each layer multiplies the signal's variance by fan_in × Var(w) (halved by a ReLU). "
            "Weights too small (N(0, 0.01) in a deep net) shrink activations and gradients "
            "layer after layer until the first layers learn nothing; weights too large (N(0, "
            "1)) blow them up, saturate sigmoid/tanh and make the first loss huge; an output "
            "layer that starts large makes the untrained model confidently wrong, and the "
            "first steps are spent undoing it. Initialisation schemes pick Var(w) so the "
            "variance stays constant: 2/fan_in for ReLU (He), 2/(fan_in+fan_out) for "
            "tanh/sigmoid (Xavier/Glorot), 1/fan_in for linear layers (LeCun)."
        ),
        how_to_fix=(
            "Initialise each layer for the activation that follows it: "
            "nn.init.kaiming_normal_(w, nonlinearity='relu') for ReLU, "
            "nn.init.xavier_uniform_(w) for tanh/sigmoid, biases at zero; initialise the output "
            "layer small so the first loss is about -log(1/C). Batch normalisation makes the "
            "network much less sensitive to the initial scale."
        ),
        example=(
            "for m in model.modules():  # N(0, 0.01) in 8 ReLU layers: the signal vanishes\n"
            "    if isinstance(m, nn.Linear):\n"
            "        nn.init.kaiming_normal_(m.weight, nonlinearity='relu'); "
            "nn.init.zeros_(m.bias)"
        ),
    ),
    check=check,
)
