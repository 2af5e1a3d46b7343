"""The fix catalogue: every fix id of design.md with a default text that says what to change.

Each text names the change and shows it as one line of PyTorch, so a person can act on it
without looking anything up. Rules may pass a case-specific text instead (``fix(id, text)``),
for example one that names the epoch to stop at; the id stays the contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from netdoctor.diagnosis import Fix

_TEXTS: dict[str, str] = {
    "he_init": (
        "initialise ReLU layers with He init, which keeps the signal's variance from shrinking "
        "layer after layer: nn.init.kaiming_normal_(layer.weight, nonlinearity='relu')"
    ),
    "xavier_init": (
        "initialise tanh/sigmoid and linear layers with Xavier (Glorot) init, scaled by fan-in "
        "and fan-out so signals and gradients keep their size in both directions: "
        "nn.init.xavier_uniform_(layer.weight)"
    ),
    "batchnorm": (
        "normalise each layer's pre-activations over the batch so they stay in range while the "
        "weights change: put nn.BatchNorm1d(features) (nn.BatchNorm2d(channels) after a conv) "
        "between the layer and its activation"
    ),
    "grad_clipping": (
        "clip the total gradient norm between backward() and step(), so one large gradient cannot "
        "throw the weights away: torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)"
    ),
    "lr_decay": (
        "lower the learning rate as training goes on (large steps early, fine steps late): "
        "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5), "
        "then scheduler.step() once per epoch"
    ),
    "lower_lr": (
        "divide the learning rate by 10, e.g. torch.optim.SGD(model.parameters(), lr=0.01) "
        "instead of lr=0.1; a step that is too large overshoots and can diverge"
    ),
    "raise_lr": (
        "multiply the learning rate by 3-10 (common starting points: lr=1e-3 for Adam, "
        "lr=0.01-0.1 for SGD with momentum); a step that is too small barely moves the weights"
    ),
    "early_stopping": (
        "stop when the validation loss has not improved for a few epochs and keep the best "
        "weights: if val_loss < best: best, state = val_loss, copy.deepcopy(model.state_dict())"
    ),
    "dropout": (
        "randomly zero a share of hidden units while training so units cannot co-adapt "
        "(an implicit average of many models): add nn.Dropout(p=0.3) after hidden activations "
        "(it is off in model.eval())"
    ),
    "weight_decay": (
        "penalise large weights (L2 regularisation) so the model prefers simpler fits: "
        "torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)"
    ),
    "relu_activation": (
        "use a non-saturating activation in hidden layers: sigmoid and tanh flatten out for large "
        "inputs and pass back almost no gradient, ReLU passes it unchanged for positive inputs: "
        "replace nn.Sigmoid()/nn.Tanh() with nn.ReLU()"
    ),
    "leaky_relu": (
        "let negative inputs keep a small slope so units that went negative can still learn: "
        "replace nn.ReLU() with nn.LeakyReLU(0.01)"
    ),
    "residual_connections": (
        "add skip connections so the gradient reaches early layers directly, around the blocks "
        "in between: in forward(), x = x + block(x) (ResNet-style)"
    ),
    "normalize_inputs": (
        "standardise the inputs with the training-set statistics so they sit around [-1, 1]: "
        "x = (x - mean) / std (transforms.Normalize(mean, std) for images)"
    ),
    "stable_loss": (
        "compute the loss from raw logits with a fused, numerically stable loss instead of "
        "softmax/sigmoid then log by hand: nn.CrossEntropyLoss()(logits, y) (nn.BCEWithLogitsLoss "
        "for binary); add an epsilon to any other log, sqrt or division: torch.log(x + 1e-8)"
    ),
    "adam": (
        "use an adaptive optimiser, which scales each weight's step by its own gradient history "
        "and works well without much tuning: torch.optim.Adam(model.parameters(), lr=1e-3)"
    ),
    "more_capacity": (
        "give the model more capacity: wider layers (nn.Linear(in_f, 256) instead of 32), one "
        "more hidden layer, or more conv channels, so it can represent the task"
    ),
    "train_longer": (
        "train for more epochs (for epoch in range(num_epochs) with a larger num_epochs): the "
        "loss was still going down when the run ended"
    ),
    "data_augmentation": (
        "augment the training data so the model sees more variety than it can memorise: "
        "transforms.Compose([transforms.RandomHorizontalFlip(), transforms.RandomCrop(32, "
        "padding=4)]) for images, or collect more data"
    ),
    "unfreeze_parameters": (
        "make the frozen parameters trainable and give them to the optimiser: "
        "p.requires_grad_(True), then build the optimiser from model.parameters()"
    ),
    "break_symmetry": (
        "initialise weights randomly, not to one constant: units that start equal get equal "
        "gradients and stay copies of each other: nn.init.kaiming_normal_(layer.weight)"
    ),
    # the checkup before training (issue 3)
    "check_targets": (
        "check what the loss is given: targets that belong to their inputs (shuffled together), "
        "class indices for nn.CrossEntropyLoss, the output's own shape for nn.MSELoss/L1Loss "
        "(an (N, 1) output against (N,) targets broadcasts to (N, N): use out.squeeze(-1)), and "
        "a loss made for the task"
    ),
    # distributed runs (issue 7)
    "balance_ranks": (
        "give every rank the same work and resources so none makes the others wait in the "
        "gradient all-reduce: equal shards (DistributedSampler(dataset, drop_last=True)), enough "
        "loader workers on every node (DataLoader(..., num_workers=4, pin_memory=True)), data on "
        "a local disk, no other jobs on the slow rank's GPU or CPU"
    ),
    "sync_replicas": (
        "change weights only through the DDP-wrapped model's optimizer step, the same on every "
        "rank: load checkpoints before DDP(model) (it broadcasts rank 0's weights), no weight "
        "edits under `if rank == 0`; after any unavoidable edit broadcast them: "
        "torch.distributed.broadcast(p.data, src=0)"
    ),
}

#: Fix id -> default text; read-only.
FIXES: Mapping[str, str] = MappingProxyType(_TEXTS)


def fix(fix_id: str, text: str | None = None) -> Fix:
    """Build a ``Fix``: the catalogue's text for ``fix_id``, or ``text`` for this case.

    Raises:
        KeyError: ``fix_id`` is not in the catalogue (a programming error in a rule).
    """
    if fix_id not in FIXES:
        raise KeyError(f"unknown fix id {fix_id!r} (known: {', '.join(sorted(FIXES))})")
    return Fix(fix_id, FIXES[fix_id] if text is None else text)
