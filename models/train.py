"""Fine-tuning the multi-task classifier (``sentimon train``).

Each batch mixes sentiment and topic rows of similar length; a row's loss comes from its own task's
head only (class-weighted cross-entropy), so one shared encoder learns both. Deterministic for a
seed; a checkpoint every ``checkpoint_every`` steps makes an interrupted run resumable with the same
result as an uninterrupted one. Curves go to TensorBoard under the run directory.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm
from transformers import AutoTokenizer, get_linear_schedule_with_warmup

from models import artifact, augment, distill, metrics
from models.batching import length_batches, pad
from models.classifier import predict_proba
from models.dataset import LabelledTexts
from models.labels import LABELS, Task
from models.network import MultiTaskClassifier, count_parameters, resolve_backbone
from models.preprocess import prepare
from models.profiles import TrainConfig

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class Encoded:
    """Token ids of the training rows with each row's task index and label."""

    ids: list[list[int]]
    task: list[int]
    label: list[int]


def class_weights(counts: list[int], power: float) -> list[float]:
    """Inverse-frequency weights ``(N / (K * n_c)) ** power``, rescaled so the average row weighs 1."""
    total, k = sum(counts), len(counts)
    raw = [(total / (k * c)) ** power if c else 0.0 for c in counts]
    mean = sum(w * c for w, c in zip(raw, counts)) / total
    return [w / mean for w in raw]


def prior_correction(weights: torch.Tensor) -> torch.Tensor:
    """Logit offsets that undo class-weighted training: ``-log(w_c)``.

    Weighted cross-entropy makes the model estimate p(c|x) scaled by w_c; subtracting log w_c from the
    logits restores probabilities under the true class prior. The signed sentiment score is a risk
    number, so it must follow real frequencies; topic keeps its balanced decisions for rare-topic recall.
    """
    # a class absent from training has weight 0: leave its logits alone rather than boost them
    return torch.where(weights > 0, -torch.log(weights.clamp(min=1e-12)), torch.zeros_like(weights))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def row_texts(sets: dict[Task, LabelledTexts], tasks: tuple[Task, ...]) -> list[str]:
    """Every training row's text as the model sees it, task by task in ``tasks`` order: the row order of
    :func:`encode` and of the teacher's soft labels."""
    return [prepare(x) for task in tasks for x in sets[task].texts]


def encode(tokenizer, sets: dict[Task, LabelledTexts], tasks: tuple[Task, ...], max_length: int) -> Encoded:
    ids = tokenizer(row_texts(sets, tasks), truncation=True, max_length=max_length)["input_ids"]
    task_idx = [t for t, task in enumerate(tasks) for _ in range(len(sets[task]))]
    labels = [y for task in tasks for y in sets[task].labels]
    return Encoded(ids, task_idx, labels)


def with_rows(data: Encoded, tokenizer, extra: LabelledTexts, task_index: int, max_length: int) -> Encoded:
    """``data`` followed by the rows of ``extra`` (one task's, e.g. counterfactual rows), encoded alike."""
    ids = tokenizer([prepare(x) for x in extra.texts], truncation=True, max_length=max_length)["input_ids"] if len(extra) else []
    return Encoded(data.ids + list(ids), data.task + [task_index] * len(extra), data.label + list(extra.labels))


def batch_loss(
    logits: dict[str, torch.Tensor],
    task: torch.Tensor,
    label: torch.Tensor,
    tasks: tuple[Task, ...],
    weights: dict[Task, torch.Tensor],
    label_smoothing: float,
) -> torch.Tensor:
    """Mean over the batch of each row's weighted cross-entropy under its own task's head."""
    total = logits[tasks[0]].new_zeros(())
    for t, name in enumerate(tasks):
        rows = task == t
        if rows.any():
            total = total + F.cross_entropy(
                logits[name][rows], label[rows], weight=weights[name], label_smoothing=label_smoothing, reduction="sum"
            )
    return total / len(label)


def cross_task_loss(
    logits: dict[str, torch.Tensor],
    task: torch.Tensor,
    soft: dict[str, torch.Tensor],
    tasks: tuple[Task, ...],
    temperature: float,
) -> torch.Tensor:
    """Sum over the batch of the distillation loss (KL, scaled by T^2) of each row's *other* tasks' heads
    against soft labels, divided by the batch size. ``soft[name]`` holds the batch rows' teacher probabilities."""
    total = logits[tasks[0]].new_zeros(())
    for t, name in enumerate(tasks):
        rows = task != t
        if rows.any():
            log_student = F.log_softmax(logits[name][rows] / temperature, dim=-1)
            total = total + F.kl_div(log_student, soft[name][rows], reduction="sum") * temperature**2
    return total / len(task)


