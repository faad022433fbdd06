"""Evaluation (``sentimon evaluate``): the model beside the TF-IDF baseline on labelled CSVs.

Reports accuracy, macro-F1, per-class precision/recall/F1, expected calibration error and a
confusion-matrix PNG per task. The baseline is trained on the training split of the same task, so
both are compared on equal data. ``transfer`` measures sentiment on the evaluation-only sets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from models import metrics
from models.baseline import TfidfBaseline
from models.classifier import Classifier
from models.dataset import LabelledTexts, read_csv, tasks_in
from models.labels import LABELS, Task
from models.preprocess import prepare

Baselines = dict[Task, TfidfBaseline]


def fit_baselines(train_sets: dict[Task, LabelledTexts]) -> Baselines:
    return {task: TfidfBaseline(task).fit(data) for task, data in train_sets.items()}


def model_proba(classifier: Classifier, texts: list[str]) -> dict[Task, np.ndarray]:
    """Probabilities for labelled rows; a row empty after preparation is scored as "." to keep alignment."""
    return classifier.proba([prepare(x) or "." for x in texts])


def evaluate_sets(
    classifier: Classifier,
    sets: dict[Task, LabelledTexts],
    baselines: Baselines | None = None,
    plot_dir: Path | None = None,
    plot_prefix: str = "",
) -> dict[Task, dict]:
    """Per task: {'model': report, 'baseline': report?}; confusion PNGs into ``plot_dir``."""
    out: dict[Task, dict] = {}
    for task, data in sets.items():
        probs = model_proba(classifier, data.texts)[task]
        entry = {"model": metrics.report(data.labels, probs, LABELS[task])}
        if baselines and task in baselines:
            entry["baseline"] = metrics.report(data.labels, baselines[task].predict_proba(data.texts), LABELS[task])
        if plot_dir is not None:
            path = Path(plot_dir) / f"confusion_{plot_prefix}{task}.png"
            plot_confusion(entry["model"]["confusion"], LABELS[task], path, f"{classifier.name} v{classifier.version}: {task}")
            entry["confusion_png"] = str(path)
        out[task] = entry
    return out


def load_dir(folder: Path) -> dict[Task, LabelledTexts]:
    """Every task whose validation CSV the folder holds (a sentiment-only folder gives sentiment only)."""
    found = tasks_in(folder)
    if not found:
        raise FileNotFoundError(f"{folder} holds neither sent_valid.csv nor topic_valid.csv (columns text,label)")
    return {task: read_csv(path, task) for task, path in found.items()}


def transfer(
    classifier: Classifier, eval_dir: Path, baselines: Baselines | None, log: Callable[[str], None] = print
) -> dict[str, dict]:
    """Sentiment transfer on each evaluation-only set under ``eval_dir`` (one folder a set)."""
    results: dict[str, dict] = {}
    if not Path(eval_dir).is_dir():
        log(f"no evaluation sets at {eval_dir}: transfer skipped")
        return results
    for folder in sorted(p for p in Path(eval_dir).iterdir() if p.is_dir()):
        path = tasks_in(folder).get("sentiment")
        if path is None:
            continue
        entry = evaluate_sets(classifier, {"sentiment": read_csv(path, "sentiment")}, baselines)["sentiment"]
        results[folder.name] = {who: metrics.summary(rep) for who, rep in entry.items()}
    return results


def plot_confusion(matrix: list[list[int]], labels: tuple[str, ...], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (recall on the diagonal) with counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(matrix, dtype=float)
    norm = m / np.clip(m.sum(axis=1, keepdims=True), 1, None)
    size = 3 + 0.45 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.04, label="share of true class")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate_artifact(
    path: Path,
    train_sets: dict[Task, LabelledTexts],
    valid_sets: dict[Task, LabelledTexts],
    eval_dir: Path | None,
    log: Callable[[str], None] = print,
) -> dict:
    """Full report of a model version, written into it: ``metrics.json``, confusion PNGs, model card."""
    from models import artifact
    from models.card import model_card

    path = Path(path)
    classifier = Classifier.load(path)
    log("fitting the TF-IDF baselines")
    baselines = fit_baselines(train_sets)
    log("evaluating on the validation splits")
    validation = evaluate_sets(classifier, valid_sets, baselines, plot_dir=path)
    log("evaluating the int8 variant")
    int8 = evaluate_sets(Classifier.load(path, int8=True), valid_sets)
    log("measuring transfer on the evaluation-only sets")
    result = {
        "model": {"name": classifier.name, "version": classifier.version},
        "validation": validation,
        "int8": {task: metrics.summary(entry["model"]) for task, entry in int8.items()},
        "baseline_parameters": {task: b.parameters for task, b in baselines.items()},
        "transfer": transfer(classifier, eval_dir, baselines, log) if eval_dir else {},
    }
    artifact.write_json(path / "metrics.json", result)
    (path / "README.md").write_text(model_card(classifier.name, classifier.version, classifier.training, result))
    return result
