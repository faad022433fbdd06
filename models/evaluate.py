"""Evaluation (``sentimon evaluate``): the model beside the TF-IDF baseline on labelled CSVs.

Reports accuracy and macro-F1 with 95% bootstrap intervals, per-class precision/recall/F1, expected
calibration error, the share of clearly toned texts called neutral, and a confusion-matrix PNG per
task. The baseline is trained on the training split of the same task, so both are compared on equal
data. ``transfer`` measures sentiment on the evaluation-only sets; ``compare`` gives the paired test
between two models on the same rows.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models import metrics, significance
from models.baseline import TfidfBaseline
from models.classifier import Classifier
from models.dataset import LabelledTexts, read_csv, tasks_in
from models.labels import LABELS, Task
from models.preprocess import prepare

Baselines = dict[Task, TfidfBaseline]
INT8_RUNTIME = "ort-int8"  # the int8 figures of metrics.json and the model card
# Hand-written sentences of the constructions tweet-trained models get wrong (negation, results against
# expectations, contrast, sarcasm) beside plain ones; written for the model card, never trained or tuned on.
CHALLENGE = Path(__file__).resolve().parent / "data" / "challenge.csv"


def fit_baselines(train_sets: dict[Task, LabelledTexts]) -> Baselines:
    return {task: TfidfBaseline(task).fit(data) for task, data in train_sets.items()}


def model_proba(classifier: Classifier, texts: list[str]) -> dict[Task, np.ndarray]:
    """Probabilities for labelled rows; a row empty after preparation is scored as "." to keep alignment."""
    return classifier.proba([prepare(x) or "." for x in texts])


Probabilities = dict[Task, np.ndarray]


def score_sets(classifier: Classifier, sets: dict[Task, LabelledTexts]) -> Probabilities:
    """The model's probabilities for each task's rows (one pass per set; both heads come from it)."""
    return {task: model_proba(classifier, data.texts)[task] for task, data in sets.items()}


def evaluate_sets(
    classifier: Classifier,
    sets: dict[Task, LabelledTexts],
    baselines: Baselines | None = None,
    plot_dir: Path | None = None,
    plot_prefix: str = "",
    probs: Probabilities | None = None,
) -> dict[Task, dict]:
    """Per task: {'model': report with intervals, 'baseline': report?}; confusion PNGs into ``plot_dir``.
    ``probs`` reuses probabilities already computed by :func:`score_sets`."""
    probs = probs if probs is not None else score_sets(classifier, sets)
    out: dict[Task, dict] = {}
    for task, data in sets.items():
        entry = {"model": metrics.report(data.labels, probs[task], LABELS[task], intervals=True)}
        if baselines and task in baselines:
            entry["baseline"] = metrics.report(data.labels, baselines[task].predict_proba(data.texts), LABELS[task],
                                               intervals=True)
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


def transfer_sets(eval_dir: Path) -> dict[str, LabelledTexts]:
    """The sentiment set of each folder under ``eval_dir`` (one folder a set), by folder name."""
    found: dict[str, LabelledTexts] = {}
    if not Path(eval_dir).is_dir():
        return found
    for folder in sorted(p for p in Path(eval_dir).iterdir() if p.is_dir()):
        path = tasks_in(folder).get("sentiment")
        if path is not None:
            found[folder.name] = read_csv(path, "sentiment")
    return found


def with_transfer(valid_sets: dict[Task, LabelledTexts], eval_dir: Path | None,
                  log: Callable[[str], None] = print) -> dict[str, dict[Task, LabelledTexts]]:
    """Every set a model is scored on: ``validation`` (the validation splits) and each evaluation-only
    transfer set under ``eval_dir`` (sentiment only), by folder name; says so when ``eval_dir`` has none."""
    extra = {name: {"sentiment": d} for name, d in transfer_sets(eval_dir).items()} if eval_dir else {}
    if eval_dir and not extra:
        log(f"no evaluation sets at {eval_dir}: transfer skipped")
    return {"validation": valid_sets, **extra}


def transfer(
    classifier: Classifier, sets: dict[str, dict[Task, LabelledTexts]], baselines: Baselines | None,
    probs: dict[str, Probabilities] | None = None,
) -> dict[str, dict]:
    """Sentiment transfer on each evaluation-only set of ``sets`` (:func:`with_transfer`): headline figures
    per set."""
    results: dict[str, dict] = {}
    for name, by_task in sets.items():
        if name == "validation":
            continue
        entry = evaluate_sets(classifier, by_task, baselines, probs=(probs or {}).get(name))["sentiment"]
        results[name] = {who: metrics.summary(rep) for who, rep in entry.items()}
    return results


def compare(
    sets: dict[str, dict[Task, LabelledTexts]], probs_a: dict[str, Probabilities], probs_b: dict[str, Probabilities]
) -> dict[str, dict[Task, dict]]:
    """Paired tests (bootstrap and McNemar, :func:`models.significance.paired`) of model A against B on
    every set and task both were scored on: ``{set: {task: result}}``."""
    out: dict[str, dict[Task, dict]] = {}
    for name, by_task in sets.items():
        out[name] = {
            task: significance.paired(data.labels, probs_a[name][task].argmax(1), probs_b[name][task].argmax(1),
                                      len(LABELS[task]))
            for task, data in by_task.items()
        }
    return out


def challenge(classifier: Classifier, path: Path = CHALLENGE) -> dict:
    """Sentiment on the challenge sentences: accuracy per kind and every item with the model's call."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    predictions = classifier.predict([r["text"] for r in rows])
    items = [
        {"kind": r["kind"], "text": r["text"], "label": r["label"], "predicted": p.sentiment, "score": round(p.score, 3)}
        for r, p in zip(rows, predictions)
    ]
    kinds: dict[str, dict] = {}
    for item in items:
        k = kinds.setdefault(item["kind"], {"n": 0, "correct": 0})
        k["n"] += 1
        k["correct"] += item["label"] == item["predicted"]
    return {"kinds": kinds, "items": items}


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


