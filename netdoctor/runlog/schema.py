"""Layout of the run log: tables, column meanings, and the packed statistic vectors.

Why blobs: a long run has thousands of sampled steps times hundreds of layers. Storing each sampled
step as one little-endian float32 matrix (sites x statistics) keeps the file small, keeps NaN and
Inf exactly (SQLite turns a NaN REAL into NULL), and lets the reader build numpy arrays with one
``frombuffer`` per row. Loading never executes code: no pickle anywhere.

Bump ``SCHEMA_VERSION`` on any change a reader of the previous version would misread.
"""

from __future__ import annotations

import enum

SCHEMA_VERSION = 2
#: Oldest schema this reader still opens (version 1 lacks ParamStat.UNIT_SPREAD: read as NaN).
OLDEST_READABLE_SCHEMA = 1
#: ``PRAGMA application_id``: "NDOC". Tells a netdoctor log from any other SQLite file.
APPLICATION_ID = 0x4E444F43


class ActStat(enum.IntEnum):
    """Per activation site and sampled step (float32). Site = a module's output or input."""

    CALLS = 0  # forward calls in that step (shared modules / RNN cells run several times)
    NUMEL = 1  # elements seen over those calls
    MEAN = 2
    STD = 3
    MIN = 4
    MAX = 5
    ABSMAX = 6
    ZERO_FRAC = 7  # fraction of exact zeros
    SAT_FRAC = 8  # fraction within 0.5 % of a bounded activation's bounds; NaN if unbounded
    NONFINITE = 9  # count of NaN/Inf elements
    DEAD_FRAC = 10  # fraction of units (features/channels) <= 0 for every sample of the batch


class ParamStat(enum.IntEnum):
    """Per parameter tensor and sampled step (float32)."""

    HAS_GRAD = 0  # 1 when .grad existed at the optimizer step
    GRAD_NORM = 1  # L2 norm of .grad (NaN/Inf when the gradient was non-finite)
    WEIGHT_NORM = 2  # L2 norm of the parameter after the step
    UPDATE_NORM = 3  # L2 norm of the change the optimizer made; NaN when not measured
    # How different the units (rows: output features / channels) of a weight are, relative to
    # its scale: RMS of each entry's deviation from its column mean over RMS of the weight.
    # 0 when every unit is identical (zero or constant init: they all learn the same thing),
    # about 1 for a random init. NaN for tensors with fewer than 2 dimensions or 1 unit.
    UNIT_SPREAD = 4


class StepField(enum.IntEnum):
    """Per optimizer step (float64), one row per step, stored in chunks."""

    STEP = 0
    LOSS = 1  # mean of the losses given to monitor.step() for this step; NaN also when none
    GRAD_NORM = 2  # total L2 norm over all gradients; NaN when non-finite or absent
    LR = 3  # learning rate of param group 0 (all groups are in the chunk's lrs blob)
    TIME = 4  # seconds since the monitor started, at the end of the step
    MICRO_BATCHES = 5  # how many monitor.step() calls were averaged into LOSS
    FLAGS = 6  # StepFlag bits


class StepFlag(enum.IntFlag):
    SAMPLED = 1  # full per-layer statistics were taken on this step
    NO_LOSS = 2  # no loss was given for this step
    LOSS_NONFINITE = 4
    GRAD_NONFINITE = 8
    ACT_NONFINITE = 16  # some activation site summed to NaN/Inf during this step
    NO_GRAD = 32  # no parameter had a gradient


#: Value of a per-step gradient norm for a parameter that had no ``.grad`` at that step.
GRAD_ABSENT = -1.0


