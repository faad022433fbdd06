"""Model commands: train, tune, evaluate, predict, and export a Triton model repository."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from sentimon.cli.common import ModelOpt, _fail, _log, _sets, app, console
from sentimon.settings import get_settings


@app.command()
def train(
    profile: Annotated[str, typer.Option(help="'fast' (CI/demo, <= 5 min) or 'full'")] = "fast",
    name: Annotated[Optional[str], typer.Option(help="model name; default sentimon-<profile>")] = None,
    epochs: Annotated[Optional[float], typer.Option(help="override the profile's epochs")] = None,
    lr: Annotated[Optional[float], typer.Option(help="override the encoder learning rate")] = None,
    head_lr: Annotated[Optional[float], typer.Option(help="override the heads' learning rate")] = None,
    init_from: Annotated[
        Optional[str], typer.Option(help="continue training from a model version (name or directory) instead of the backbone")
    ] = None,
    max_length: Annotated[Optional[int], typer.Option(help="override tokens per text")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="encoder: package name, local path or hub name")] = None,
    seed: Annotated[Optional[int], typer.Option(help="override the seed")] = None,
    evaluate: Annotated[bool, typer.Option(help="write metrics.json and the model card after training")] = True,
    if_missing: Annotated[bool, typer.Option("--if-missing", help="do nothing when a version already exists")] = False,
) -> None:
    """Fine-tune the multi-task sentiment + topic classifier into a new model version.

    Resumable: run the same command again after an interruption and it continues from the last checkpoint.
    """
    from models import artifact
    from models.evaluate import evaluate_artifact
    from models.profiles import profile as make_profile
    from models.train import train as run_training

    s = get_settings()
    name = name or f"sentimon-{profile}"
    if if_missing and artifact.versions(s.models_dir / name):
        _log(f"{name} exists ({s.models_dir / name}); nothing to do")
        return
    try:
        init_path = str(artifact.resolve(init_from, s.models_dir).path) if init_from else None
        cfg = make_profile(profile, epochs=epochs, lr=lr, head_lr=head_lr, max_length=max_length, seed=seed,
                           backbone=backbone or s.backbone, init_from=init_path)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    train_sets, valid_sets = _sets("train"), _sets("valid")
    out_dir = artifact.next_version_dir(s.models_dir, name)
    run_training(cfg, train_sets, valid_sets, s.var_dir / "runs" / name, out_dir, threads=s.threads, log=_log)
    if evaluate:
        evaluate_artifact(out_dir, train_sets, valid_sets, s.eval_dir, log=_log)
        _print_metrics(json.loads((out_dir / "metrics.json").read_text()))
    console.print(f"[green]model written to {out_dir}[/green]")


@app.command()
def tune(
    trials: Annotated[int, typer.Option(help="trials to run (adds to an existing study)")] = 10,
    study: Annotated[str, typer.Option(help="study name under var/tune/")] = "minilm-mt",
    subset_sentiment: Annotated[int, typer.Option(help="sentiment training rows per trial")] = 1000,
    subset_topic: Annotated[int, typer.Option(help="topic training rows per trial")] = 1500,
    compare_multitask: Annotated[
        bool, typer.Option(help="instead: train one multi-task model and one model per task with the full profile's settings")
    ] = False,
) -> None:
    """Hyperparameter search (Optuna) on a subset of the training split.

    Searches learning rate, epochs, sequence length, dropout, class weighting and label smoothing;
    every trial is recorded in var/tune/STUDY/trials.json and the study resumes when run again.
    """
    from models.profiles import PROFILES, TrainConfig
    from models.tune import compare_multitask as run_compare
    from models.tune import tune as run_tune

    s = get_settings()
    subset = {"sentiment": subset_sentiment, "topic": subset_topic}
    if compare_multitask:
        base = PROFILES["full"].model_copy(update={"epochs": 2.0, "backbone": s.backbone, "seed": s.seed})
        run_compare(base, _sets("train"), s.var_dir / "tune" / study / "multitask.json", subset=subset,
                    threads=s.threads, log=_log)
        return
    result = run_tune(
        TrainConfig(profile="tune", backbone=s.backbone, seed=s.seed),
        _sets("train"),
        s.var_dir / "tune" / study,
        trials=trials,
        subset=subset,
        threads=s.threads,
        log=_log,
    )
    console.print(f"best {result.best_value:.4f}: {result.best_params}")


@app.command()
def evaluate(
    model: ModelOpt = None,
    data: Annotated[Optional[Path], typer.Option(help="folder with sent_valid.csv and/or topic_valid.csv")] = None,
    int8: Annotated[bool, typer.Option(help="evaluate the int8-quantized variant")] = False,
    baseline: Annotated[bool, typer.Option(help="train and show the TF-IDF baseline beside the model")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON on stdout")] = False,
    out: Annotated[Optional[Path], typer.Option(help="folder for confusion-matrix PNGs")] = None,
) -> None:
    """Accuracy, macro-F1, per-class P/R/F1, ECE and confusion matrices, model beside the baseline."""
    from models import artifact
    from models.classifier import Classifier
    from models.evaluate import evaluate_sets, fit_baselines, load_dir

    s = get_settings()
    try:
        ref = artifact.resolve(model or s.model, s.models_dir)
        sets = load_dir(data) if data else _sets("valid")
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    classifier = Classifier.load(ref.path, int8=int8)
    baselines = None
    if baseline:
        _log("fitting the TF-IDF baseline on the training split")
        train_sets = _sets("train")
        baselines = fit_baselines({t: train_sets[t] for t in sets})
    plot_dir = out or (s.var_dir / "eval" / f"{ref.name}-{classifier.version}")
    prefix = f"{Path(data).name}_" if data else ""
    result = {
        "model": {"name": ref.name, "version": classifier.version, "path": str(ref.path)},
        "data": str(data) if data else str(s.data_dir),
        "validation": evaluate_sets(classifier, sets, baselines, plot_dir=plot_dir, plot_prefix=prefix),
    }
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        _print_metrics(result)
        console.print(f"confusion matrices in {plot_dir}")


def _print_metrics(result: dict) -> None:
    table = Table(title=f"{result['model']['name']} v{result['model']['version']}")
    for col in ("task", "who", "n", "accuracy", "macro-F1", "ECE"):
        table.add_column(col, justify="right" if col not in ("task", "who") else "left")
    for task, entry in result["validation"].items():
        for who in ("model", "baseline"):
            if who in entry:
                r = entry[who]
                table.add_row(task, who, str(r["n"]), f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}", f"{r['ece']:.4f}")
    for set_name, entry in result.get("transfer", {}).items():
        for who, r in entry.items():
            table.add_row(f"transfer:{set_name}", who, str(r["n"]), f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}", f"{r['ece']:.4f}")
    Console().print(table)


@app.command()
def predict(
    texts: Annotated[Optional[list[str]], typer.Argument(help="texts to score; none: one per line on stdin")] = None,
    model: ModelOpt = None,
    int8: Annotated[bool, typer.Option(help="use the int8-quantized variant")] = False,
    table: Annotated[bool, typer.Option(help="print a table instead of JSON lines")] = False,
) -> None:
    """Score texts and print one JSON object per line (sentiment, signed score, topic, model version)."""
    from dataclasses import asdict

    from models import artifact
    from models.classifier import Classifier, PredictionError

    s = get_settings()
    try:
        ref = artifact.resolve(model or s.model, s.models_dir)
    except FileNotFoundError as exc:
        _fail(str(exc))
    items = texts if texts else [line.rstrip("\n") for line in sys.stdin]
    classifier = Classifier.load(ref.path, int8=int8)
    results = classifier.predict(items)
    if not table:
        for result in results:
            print(json.dumps(asdict(result)))
        return
    out = Table(title=f"{classifier.name} v{classifier.version}")
    for col in ("text", "sentiment", "score", "topic"):
        out.add_column(col, justify="right" if col == "score" else "left", overflow="fold")
    for item, r in zip(items, results):
        text = str(item)[:70]
        if isinstance(r, PredictionError):
            out.add_row(text, f"[red]{r.error}[/red]", "", "")
        else:
            colour = {"positive": "green", "negative": "red"}.get(r.sentiment, "white")
            out.add_row(text, f"[{colour}]{r.sentiment}[/{colour}]", f"{r.score:+.2f}",
                        f"{r.topic} ({r.topic_probs[r.topic]:.0%})")
    Console().print(out)


@app.command()
def export(
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="model name, version directory or 'auto'")] = None,
    out: Annotated[Optional[Path], typer.Option(help="model repository to write; default: triton.repository")] = None,
    instances: Annotated[Optional[int], typer.Option(help="model instances (default: triton.instances)")] = None,
    kind: Annotated[Optional[str], typer.Option(help="KIND_CPU or KIND_GPU (default: triton.kind)")] = None,
    backend: Annotated[str, typer.Option(help="'python' (served here) or 'onnx' (official container, GPUs)")] = "python",
) -> None:
    """Write a Triton model repository for a trained model version (python backend, or ONNX checked
    against torch)."""
    from models import artifact
    from models.export import Serving, export_onnx, export_python

    if backend not in ("python", "onnx"):
        _fail(f"unknown backend {backend!r}: use python or onnx")
    s = get_settings()
    t = s.triton
    try:
        ref = artifact.resolve(model or s.model, s.models_dir)
        serving = Serving.of(t, instances=instances, kind=kind)
        if backend == "onnx":
            version_dir, diff = export_onnx(ref, out or s.triton_repository, serving)
            _log(f"ONNX checked against torch with onnxruntime: largest difference {diff:.1e}")
        else:
            version_dir = export_python(ref, out or s.triton_repository, serving)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    _log(f"exported {ref.name}/{ref.version} ({backend}, {serving.instances} x {serving.kind}) to {version_dir}")
