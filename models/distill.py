"""A teacher's view of the training rows, kept without the teacher.

A fine-tuned teacher is too large to ship (all-mpnet-base-v2: 109M parameters) and takes hours to train
on two cores; what a student needs from it is small: its raw logits on every training row. They are
written once to a folder (``logits.safetensors`` and ``teacher.json``: the teacher's name, metrics, its
own logit adjustments, a checksum and a key of the rows), committed under ``models/teacher/<name>/``,
and any later run distils from them.

The logits are the heads' raw outputs, before the teacher's calibration and prior correction: the
student gets its own prior correction at the end of training, and teaching it already-corrected
probabilities corrects the prior twice (the student then leans to the classes the correction favours).
``probabilities(adjusted=True)`` gives the teacher's corrected view when that is wanted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file

from models import artifact, metrics
from models.batching import inference_batches, pad
from models.dataset import LabelledTexts
from models.labels import LABELS, Task
from models.network import MultiTaskClassifier
from models.preprocess import prepare

LOGITS = "logits.safetensors"
CARD = "teacher.json"
# Teachers' logits committed with the project: ``models/teacher/<name>/``.
TEACHER_DIR = Path(__file__).resolve().parent / "teacher"


def rows_key(texts: list[str]) -> str:
    """Names an ordered list of training rows (their prepared texts)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


@dataclass(frozen=True)
class TeacherLogits:
    """Raw logits (rows x classes, float32) of each head on every training row, in training row order."""

    logits: dict[str, torch.Tensor]
    adjust: dict[str, torch.Tensor]
    rows: str
    meta: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, temperature: float, adjusted: bool = False) -> dict[str, torch.Tensor]:
        """Each head's tempered probabilities; ``adjusted`` adds the teacher's own logit adjustments first."""
        return {
            task: torch.softmax((x + self.adjust[task] if adjusted else x) / temperature, dim=-1)
            for task, x in self.logits.items()
        }


def is_logits_dir(path: Path) -> bool:
    return (path / LOGITS).is_file() and (path / CARD).is_file()


def find(spec: str) -> Path | None:
    """A teacher-logits folder named by ``spec`` (a path, or a name under ``models/teacher``), if any."""
    for candidate in (Path(spec), TEACHER_DIR / spec):
        if is_logits_dir(candidate):
            return candidate
    return None


@torch.inference_mode()
def head_logits(model: MultiTaskClassifier, ids: list[list[int]], pad_id: int, batch_size: int = 64,
                progress: str | None = None) -> dict[str, torch.Tensor]:
    """Every head's logits (float32, rows x classes) on token ids, in row order; leaves ``model`` in eval
    mode. ``progress``: a bar with that label, in rows."""
    from tqdm.auto import tqdm

    model.eval()
    out = {t: torch.zeros(len(ids), len(LABELS[t])) for t in model.tasks}
    bar = tqdm(total=len(ids), desc=progress, unit="row", disable=progress is None)
    for batch in inference_batches([len(x) for x in ids], batch_size):
        input_ids, mask = pad([ids[i] for i in batch], pad_id)
        logits = model(input_ids, mask)
        for t in model.tasks:
            out[t][batch] = logits[t].float()
        bar.update(len(batch))
    bar.close()
    return out


def compute(teacher_dir: Path, texts: list[str], batch_size: int = 64, progress: str | None = "teacher logits",
            validation: dict[Task, LabelledTexts] | None = None,
            transfer: dict[str, LabelledTexts] | None = None) -> TeacherLogits:
    """Run the teacher version in ``teacher_dir`` over ``texts`` (prepared, in row order): raw logits, its
    own adjustments set aside. ``validation``: also score these sets as the teacher predicts (adjustments
    included) and record their figures in the card's ``validation``; ``transfer``: the same for these
    sentiment sets (by name), with the share of clear-toned texts called neutral, in the card's
    ``transfer`` (a student inherits the teacher's lean there)."""
    model, tokenizer, training = artifact.load(teacher_dir)
    adjust = {t: getattr(model, f"logit_adjust_{t}").detach().clone() for t in model.tasks}
    for t in model.tasks:
        model.set_logit_adjustment(t, torch.zeros(len(LABELS[t])))
    max_length = artifact.max_length(training)

    def logits_of(rows: list[str], label: str | None) -> dict[str, torch.Tensor]:
        ids = tokenizer(rows, truncation=True, max_length=max_length)["input_ids"]
        return head_logits(model, ids, tokenizer.pad_token_id, batch_size, label)

    out = logits_of(texts, progress)
    meta = _describe(teacher_dir, training)

    def figures(task: Task, data: LabelledTexts, label: str) -> dict[str, Any]:
        scored = logits_of([prepare(x) for x in data.texts], progress and label)[task]
        rep = metrics.report(data.labels, torch.softmax(scored + adjust[task], dim=-1).numpy(), LABELS[task])
        return {key: round(rep[key], 4) if isinstance(rep[key], float) else rep[key]
                for key in ("n", "accuracy", "macro_f1", "clear_called_neutral") if key in rep}

    for task, data in (validation or {}).items():
        meta["validation"][task] = figures(task, data, f"teacher validation {task}")
    if transfer and "sentiment" in model.tasks:
        meta["transfer"] = {name: figures("sentiment", data, f"teacher transfer {name}") for name, data in transfer.items()}
    return TeacherLogits(out, adjust, rows_key(texts), meta)