def distill_loss(logits: dict[str, torch.Tensor], soft: dict[str, torch.Tensor], tasks: tuple[Task, ...],
                 temperature: float, task: torch.Tensor | None = None, other: float = 1.0,
                 weights: dict[str, float] | None = None) -> torch.Tensor:
    """Mean over the batch of the distillation loss (KL, scaled by T^2) of every head of every row against
    the teacher's tempered probabilities ``soft[name]`` (the batch rows'). Rows the teacher never saw
    (NaN probabilities, e.g. counterfactual rows) count in the mean but add no loss. Given each row's
    ``task`` (its index in ``tasks``), the heads of the tasks a row is not labelled for weigh ``other``;
    ``weights`` weighs each head (default 1)."""
    total = logits[tasks[0]].new_zeros(())
    for t, name in enumerate(tasks):
        seen = ~torch.isnan(soft[name][:, 0])
        if seen.any():
            log_student = F.log_softmax(logits[name][seen] / temperature, dim=-1)
            per_row = F.kl_div(log_student, soft[name][seen], reduction="none").sum(dim=-1) * temperature**2
            if task is not None and other != 1.0:
                per_row = per_row * torch.where(task[seen] == t, 1.0, other)
            total = total + per_row.sum() * (1.0 if weights is None else weights.get(name, 0.0))
    return total / len(logits[tasks[0]])


def teacher_labels(config: TrainConfig, sets: dict[Task, LabelledTexts], cache: Path,
                   log: Callable[[str], None] = print) -> dict[str, torch.Tensor]:
    """The teacher's tempered probabilities for every training row, in :func:`encode`'s row order, from its
    raw logits (committed teacher logits, or computed once from the teacher model and kept in ``cache``;
    see :mod:`models.distill`)."""
    taught = distill.for_rows(config.teacher or "", row_texts(sets, config.tasks), cache, log)
    return taught.probabilities(config.soft_temperature, adjusted=config.teacher_adjusted)


def soft_labels(model: MultiTaskClassifier, ids: list[list[int]], pad_id: int, temperature: float,
                batch_size: int = 128) -> dict[str, torch.Tensor]:
    """Every head's tempered probabilities for every training row (the cross-task labels), in row order."""
    was_training = model.training
    logits = distill.head_logits(model, ids, pad_id, batch_size)
    model.train(was_training)
    return {name: torch.softmax(x / temperature, dim=-1) for name, x in logits.items()}


def parameter_groups(model: MultiTaskClassifier, config: TrainConfig) -> list[dict]:
    """AdamW groups: encoder layers with layer-wise decayed learning rates (embeddings lowest), no weight
    decay on biases and LayerNorms, the fresh heads at ``head_lr``."""
    n_layers = int(getattr(model.config, "num_hidden_layers", 0))

    def depth(name: str) -> int:
        # 0 = embeddings, i + 1 = encoder layer i, n_layers + 1 = anything above the layers (pooler)
        if ".embeddings." in f".{name}":
            return 0
        marker = "encoder.layer."
        if marker in name:
            return int(name.split(marker, 1)[1].split(".", 1)[0]) + 1
        return n_layers + 1

    groups: dict[tuple[int, bool], dict] = {}
    heads = []
    for name, param in model.named_parameters():
        if name.startswith("heads."):
            heads.append(param)
            continue
        decays = not (name.endswith("bias") or "LayerNorm" in name)
        key = (depth(name.removeprefix("encoder.")), decays)
        lr = config.lr * config.layer_decay ** (n_layers + 1 - key[0])
        groups.setdefault(key, {"params": [], "lr": lr, "weight_decay": config.weight_decay if decays else 0.0})
        groups[key]["params"].append(param)
    return [*groups.values(), {"params": heads, "weight_decay": 0.0, "lr": config.head_lr}]


@torch.no_grad()
def update_average(average: MultiTaskClassifier, model: MultiTaskClassifier, decay: float, step: int) -> None:
    """One EMA step; the decay ramps up from ~0.1 so early weights do not dominate the average."""
    d = min(decay, (1 + step) / (10 + step))
    for a, p in zip(average.parameters(), model.parameters()):
        a.lerp_(p.detach(), 1 - d)


def holdout_split(config: TrainConfig, sets: dict[Task, LabelledTexts]
                  ) -> tuple[dict[Task, LabelledTexts], dict[Task, LabelledTexts]]:
    """The rows a config trains on and the rows it holds out (empty without ``holdout``), per task."""
    if not config.holdout:
        return dict(sets), {}
    fit, held = {}, {}
    for task, data in sets.items():
        fit[task], held[task] = data.split(config.holdout, seed=config.seed)
    return fit, held


