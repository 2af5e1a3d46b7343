"""The rules netdoctor knows, in their documented order, and the cause-consequence table.

Order (``all_rules()``): nan_loss, exploding_gradients, vanishing_gradients, dead_relu,
saturated_activations, overfitting, underfitting, lr_too_high, lr_too_low, loss_not_decreasing,
frozen_parameters, symmetric_weights, poor_init, unnormalized_inputs, the order of
design.md's rule ids; then double_softmax (a loss that cannot reach 0); then the rules of
distributed runs: rank_nonfinite, straggler_rank, replicas_out_of_sync, rank_failed. Reports
list rules in this order when nothing else (cause, severity, step) separates two diagnoses.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from netdoctor.errors import ConfigError
from netdoctor.rules import (
    dead_relu,
    double_softmax,
    exploding,
    frozen_parameters,
    loss_not_decreasing,
    lr_too_high,
    lr_too_low,
    nonfinite,
    overfitting,
    poor_init,
    rank_failed,
    rank_nonfinite,
    replicas,
    saturated,
    straggler,
    symmetric_weights,
    underfitting,
    unnormalized_inputs,
    vanishing,
)
from netdoctor.rules.base import Rule, RuleDoc, Threshold

__all__ = ["CAUSES", "Rule", "RuleDoc", "Threshold", "all_rules", "get_rule", "rule_ids"]

_RULES: tuple[Rule, ...] = (
    nonfinite.RULE,
    exploding.RULE,
    vanishing.RULE,
    dead_relu.RULE,
    saturated.RULE,
    overfitting.RULE,
    underfitting.RULE,
    lr_too_high.RULE,
    lr_too_low.RULE,
    loss_not_decreasing.RULE,
    frozen_parameters.RULE,
    symmetric_weights.RULE,
    poor_init.RULE,
    unnormalized_inputs.RULE,
    double_softmax.RULE,
    rank_nonfinite.RULE,
    straggler.RULE,
    replicas.RULE,
    rank_failed.RULE,
)
_BY_ID: Mapping[str, Rule] = MappingProxyType({r.id: r for r in _RULES})

#: Consequence rule id -> rule ids that can be its root cause, most immediate first. When both
#: fire on one run, the engine lists the cause first and its consequence right after it: a NaN
#: that ends an explosion is explained by the explosion, and so are gates saturated by it
#: (gradients then vanish); a net that cannot learn because its gradients vanish or exploded is
#: explained by that. Raw inputs and a bad initialisation come first of all (they blow up the
#: first updates, saturate or kill units); saturated and dead units are how gradients vanish.
#: A learning rate too high is behind explosions and the units they kill; one too low, frozen
#: or symmetric (zero-initialised) weights are behind a loss that does not move; symmetric and
#: frozen weights pass no gradient back, which shows as vanishing gradients.
#: A NaN that one rank's batch produced (rank_nonfinite) reaches every rank's weights through the
#: gradient all-reduce: it explains the nan_loss that rank 0's log then shows.
#: Probabilities fed to cross-entropy (double_softmax) put a floor under the loss, so it looks
#: like underfitting, and the saturated softmax passes back small gradients.
#: The graph has no cycles (tests/rules/test_causes.py), so every chain ends at a root.
CAUSES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "nan_loss": ("rank_nonfinite", "exploding_gradients", "lr_too_high"),
        "exploding_gradients": ("unnormalized_inputs", "poor_init", "lr_too_high"),
        "vanishing_gradients": (
            "saturated_activations",
            "dead_relu",
            "exploding_gradients",
            "poor_init",
            "symmetric_weights",
            "frozen_parameters",
            "double_softmax",
        ),
        "dead_relu": (
            "exploding_gradients",
            "poor_init",
            "unnormalized_inputs",
            "lr_too_high",
            "symmetric_weights",
        ),
        "saturated_activations": (
            "exploding_gradients",
            "poor_init",
            "unnormalized_inputs",
            "lr_too_high",
        ),
        "underfitting": (
            "loss_not_decreasing",
            "double_softmax",
            "vanishing_gradients",
            "exploding_gradients",
            "dead_relu",
            "saturated_activations",
            "poor_init",
            "unnormalized_inputs",
            "lr_too_high",
            "lr_too_low",
            "symmetric_weights",
            "frozen_parameters",
        ),
        "loss_not_decreasing": (
            "double_softmax",
            "lr_too_low",
            "frozen_parameters",
            "symmetric_weights",
            "vanishing_gradients",
            "dead_relu",
            "saturated_activations",
            "exploding_gradients",
            "lr_too_high",
            "poor_init",
            "unnormalized_inputs",
        ),
        "frozen_parameters": ("symmetric_weights", "dead_relu"),
        "lr_too_high": ("poor_init",),
        # weights initialised far too small give tiny gradients, so tiny updates at any lr
        "lr_too_low": ("poor_init",),
    }
)


def all_rules() -> tuple[Rule, ...]:
    """Every rule, in the documented order."""
    return _RULES


def rule_ids() -> tuple[str, ...]:
    return tuple(r.id for r in _RULES)


def get_rule(rule_id: str) -> Rule:
    """The rule called ``rule_id``; ConfigError naming the known ids when there is none."""
    try:
        return _BY_ID[rule_id]
    except KeyError:
        raise ConfigError(f"unknown rule id {rule_id!r} (known: {', '.join(rule_ids())})") from None