class RankField(enum.IntEnum):
    """Per rank of a distributed run and optimizer step (float64), in ``rank_chunks``.

    Every rank writes these, rank 0 included, so that rules can compare ranks at equal steps.
    Times are the rank's host clock; NaN where a value was not measured.
    """

    STEP = 0
    LOSS = 1  # this rank's loss (its own batch): the step table holds rank 0's
    STEP_TIME = 2  # seconds from the previous optimizer step's end to this one's; NaN at step 0
    # Seconds from the previous step's end to the end of this step's (last) training forward:
    # the rank's own work before DDP's gradient all-reduce makes it wait for the others. Total
    # step times are equal on every rank under DDP; this is what differs on a straggler.
    LEAD_TIME = 3
    FLAGS = 4  # StepFlag bits of this rank's step
    # Sum of squares of every parameter after the step (float64), on steps that are multiples
    # of ``flush_every`` (the same steps on every rank); NaN on other steps and when parameters
    # are sharded (FSDP), where replicas are not meant to be equal.
    CHECKSUM = 5

DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL              -- JSON
);
CREATE TABLE IF NOT EXISTS sites (
    idx           INTEGER PRIMARY KEY,   -- column in the samples.act matrix
    name          TEXT NOT NULL,         -- what reports show: 'fc1', 'fc2 (input)'
    module        TEXT NOT NULL,         -- qualified module name
    module_type   TEXT NOT NULL,         -- 'Linear', 'ReLU', ...
    role          TEXT NOT NULL,         -- 'output' | 'input'
    family        TEXT NOT NULL,         -- see capture.sites.Family
    forward_order INTEGER,               -- first call order in the first step; NULL if never called
    shape         TEXT                   -- JSON list, shape at the first call
);
CREATE TABLE IF NOT EXISTS params (
    idx          INTEGER PRIMARY KEY,    -- column in the samples.param matrix
    name         TEXT NOT NULL,          -- 'fc1.weight'
    module       TEXT NOT NULL,          -- 'fc1'
    shape        TEXT NOT NULL,          -- JSON list
    numel        INTEGER NOT NULL,
    trainable    INTEGER NOT NULL,       -- requires_grad
    in_optimizer INTEGER NOT NULL        -- present in one of the optimizer's param groups
);
CREATE TABLE IF NOT EXISTS step_chunks (
    first_step INTEGER PRIMARY KEY,
    n          INTEGER NOT NULL,
    n_groups   INTEGER NOT NULL,
    steps      BLOB NOT NULL,            -- float64 (n, len(StepField))
    lrs        BLOB NOT NULL             -- float64 (n, n_groups)
);
CREATE TABLE IF NOT EXISTS samples (
    step     INTEGER PRIMARY KEY,
    n_sites  INTEGER NOT NULL,
    n_params INTEGER NOT NULL,
    act      BLOB NOT NULL,              -- float32 (n_sites, len(ActStat))
    param    BLOB NOT NULL               -- float32 (n_params, len(ParamStat)); 4 columns in v1
);
CREATE TABLE IF NOT EXISTS epochs (
    epoch   INTEGER PRIMARY KEY,
    step    INTEGER NOT NULL,            -- last optimizer step of the epoch
    metrics TEXT NOT NULL                -- JSON object of floats; NaN written as NaN
);
CREATE TABLE IF NOT EXISTS rank_chunks (  -- distributed runs only; absent from older logs
    rank       INTEGER NOT NULL,
    first_step INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    rows       BLOB NOT NULL,            -- float64 (n, len(RankField))
    PRIMARY KEY (rank, first_step)
);
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    step    INTEGER,
    kind    TEXT NOT NULL,               -- 'nonfinite' | 'warning' | 'rank' | ...
    layer   TEXT,
    message TEXT NOT NULL,
    data    TEXT NOT NULL                -- JSON object
);
"""

#: Tables every log has. ``rank_chunks`` (distributed runs) is optional: an older log lacks it.
TABLES = ("meta", "sites", "params", "step_chunks", "samples", "epochs", "events")
RANK_TABLE = "rank_chunks"


class RunStatus(str, enum.Enum):
    """End state of a run, kept in meta['status']."""

    RUNNING = "running"
    FINISHED = "finished"
    CRASHED = "crashed"
    INTERRUPTED = "interrupted"