def below(teacher: dict[str, dict[str, Any]], reference: dict[str, dict[str, Any]], margin: float = 0.0) -> list[str]:
    """The sets (by name) where the teacher's accuracy is lower than the reference model's by more than
    ``margin``: figures as ``{set: {"accuracy": ...}}``; sets either side lacks are left out."""
    return sorted(name for name, fig in teacher.items()
                  if name in reference and fig.get("accuracy") is not None and reference[name].get("accuracy") is not None
                  and fig["accuracy"] < reference[name]["accuracy"] - margin)


def _describe(teacher_dir: Path, training: dict[str, Any]) -> dict[str, Any]:
    return {
        "teacher": str(teacher_dir.parent.name),
        "version": teacher_dir.name,
        "weights_sha256": artifact.sha256(teacher_dir / artifact.WEIGHTS),
        "backbone": training.get("backbone"),
        "parameters": training.get("parameters"),
        "profile": training.get("config", {}).get("profile"),
        "train_seconds": training.get("train_seconds"),
        "validation": {},
    }


def save(teacher: TeacherLogits, folder: Path) -> Path:
    """Write ``folder/logits.safetensors`` and ``folder/teacher.json`` (with the file's checksum)."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"logits.{t}": x.contiguous() for t, x in teacher.logits.items()}
    tensors |= {f"adjust.{t}": x.contiguous() for t, x in teacher.adjust.items()}
    tmp = folder / (LOGITS + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(folder / LOGITS)
    card = {
        **teacher.meta,
        "rows": teacher.rows,
        "row_count": len(next(iter(teacher.logits.values()))),
        "tasks": list(teacher.logits),
        "logits": "raw head outputs; the teacher's own calibration and prior correction are in adjust.<task>",
        "sha256": artifact.sha256(folder / LOGITS),
    }
    (folder / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return folder


def load(folder: Path, texts: list[str] | None = None) -> TeacherLogits:
    """Read a teacher-logits folder, verifying its checksum and, given ``texts``, that it covers exactly
    those rows in that order."""
    card = json.loads((folder / CARD).read_text())
    actual = artifact.sha256(folder / LOGITS)
    if actual != card.get("sha256"):
        raise ValueError(f"{folder / LOGITS} does not match its checksum in {CARD} (got {actual[:12]}, "
                         f"expected {str(card.get('sha256'))[:12]}): restore it (`git checkout -- {folder}`) "
                         "or write it again with `sentimon teacher`")
    if texts is not None and rows_key(texts) != card.get("rows"):
        raise ValueError(f"the teacher logits in {folder} were computed on other training rows than this run's "
                         f"({card.get('row_count')} rows, this run {len(texts)}): write them again for these rows "
                         "with `sentimon teacher MODEL` (it needs the teacher model)")
    tensors = load_file(str(folder / LOGITS))
    logits = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith("logits.")}
    adjust = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith("adjust.")}
    meta = {k: v for k, v in card.items() if k not in ("rows", "sha256")}
    return TeacherLogits(logits, adjust, card["rows"], meta)


def ensemble(members: list[TeacherLogits]) -> TeacherLogits:
    """Several teachers as one: the mean of their raw logits (and of their adjustments) on the same rows."""
    if not members:
        raise ValueError("an ensemble needs at least one teacher")
    rows = {m.rows for m in members}
    if len(rows) != 1:
        raise ValueError("the teachers of an ensemble must cover the same training rows in the same order")
    tasks = [set(m.logits) for m in members]
    if any(t != tasks[0] for t in tasks):
        raise ValueError("the teachers of an ensemble must have the same heads")
    if len(members) == 1:
        return members[0]

    def mean(part: str) -> dict[str, torch.Tensor]:
        return {t: torch.stack([getattr(m, part)[t] for m in members]).mean(dim=0) for t in members[0].logits}

    meta = {"teacher": "+".join(str(m.meta.get("teacher")) for m in members), "members": [m.meta for m in members]}
    return TeacherLogits(mean("logits"), mean("adjust"), members[0].rows, meta)


def for_rows(spec: str, texts: list[str], cache: Path, log: Callable[[str], None] = print) -> TeacherLogits:
    """The teacher's logits on ``texts``: from a teacher-logits folder when ``spec`` names one, else from
    the model version ``spec`` (a directory), computed once and kept in ``cache``, keyed by the
    teacher's weights and the rows, so a resumed or repeated run never loads the teacher again.
    ``a+b``: the ensemble of teachers ``a`` and ``b`` (the mean of their logits)."""
    if "+" in spec and find(spec) is None:
        parts = [p for p in spec.split("+") if p]
        return ensemble([for_rows(p, texts, cache.parent / f"{cache.name}-{i}", log) for i, p in enumerate(parts)])
    folder = find(spec)
    if folder is not None:
        log(f"teacher logits from {folder}")
        return load(folder, texts)
    teacher_dir = Path(spec)
    if not (teacher_dir / artifact.WEIGHTS).is_file():
        raise FileNotFoundError(f"no teacher model or teacher logits at {spec!r}: name a model version or a "
                                f"folder under {TEACHER_DIR} (`sentimon teacher MODEL` writes one)")
    if is_logits_dir(cache):
        kept = load(cache)
        if kept.rows == rows_key(texts) and kept.meta.get("weights_sha256") == artifact.sha256(
                teacher_dir / artifact.WEIGHTS):
            return kept
    log(f"teacher {teacher_dir}: logits for {len(texts)} rows")
    return load(save(compute(teacher_dir, texts), cache))
