"""Hyperparameter search (``sentimon tune``): Optuna TPE over a training subset.

Trials train on a stratified part of the *training* split and are scored on a held-out part of it,
so the validation split stays untouched for the final report. Every trial (parameters, scores,
seconds) is written to ``trials.json`` as it finishes; the study lives in SQLite, so an interrupted
search resumes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import optuna

from models.dataset import LabelledTexts
from models.labels import Task
from models.profiles import TrainConfig
from models.train import train, validation_reports


def objective_value(reports: dict[Task, dict]) -> float:
    """What the search maximises: mean of sentiment accuracy, topic accuracy and topic macro-F1."""
    parts = [reports["sentiment"]["accuracy"], reports["topic"]["accuracy"], reports["topic"]["macro_f1"]]
    return sum(parts) / len(parts)


def suggest(trial: optuna.Trial, base: TrainConfig) -> TrainConfig:
    params = base.model_dump()
    params.update(
        lr=trial.suggest_float("lr", 3e-5, 3e-4, log=True),
        epochs=float(trial.suggest_int("epochs", 1, 2)),
        max_length=trial.suggest_categorical("max_length", [32, 48, 64]),
        dropout=trial.suggest_float("dropout", 0.0, 0.3),
        class_weight_power=trial.suggest_float("class_weight_power", 0.0, 1.0),
        label_smoothing=trial.suggest_float("label_smoothing", 0.0, 0.1),
        profile=f"tune-{trial.number}",
        eval_limit=None,
    )
    return TrainConfig(**params)


def tune(
    base: TrainConfig,
    train_sets: dict[Task, LabelledTexts],
    study_dir: Path,
    *,
    trials: int,
    subset: dict[Task, int],
    holdout: float = 0.2,
    threads: int = 2,
    log: Callable[[str], None] = print,
) -> optuna.Study:
    """Run ``trials`` more trials; returns the study (best params in ``study.best_params``)."""
    study_dir.mkdir(parents=True, exist_ok=True)
    fit, dev = holdout_split(train_sets, subset, holdout, base.seed)
    study = optuna.create_study(
        study_name=study_dir.name,
        storage=f"sqlite:///{study_dir / 'study.db'}",
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=base.seed),
        load_if_exists=True,
    )
    record_path = study_dir / "trials.json"

    def objective(trial: optuna.Trial) -> float:
        started = time.perf_counter()
        reports = train_and_score(suggest(trial, base), fit, dev, threads)
        value = objective_value(reports)
        for task, rep in reports.items():
            trial.set_user_attr(f"{task}_accuracy", rep["accuracy"])
            trial.set_user_attr(f"{task}_macro_f1", rep["macro_f1"])
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
        log(f"trial {trial.number}: {value:.4f} {trial.params}")
        return value

    def record(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        rows = [
            {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params, **t.user_attrs}
            for t in study.trials
        ]
        record_path.write_text(json.dumps({"subset": subset, "holdout": holdout, "trials": rows}, indent=2) + "\n")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=trials, callbacks=[record])
    (study_dir / "best.json").write_text(json.dumps({"value": study.best_value, "params": study.best_params}, indent=2) + "\n")
    return study


def compare_multitask(
    config: TrainConfig,
    train_sets: dict[Task, LabelledTexts],
    out_path: Path,
    *,
    subset: dict[Task, int],
    holdout: float = 0.2,
    threads: int = 2,
    log: Callable[[str], None] = print,
) -> dict:
    """One shared multi-task model vs one model per task, same config, rows and held-out scoring.

    The evidence for the architecture choice; the result is written to ``out_path`` as JSON.
    """
    fit, dev = holdout_split(train_sets, subset, holdout, config.seed)
    results: dict[str, dict] = {}
    for label, tasks in (("multi-task", ("sentiment", "topic")), ("sentiment only", ("sentiment",)),
                         ("topic only", ("topic",))):
        cfg = config.model_copy(update={"tasks": tasks, "profile": label, "eval_limit": None})
        started = time.perf_counter()
        reports = train_and_score(cfg, fit, {t: dev[t] for t in tasks}, threads)
        results[label] = {
            "seconds": round(time.perf_counter() - started, 1),
            **{f"{t}_{k}": rep[k] for t, rep in reports.items() for k in ("accuracy", "macro_f1")},
        }
        log(f"{label}: {results[label]}")
    out = {"config": config.model_dump(mode="json"), "subset": subset, "results": results}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=2) + "\n")
    return out


def holdout_split(
    train_sets: dict[Task, LabelledTexts], subset: dict[Task, int], holdout: float, seed: int
) -> tuple[dict[Task, LabelledTexts], dict[Task, LabelledTexts]]:
    """Per task: a training subset and a held-out dev part, both drawn from the training split."""
    fit: dict[Task, LabelledTexts] = {}
    dev: dict[Task, LabelledTexts] = {}
    for task, data in train_sets.items():
        rest, held = data.split(holdout, seed=seed)
        fit[task] = rest.sample(subset[task], seed=seed)
        dev[task] = held.sample(max(200, subset[task] // 4), seed=seed)
    return fit, dev


def train_and_score(
    config: TrainConfig, fit: dict[Task, LabelledTexts], dev: dict[Task, LabelledTexts], threads: int
) -> dict[Task, dict]:
    """Train in a throw-away run directory (no artifact) and report on the dev sets."""
    from transformers import AutoTokenizer

    from models.network import resolve_backbone

    run_dir = Path(tempfile.mkdtemp(prefix="sentimon-tune-"))
    try:
        model, _ = train(config, fit, {}, run_dir, None, threads=threads, progress=False, log=lambda _: None)
        tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(config.backbone))
        return validation_reports(model, tokenizer, dev, config.max_length)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
