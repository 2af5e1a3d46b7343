"""frozen_parameters: parameters that never change, by kind; deliberate freezing is info."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from netdoctor.rules import get_rule, run_rules
from netdoctor.runlog.schema import ActStat, ParamStat

from .factory import Layer, make_run, mlp, noisy_decay
from .real_loops import HEALTHY, real
from .test_underfitting import flat

RULE = get_rule("frozen_parameters")
HE = math.sqrt(2 / 64)
SGD = {"class": "SGD", "groups": [{"lr": 0.05, "momentum": 0.9}]}


def check(run):
    return RULE.check(run, RULE.defaults())


def base(loss=None, **kw):
    """Three Linear layers, all trainable, in the optimizer, with gradients, learning."""
    kw.setdefault("optimizer", SGD)
    kw.setdefault("layers", mlp(3))
    return make_run(noisy_decay(200) if loss is None else loss, update_rms=1e-3 * HE, **kw)


def with_params(run, **changes):
    """The run with some of its parameters' flags changed: {name: {field: value}}."""
    params = tuple(
        dataclasses.replace(p, **changes[p.name]) if p.name in changes else p for p in run.params
    )
    return dataclasses.replace(run, params=params)


def col(run, name):
    return next(p.idx for p in run.params if p.name == name)


def test_a_healthy_run_is_quiet():
    assert check(base()) == []


def test_missing_from_the_optimizer():
    run = with_params(base(), **{"layers.0.weight": {"in_optimizer": False}})
    (d,) = check(run)
    assert d.severity.value == "warning" and d.layer == "layers.0"
    assert d.evidence["kind"] == "not_in_optimizer" and d.evidence["params"] == ["layers.0.weight"]
    assert d.fixes[0].id == "unfreeze_parameters" and "model.parameters()" in d.fixes[0].text


def test_missing_from_the_optimizer_but_changing_has_another_optimizer():
    weight = np.tile(np.linspace(1.0, 1.2, 20)[:, None], (1, 3)) * HE
    run = base(weight_rms=weight)
    run = with_params(run, **{"layers.0.weight": {"in_optimizer": False}})
    assert check(run) == []


def test_without_the_optimizer_nothing_is_in_one():
    run = make_run(noisy_decay(200), layers=mlp(3))  # watch(model) without the optimizer
    run = with_params(run, **{p.name: {"in_optimizer": False} for p in run.params})
    assert check(run) == []


def test_no_gradient_although_the_module_ran_is_a_cut_graph():
    run = base()
    run.param[:, col(run, "layers.0.weight"), ParamStat.HAS_GRAD] = 0
    (d,) = check(run)
    assert d.evidence["kind"] == "no_gradient" and d.severity.value == "warning"
    assert d.evidence["ran_forward"] == ["layers.0"] and ".detach()" in d.message


def test_no_gradient_for_a_module_that_never_ran_is_info():
    layers = [*mlp(3), Layer("pooler", weight=(10, 10))]
    run = base(layers=layers)
    run = dataclasses.replace(run, sites=tuple(s for s in run.sites if s.module != "pooler"))
    run.param[:, col(run, "pooler.weight"), ParamStat.HAS_GRAD] = 0
    (d,) = check(run)
    assert d.evidence["kind"] == "no_gradient" and d.severity.value == "info"
    assert "never ran" in d.message


def test_an_exactly_zero_gradient_while_others_learn():
    run = base()
    run.param[:, col(run, "layers.2.weight"), ParamStat.GRAD_NORM] = 0
    (d,) = check(run)
    assert d.evidence["kind"] == "zero_gradient" and d.layer == "layers.2"
    assert "straight through" in d.fixes[0].text


def test_a_vector_with_an_exactly_zero_gradient_cancels_out_and_is_harmless():
    layers = [*mlp(3), Layer("shift", "Shift", "other", (32, 10), (10,))]  # e.g. before a BN
    run = base(layers=layers)
    run.param[:, col(run, "shift.weight"), ParamStat.GRAD_NORM] = 0
    assert check(run) == []


def test_a_zero_gradient_behind_a_layer_of_dead_units_is_dead_relus():
    run = base()
    for name in ("layers.0.weight", "layers.4.weight"):  # before it, and fed by it
        run.param[:, col(run, name), ParamStat.GRAD_NORM] = 0
    dead = next(s.idx for s in run.sites if s.name == "layers.3")
    run.act[:, dead, ActStat.ZERO_FRAC] = 1.0  # every ReLU of layers.3 outputs 0, always
    assert check(run) == []


def test_every_gradient_zero_when_the_optimizer_steps():
    run = base(flat(200))
    run.param[:, :, ParamStat.GRAD_NORM] = 0
    (d,) = check(run)
    assert d.evidence["kind"] == "all_zero_gradients" and "zero_grad()" in d.fixes[0].text
    run.param[:, :, ParamStat.HAS_GRAD] = 0  # set_to_none: no gradient at all
    assert check(run)[0].evidence["kind"] == "all_zero_gradients"