def against_previous(
    sets: dict[str, dict[Task, LabelledTexts]], probs: dict[str, Probabilities], previous: Classifier
) -> dict:
    """The paired test of a candidate (``probs``) against the release it would replace, on every set both
    are scored on, each model's own 95% interval beside the difference: ``{model, sets: {set: {task: ...}}}``."""
    previous_probs = {name: score_sets(previous, by) for name, by in sets.items()}
    out = compare(sets, probs, previous_probs)
    for name, by_task in sets.items():
        for task, data in by_task.items():
            k = len(LABELS[task])
            out[name][task]["n"] = len(data)
            out[name][task]["a_ci"] = significance.intervals(data.labels, probs[name][task].argmax(1), k)
            out[name][task]["b_ci"] = significance.intervals(data.labels, previous_probs[name][task].argmax(1), k)
    return {"model": {"name": previous.name, "version": previous.version}, "sets": out,
            "difference": "this model minus the previous release"}


def evaluate_artifact(
    path: Path,
    train_sets: dict[Task, LabelledTexts],
    valid_sets: dict[Task, LabelledTexts],
    eval_dir: Path | None,
    log: Callable[[str], None] = print,
    previous: Path | None = None,
) -> dict:
    """Full report of a model version, written into it: ``metrics.json``, confusion PNGs, model card.
    ``previous``: a release this version would replace; the report then holds the paired test against it."""
    from models import artifact
    from models.card import model_card

    path = Path(path)
    classifier = Classifier.load(path)
    log("fitting the TF-IDF baselines")
    baselines = fit_baselines(train_sets)
    sets = with_transfer(valid_sets, eval_dir, log)
    log(f"scoring {sum(len(d) for by in sets.values() for d in by.values())} texts (validation and transfer)")
    probs = {name: score_sets(classifier, by) for name, by in sets.items()}
    log("evaluating on the validation splits")
    validation = evaluate_sets(classifier, valid_sets, baselines, plot_dir=path, probs=probs["validation"])
    for entry in validation.values():  # the PNGs travel with the version: name them relative to it
        entry["confusion_png"] = Path(entry["confusion_png"]).name
    log("evaluating the int8 runtime")
    int8 = evaluate_sets(Classifier.load(path, runtime=INT8_RUNTIME), valid_sets)
    log("measuring transfer on the evaluation-only sets")
    result = {
        "model": {"name": classifier.name, "version": classifier.version},
        "validation": validation,
        "int8": {task: metrics.summary(entry["model"]) for task, entry in int8.items()},
        "int8_runtime": INT8_RUNTIME,
        "baseline_parameters": {task: b.parameters for task, b in baselines.items()},
        "transfer": transfer(classifier, sets, baselines, probs=probs),
        "challenge": challenge(classifier),
    }
    if previous is not None:
        log(f"paired test against the previous release {previous}")
        result["previous"] = against_previous(sets, probs, Classifier.load(previous))
    artifact.write_json(path / "metrics.json", result)
    (path / "README.md").write_text(model_card(classifier.name, classifier.version, classifier.training, result))
    return result