def training_rows(config: TrainConfig, sets: dict[Task, LabelledTexts]
                  ) -> tuple[dict[Task, LabelledTexts], dict[Task, LabelledTexts]]:
    """The rows a config trains on and the rows it holds out, after its per-task row limits: training and
    calibration both call this, so calibration sees exactly the rows training never did."""
    limits = config.train_limit or {}
    return holdout_split(config, {t: sets[t].sample(limits.get(t), seed=config.seed) for t in config.tasks})


def validation_reports(model, tokenizer, sets: dict[Task, LabelledTexts], max_length: int) -> dict[Task, dict]:
    """Report per task on prepared validation texts (used for curves and tuning)."""
    model.eval()
    out = {}
    for task, data in sets.items():
        probs = predict_proba(model, tokenizer, [prepare(x) for x in data.texts], max_length)[task]
        out[task] = metrics.report(data.labels, probs, LABELS[task])
    model.train()
    return out


def train(
    config: TrainConfig,
    train_sets: dict[Task, LabelledTexts],
    valid_sets: dict[Task, LabelledTexts],
    run_dir: Path,
    out_dir: Path | None,
    *,
    threads: int = 2,
    progress: bool = True,
    log: Callable[[str], None] = print,
    stop_after_steps: int | None = None,
) -> tuple[MultiTaskClassifier, dict]:
    """Train per ``config``; resume from ``run_dir/checkpoint.pt`` when its config matches.

    Writes the artifact to ``out_dir`` (unless None) and returns (model, training record).
    ``stop_after_steps`` ends early leaving a checkpoint (used to test resuming).
    """
    torch.set_num_threads(threads)
    seed_everything(config.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    tasks = tuple(config.tasks)
    train_sets, held_out = training_rows(config, train_sets)
    if config.cross_task and not config.ema_decay:
        raise ValueError("cross_task soft labels come from the weight average: set ema_decay too")
    curve_sets = {t: valid_sets[t].sample(config.eval_limit, seed=config.seed) for t in tasks if t in valid_sets}

    backbone = resolve_backbone(config.backbone)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = MultiTaskClassifier.from_backbone(config.backbone, dropout=config.dropout)
    if config.init_from:
        # train on raw logits: a prior correction is set again, from this run's weights, at the end
        artifact.load_weights(model, Path(config.init_from), zero_adjustments=True)
        log(f"starting from the weights of {config.init_from}")
    data = encode(tokenizer, train_sets, tasks, config.max_length)
    extra = augment.counterfactuals(train_sets["sentiment"], config.augment, config.seed) if (
        config.augment and "sentiment" in tasks) else LabelledTexts("sentiment", [], [])
    if len(extra):
        data = with_rows(data, tokenizer, extra, tasks.index("sentiment"), config.max_length)
        log(f"{len(extra)} counterfactual sentiment rows added (augment {config.augment})")
    lengths = [len(x) for x in data.ids]
    weights = {
        t: torch.tensor(class_weights(train_sets[t].counts(), config.weight_power(t)), dtype=torch.float32)
        for t in tasks
    }

    steps_per_epoch = math.ceil(len(lengths) / config.batch_size)
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(parameter_groups(model, config))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    average = copy.deepcopy(model).requires_grad_(False) if config.ema_decay else None
    soft: dict[str, torch.Tensor] | None = None
    taught = teacher_labels(config, train_sets, run_dir / "teacher", log) if config.teacher else None
    if taught is not None and len(extra):  # the teacher never saw the counterfactual rows
        taught = {t: torch.cat([p, torch.full((len(extra), p.shape[1]), float("nan"))]) for t, p in taught.items()}

    step, elapsed = 0, 0.0
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, weights_only=False)
        if ckpt["fingerprint"] == config.fingerprint():
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            torch.set_rng_state(ckpt["torch_rng"])
            if average is not None:
                average.load_state_dict(ckpt["average"])
            soft = ckpt.get("soft")
            step, elapsed = ckpt["step"], ckpt["elapsed"]
            log(f"resuming {run_dir.name} at step {step}/{total_steps}")
        else:
            log(f"ignoring checkpoint in {run_dir}: it belongs to a different configuration")

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=step or None)
    log(
        f"training {config.profile}: {', '.join(f'{t} {len(train_sets[t])} rows' for t in tasks)}, "
        f"{total_steps} steps of {config.batch_size}, {count_parameters(model) / 1e6:.1f}M parameters"
    )
    if config.cross_task and config.cross_task_from_epoch == 0 and soft is None and average is not None:
        soft = soft_labels(average, data.ids, tokenizer.pad_token_id, config.soft_temperature)
        log(f"soft labels for {len(data.ids)} rows from the initial weights")
    model.train()
    bar = tqdm(total=total_steps, initial=step, disable=not progress, desc=f"train {config.profile}", unit="step")
    epoch_batches: tuple[int, list[list[int]]] | None = None
    started = time.perf_counter() - elapsed
    loss_avg = None

    def save_checkpoint() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(
            {
                "fingerprint": config.fingerprint(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "average": average.state_dict() if average is not None else None,
                "soft": soft,
                "step": step,
                "elapsed": time.perf_counter() - started,
            },
            tmp,
        )
        tmp.replace(ckpt_path)

    while step < total_steps:
        epoch, within = divmod(step, steps_per_epoch)
        if epoch_batches is None or epoch_batches[0] != epoch:
            epoch_batches = (epoch, length_batches(lengths, config.batch_size, seed=config.seed + epoch))
        batch = epoch_batches[1][within]
        input_ids, mask = pad([data.ids[i] for i in batch], tokenizer.pad_token_id)
        task = torch.tensor([data.task[i] for i in batch])
        label = torch.tensor([data.label[i] for i in batch])
        logits = model(input_ids, mask)
        loss = batch_loss(logits, task, label, tasks, weights, config.label_smoothing)
        if soft is not None:
            batch_soft = {name: soft[name][batch] for name in tasks}
            loss = loss + config.cross_task * cross_task_loss(logits, task, batch_soft, tasks, config.soft_temperature)
        if taught is not None:
            batch_taught = {name: taught[name][batch] for name in tasks}
            loss = loss + distill_loss(logits, batch_taught, tasks, config.soft_temperature, task,
                                       config.distill_other, {t: config.distill_weight(t) for t in tasks})
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if average is not None:
            update_average(average, model, config.ema_decay, step)
        step += 1
        value = float(loss.detach())
        loss_avg = value if loss_avg is None else 0.98 * loss_avg + 0.02 * value
        bar.update(1)
        bar.set_postfix(loss=f"{loss_avg:.3f}")
        if step % 10 == 0:
            writer.add_scalar("train/loss", value, step)
            writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
        end_of_epoch = step % steps_per_epoch == 0 or step == total_steps
        epochs_done = step // steps_per_epoch
        if end_of_epoch and config.cross_task and step < total_steps and epochs_done >= config.cross_task_from_epoch:
            soft = soft_labels(average, data.ids, tokenizer.pad_token_id, config.soft_temperature)
            log(f"step {step}: soft labels for {len(data.ids)} rows from the weight average")
        if end_of_epoch and curve_sets:
            scored = average if average is not None else model
            for t, rep in validation_reports(scored, tokenizer, curve_sets, config.max_length).items():
                writer.add_scalar(f"valid/{t}_accuracy", rep["accuracy"], step)
                writer.add_scalar(f"valid/{t}_macro_f1", rep["macro_f1"], step)
                log(f"step {step} {t}: accuracy {rep['accuracy']:.4f} macro-F1 {rep['macro_f1']:.4f}")
        if step % config.checkpoint_every == 0 or end_of_epoch:
            save_checkpoint()
        if stop_after_steps is not None and step >= stop_after_steps and step < total_steps:
            bar.close()
            writer.close()
            return model, {"stopped_at": step}
    bar.close()
    writer.close()
    last = model
    if average is not None:
        # the last step's own weights stay beside the run for comparison; the artifact holds the average
        model = average
    for m in {id(model): model, id(last): last}.values():
        m.eval()
        for t in config.prior_correction:
            if t in tasks:
                m.set_logit_adjustment(t, prior_correction(weights[t]))
    seconds = time.perf_counter() - started
    record = {
        "config": config.model_dump(mode="json"),
        "fingerprint": config.fingerprint(),
        "backbone": config.backbone,
        "parameters": count_parameters(model),
        "train_rows": {t: len(train_sets[t]) for t in tasks},
        "held_out_rows": {t: len(held_out[t]) for t in held_out},
        "counterfactual_rows": len(extra),
        "class_weights": {t: [round(float(w), 6) for w in weights[t]] for t in tasks},
        "train_label_counts": {t: train_sets[t].counts() for t in tasks},
        "steps": total_steps,
        "train_seconds": round(seconds, 1),
        "threads": threads,
        "torch": torch.__version__,
    }
    if out_dir is not None:
        artifact.save(model, tokenizer, out_dir, record)
        if last is not model:
            artifact.save(last, tokenizer, run_dir / "last-step", record)
        ckpt_path.unlink(missing_ok=True)
    log(f"trained in {seconds:.0f} s")
    return model, record