def test_no_gradients_without_an_optimizer_may_be_an_evaluation_loop():
    run = make_run(flat(200), layers=mlp(3))
    run.param[:, :, ParamStat.HAS_GRAD] = 0
    assert check(run) == []


def test_a_frozen_backbone_is_deliberate():
    frozen = {"layers.0.weight": {"trainable": False}, "layers.2.weight": {"trainable": False}}
    (d,) = check(with_params(base(), **frozen))
    assert d.severity.value == "info" and d.evidence["kind"] == "requires_grad_off"
    assert d.evidence["head"] == "layers.4" and d.evidence["head_frozen"] is False


def test_a_frozen_head_while_the_body_trains_is_a_mistake():
    (d,) = check(with_params(base(), **{"layers.4.weight": {"trainable": False}}))
    assert d.severity.value == "warning" and d.layer == "layers.4"
    assert "output layer" in d.message


def test_a_frozen_model_with_small_adapters_is_deliberate():
    # LoRA-style: the whole model frozen, head included; small adapter matrices train
    layers = [Layer("adapter", weight=(4, 512)), *mlp(3, width=512, n_in=512)]
    frozen = {f"layers.{i}.weight": {"trainable": False} for i in (0, 2, 4)}
    (d,) = check(with_params(base(layers=layers), **frozen))
    assert d.evidence["head_frozen"] is True and d.evidence["frozen_share"] > 0.95
    assert d.severity.value == "info"


def test_mostly_frozen_and_not_learning_is_a_warning():
    frozen = {"layers.0.weight": {"trainable": False}, "layers.2.weight": {"trainable": False}}
    (d,) = check(with_params(base(flat(200)), **frozen))
    assert d.severity.value == "warning" and "unfreeze the top layers" in d.message


def test_a_param_group_at_learning_rate_zero():
    opt = {"class": "SGD", "groups": [{"lr": 0.0}, {"lr": 0.05}]}
    update = np.tile([0.0, 1e-3, 1e-3], (20, 1)) * HE
    run = make_run(noisy_decay(200), layers=mlp(3), update_rms=update, optimizer=opt)
    (d,) = check(run)
    assert d.evidence["kind"] == "zero_lr" and d.severity.value == "info"
    assert "'lr'" in d.fixes[0].text


def test_too_few_samples_judge_only_what_the_structure_says():
    run = with_params(base(sample_steps=[0, 10]), **{"layers.0.weight": {"in_optimizer": False}})
    assert check(run) == []
    run = with_params(run, **{"layers.2.weight": {"trainable": False}})
    assert [d.evidence["kind"] for d in check(run)] == ["requires_grad_off"]


def test_a_single_layer():
    run = base(layers=[Layer("fc", weight=(10, 64))])
    run = with_params(run, **{"fc.weight": {"in_optimizer": False}})
    assert [d.layer for d in check(run)] == ["fc"]


# ---- real runs ---------------------------------------------------------------------------------
def _frozen(name):
    found = run_rules(real(name))
    return found, [d for d in found if d.rule == "frozen_parameters"]


def test_an_optimizer_built_from_the_head_only():
    _, (d,) = _frozen("missing_from_optimizer")
    assert d.evidence["kind"] == "not_in_optimizer" and d.severity.value == "warning"
    assert d.evidence["params"] == ["0.weight", "0.bias"] and d.layer == "0"


def test_an_optimizer_of_another_instance_freezes_everything():
    found, (d,) = _frozen("other_instance")
    assert found[0] is d and d.evidence["frozen_numel"] == d.evidence["total_numel"]


def test_a_detached_body():
    _, (d,) = _frozen("detached")
    assert d.evidence["kind"] == "no_gradient" and d.layer == "body.0"
    assert d.severity.value == "warning"


def test_round_between_layers_has_zero_derivative():
    found, (d,) = _frozen("rounded")
    assert found[0] is d and d.evidence["kind"] == "zero_gradient" and d.layer == "a"
    for after in found[1:]:  # vanishing gradients are how it shows further on
        assert after.evidence["caused_by"] == "frozen_parameters"


def test_a_frozen_output_layer():
    _, (d,) = _frozen("frozen_head")
    assert d.severity.value == "warning" and d.evidence["head_frozen"] is True


def test_an_unused_module_is_info():
    _, (d,) = _frozen("unused_module")
    assert d.severity.value == "info" and d.evidence["modules"] == ["pooler"]


def test_zero_grad_between_backward_and_step():
    found, (d,) = _frozen("zero_grad_late")
    assert found[0] is d and d.evidence["kind"] == "all_zero_gradients"
    assert "zero_grad()" in d.fixes[0].text


def test_a_zero_learning_rate_group_is_info():
    _, (d,) = _frozen("zero_lr_group")
    assert d.evidence["kind"] == "zero_lr" and d.severity.value == "info" and d.layer == "0"


def test_healthy_real_runs_warn_about_nothing():
    for name in HEALTHY:
        loud = [d for d in check(real(name)) if d.severity.value != "info"]
        assert loud == [], name
    (d,) = check(real("frozen_backbone"))  # deliberate: said, as info
    assert d.severity.value == "info" and d.evidence["kind"] == "requires_grad_off"
