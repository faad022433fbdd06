"""Model commands: train, teacher logits, average, calibrate, release, tune, evaluate, predict, and export a Triton model
repository."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from sentimon.cli.common import ModelOpt, RuntimeOpt, _fail, _log, _runtime, _sets, app, console
from sentimon.settings import get_settings


@app.command()
def train(
    profile: Annotated[
        str, typer.Option(help="'fast' (a test model for CI, <= 5 min), 'full' (about 30 min) or 'release' (the released model's recipe)")
    ] = "fast",
    name: Annotated[Optional[str], typer.Option(help="model name; default sentimon-<profile>")] = None,
    epochs: Annotated[Optional[float], typer.Option(help="override the profile's epochs")] = None,
    lr: Annotated[Optional[float], typer.Option(help="override the encoder learning rate")] = None,
    head_lr: Annotated[Optional[float], typer.Option(help="override the heads' learning rate")] = None,
    init_from: Annotated[
        Optional[str], typer.Option(help="continue training from a model version (name or directory) instead of the backbone")
    ] = None,
    teacher: Annotated[
        Optional[str], typer.Option(help="distil from this teacher (the release-distill profile, or any with --distill): its committed logits "
                                    "(a name under models/teacher) or a model version (name or directory); "
                                    "a+b: the mean of several teachers' logits")
    ] = None,
    distill: Annotated[
        Optional[str], typer.Option(help="override the weight of the teacher's soft labels in the loss (release-distill: "
                                    "1.0); per head: 'sentiment=0.5,topic=1'")
    ] = None,
    distill_other: Annotated[
        Optional[float], typer.Option(help="share of the teacher's weight on the head of the task a row is not "
                                      "labelled for (0-1; default 1)")
    ] = None,
    max_length: Annotated[Optional[int], typer.Option(help="override tokens per text")] = None,
    cross_task_from_epoch: Annotated[
        Optional[int], typer.Option(help="override when cross-task soft labels start (0: from the initial weights)")
    ] = None,
    backbone: Annotated[Optional[str], typer.Option(help="encoder: package name, local path or hub name")] = None,
    augment: Annotated[
        Optional[float], typer.Option(help="share of clear-toned sentiment rows also learned with their tone turned over (0-1)")
    ] = None,
    seed: Annotated[Optional[int], typer.Option(help="override the seed")] = None,
    evaluate: Annotated[bool, typer.Option(help="write metrics.json and the model card after training")] = True,
    if_missing: Annotated[bool, typer.Option("--if-missing", help="do nothing when a version already exists")] = False,
) -> None:
    """Fine-tune the multi-task sentiment + topic classifier into a new model version.

    Resumable: run the same command again after an interruption and it continues from the last checkpoint.
    """
    from models import artifact
    from models.profiles import profile as make_profile
    from models.train import train as run_training

    s = get_settings()
    name = name or f"sentimon-{profile}"
    if if_missing and artifact.versions(s.models_dir / name):
        _log(f"{name} exists ({s.models_dir / name}); nothing to do")
        return
    try:
        init_path = str(artifact.resolve(init_from, s.models_dir).path) if init_from else None
        teacher_path = _teacher_path(teacher, s.models_dir) if teacher else None
        cfg = make_profile(profile, epochs=epochs, lr=lr, head_lr=head_lr, max_length=max_length, seed=seed,
                           backbone=backbone or s.backbone, init_from=init_path, teacher=teacher_path,
                           distill=_weights(distill), distill_other=distill_other, cross_task_from_epoch=cross_task_from_epoch,
                           augment=augment)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    train_sets, valid_sets = _sets("train"), _sets("valid")
    out_dir = artifact.next_version_dir(s.models_dir, name)
    run_dir = s.var_dir / "runs" / name
    run_training(cfg, train_sets, valid_sets, run_dir, out_dir, threads=s.threads, log=_log)
    if cfg.holdout:
        import shutil

        from models.calibrate import calibrate_artifact

        # the version before calibration stays beside the run, for the paired test of what calibration gained
        shutil.copytree(out_dir, run_dir / "uncalibrated", dirs_exist_ok=True)
        calibrate_artifact(out_dir, train_sets, log=_log)
    _written(out_dir, train_sets, valid_sets, evaluate)


def _written(out_dir: Path, train_sets, valid_sets, evaluate: bool) -> None:
    """A new version is written: its metrics and model card (unless ``evaluate`` is off), then where it is."""
    if evaluate:
        from models.evaluate import evaluate_artifact

        evaluate_artifact(out_dir, train_sets, valid_sets, get_settings().eval_dir, log=_log)
        _print_metrics(json.loads((out_dir / "metrics.json").read_text()))
    console.print(f"[green]model written to {out_dir}[/green]")


def _weights(spec: str | None) -> float | dict[str, float] | None:
    """``1.0`` or ``sentiment=0.5,topic=1`` (per task)."""
    if spec is None:
        return None
    try:
        if "=" not in spec:
            return float(spec)
        return {k.strip(): float(v) for k, v in (part.split("=", 1) for part in spec.split(",") if part.strip())}
    except ValueError:
        raise ValueError(f"--distill {spec!r}: give a number or task=weight pairs, e.g. sentiment=0.5,topic=1") from None


def _teacher_path(spec: str, models_dir: Path) -> str:
    """Committed teacher logits when ``spec`` names them (no teacher model needed), else a model version."""
    from models import artifact, distill

    if "+" in spec and distill.find(spec) is None:  # an ensemble of teachers: each part resolved alike
        return "+".join(_teacher_path(part, models_dir) for part in spec.split("+") if part)
    found = distill.find(spec)
    return str(found if found is not None else artifact.resolve(spec, models_dir).path)


@app.command()
def average(
    models: Annotated[list[str], typer.Argument(help="two or more versions of the network (names or directories), "
                                                "trained on the same rows")],
    name: Annotated[str, typer.Option(help="name of the averaged model")] = "sentimon-average",
    evaluate: Annotated[bool, typer.Option(help="write metrics.json and the model card after calibrating")] = True,
) -> None:
    """Average the weights of several fine-tuned versions into a new one (a "model soup"), then calibrate it on
    their held-out rows: e.g. the release and a student continued from another start. Compare it with
    `sentimon evaluate --compare` and release it with `sentimon release`."""
    from models import artifact
    from models.average import average_versions
    from models.calibrate import calibrate_artifact

    s = get_settings()
    try:
        sources = [artifact.resolve(m, s.models_dir).path for m in models]
        out_dir = average_versions(sources, artifact.next_version_dir(s.models_dir, name))
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        _fail(str(exc))
    _log(f"averaged {len(sources)} versions into {out_dir}: {', '.join(str(p) for p in sources)}")
    train_sets = _sets("train")
    calibrate_artifact(out_dir, train_sets, log=_log)
    _written(out_dir, train_sets, _sets("valid") if evaluate else {}, evaluate)


@app.command()
def teacher(
    model: Annotated[str, typer.Argument(help="the fine-tuned teacher: model version (name or directory)")],
    profile: Annotated[str, typer.Option(help="the student's training profile: its rows are the ones labelled")] = "release-distill",
    out: Annotated[Optional[Path], typer.Option(help="folder to write (default models/teacher/<teacher name>)")] = None,
) -> None:
    """Write a teacher's raw logits on every training row of a student profile to models/teacher/<name>/
    (logits.safetensors and teacher.json, with the teacher's validation figures: a few MB, committed), so
    students are distilled from it without the teacher model: `sentimon train --profile release-distill
    --teacher <name>`."""
    from models import artifact, distill
    from models.profiles import PROFILES
    from models.train import row_texts, training_rows

    s = get_settings()
    if profile not in PROFILES:
        _fail(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    try:
        ref = artifact.resolve(model, s.models_dir)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    cfg = PROFILES[profile]
    rows, _ = training_rows(cfg, _sets("train"))
    texts = row_texts(rows, cfg.tasks)
    _log(f"teacher {ref.name}/{ref.version}: logits for {len(texts)} training rows of profile {profile}")
    from models.evaluate import transfer_sets

    taught = distill.compute(ref.path, texts, validation=_sets("valid"), transfer=transfer_sets(s.eval_dir))
    for task, figures in taught.meta["validation"].items():
        _log(f"teacher on the {task} validation split: accuracy {figures['accuracy']:.4f}, macro-F1 {figures['macro_f1']:.4f}")
    _compare_with_release(taught.meta.get("transfer", {}))
    folder = distill.save(taught, out or distill.TEACHER_DIR / ref.name)
    size = (folder / distill.LOGITS).stat().st_size / 1e6
    console.print(f"[green]teacher logits written to {folder} ({size:.1f} MB)[/green]")


def _compare_with_release(transfer: dict[str, dict]) -> None:
    """Print the teacher's transfer figures beside the released model's, and warn where the teacher is lower:
    its students inherit that (measured: a teacher 1.9 points under the release on FiQA posts made
    students 6-8 points under it)."""
    from models import artifact, distill

    try:
        release = artifact.read_json(artifact.resolve("auto", get_settings().models_dir).path / "metrics.json")
    except (FileNotFoundError, ValueError):
        release = {}
    reference = {name: (fig.get("model") or {}) for name, fig in release.get("transfer", {}).items()}
    for name, fig in transfer.items():
        ref_acc = reference.get(name, {}).get("accuracy")
        beside = f" (release {ref_acc:.4f})" if ref_acc is not None else ""
        _log(f"teacher on {name}: accuracy {fig['accuracy']:.4f}{beside}, "
             f"clear-toned called neutral {fig.get('clear_called_neutral', float('nan')):.3f}")
    lower = distill.below(transfer, reference)
    if lower:
        console.print(f"[yellow]the teacher is below the released model on {', '.join(lower)}: students "
                      "distilled from it are likely to be lower there too[/yellow]")


@app.command()
def calibrate(
    model: Annotated[str, typer.Argument(help="model version to calibrate: name or directory")],
) -> None:
    """Choose the topic prior-correction strength and the sentiment neutral offset on the rows the model's
    training held out (never validation data) and write them into the model's weights."""
    from models import artifact
    from models.calibrate import calibrate_artifact

    s = get_settings()
    try:
        ref = artifact.resolve(model, s.models_dir)
        record = calibrate_artifact(ref.path, _sets("train"), log=_log)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    console.print(json.dumps({t: r["chosen"] for t, r in record.items() if t != "held_out_rows"}))


@app.command()
def release(
    model: Annotated[str, typer.Argument(help="trained model version to release: name or directory")],
    name: Annotated[str, typer.Option(help="released model name")] = "sentimon-minilm",
    version: Annotated[Optional[int], typer.Option(help="release version (default: the next one)")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="release even when the paired test does not show it beats the current release")
    ] = False,
) -> None:
    """Package a trained version as the released model under models/release/: float16 weights, tokenizer,
    labels, metrics and model card (evaluated as packaged), sealed with SHA256SUMS.

    When a release of that name exists, both are scored on the same rows and the new one is kept only if it
    beats the current one on the validation splits (no task lower, one better beyond chance; paired bootstrap)
    and is worse beyond chance on no transfer set; the model card shows the two side by side."""
    import shutil

    from models import artifact
    from models.evaluate import evaluate_artifact
    from models.release import package, verdict

    s = get_settings()
    current = artifact.versions(artifact.RELEASED_DIR / name)
    previous = artifact.RELEASED_DIR / name / str(current[-1]) if current else None
    try:
        ref = artifact.resolve(model, s.models_dir)
        dest = package(ref.path, name, version)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        _fail(str(exc))
    try:
        result = evaluate_artifact(dest, _sets("train"), _sets("valid"), s.eval_dir, log=_log, previous=previous)
        if previous is not None:
            sets = result["previous"]["sets"]
            ok, why = verdict(sets["validation"], {k: v for k, v in sets.items() if k != "validation"})
            _log(f"against {name} v{previous.name}: {why}")
            if not ok and not force:
                raise ValueError(f"not released: {why}. Keep the current release, or pass --force to release anyway")
    except BaseException as exc:
        shutil.rmtree(dest, ignore_errors=True)
        if isinstance(exc, ValueError):
            _fail(str(exc))
        raise
    artifact.write_checksums(dest)
    _print_metrics(result)
    if "previous" in result:
        _print_comparison({"model": result["model"], "compare": result["previous"]})
    size = sum(p.stat().st_size for p in dest.iterdir()) / 1e6
    console.print(f"[green]released {ref.name}/{ref.version} as {dest} ({size:.1f} MB, sealed with SHA256SUMS)[/green]")


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
        base = PROFILES["full"].model_copy(update={"epochs": 2.0, "backbone": s.backbone or PROFILES["full"].backbone, "seed": s.seed})
        run_compare(base, _sets("train"), s.var_dir / "tune" / study / "multitask.json", subset=subset,
                    threads=s.threads, log=_log)
        return
    result = run_tune(
        TrainConfig(profile="tune", backbone=s.backbone or PROFILES["full"].backbone, seed=s.seed),
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
    runtime: RuntimeOpt = None,
    compare_runtime: Annotated[
        Optional[str], typer.Option(help="runtime of the --compare model (default: --runtime); with --compare naming "
                                    "the same model, the paired test of one runtime against another")
    ] = None,
    baseline: Annotated[bool, typer.Option(help="train and show the TF-IDF baseline beside the model")] = True,
    transfer: Annotated[bool, typer.Option(help="also the evaluation-only transfer sets (eval_dir); off with --data")] = True,
    compare: Annotated[
        Optional[str], typer.Option(help="paired test (bootstrap, McNemar) against this model: name, directory or 'auto'")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON on stdout")] = False,
    out: Annotated[Optional[Path], typer.Option(help="folder for confusion-matrix PNGs")] = None,
) -> None:
    """Accuracy and macro-F1 with 95% bootstrap intervals, per-class P/R/F1, ECE and confusion matrices on
    the validation splits and the transfer sets, model beside the baseline; --compare adds the paired test."""
    from models import artifact
    from models.classifier import Classifier
    from models.evaluate import compare as paired_tests
    from models.evaluate import evaluate_sets, fit_baselines, load_dir, score_sets
    from models.evaluate import transfer as transfer_report
    from models.evaluate import with_transfer

    s = get_settings()
    try:
        ref = artifact.resolve(model or s.model, s.models_dir)
        other = artifact.resolve(compare, s.models_dir) if compare else None
        sets = load_dir(data) if data else _sets("valid")
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    runtime = _runtime(runtime or s.scoring.runtime)
    classifier = Classifier.load(ref.path, runtime=runtime, cache_dir=s.onnx_cache_dir)
    if classifier.test_model:
        _log(classifier.test_model)
    baselines = None
    if baseline:
        _log("fitting the TF-IDF baseline on the training split")
        train_sets = _sets("train")
        baselines = fit_baselines({t: train_sets[t] for t in sets})
    plot_dir = out or (s.var_dir / "eval" / f"{ref.name}-{classifier.version}")
    prefix = f"{Path(data).name}_" if data else ""
    all_sets = with_transfer(sets, s.eval_dir if transfer and not data else None, _log)
    _log(f"scoring {sum(len(d) for by in all_sets.values() for d in by.values())} texts with {ref.name} v{classifier.version} "
         f"({runtime})")
    probs = {name: score_sets(classifier, by) for name, by in all_sets.items()}
    result = {
        "model": {"name": ref.name, "version": classifier.version, "path": str(ref.path), "runtime": runtime,
                  **classifier.describe()},
        "data": str(data) if data else str(s.data_dir),
        "validation": evaluate_sets(classifier, sets, baselines, plot_dir=plot_dir, plot_prefix=prefix,
                                    probs=probs["validation"]),
    }
    if len(all_sets) > 1:
        result["transfer"] = transfer_report(classifier, all_sets, baselines, probs=probs)
    if other is not None:
        against = Classifier.load(other.path, runtime=_runtime(compare_runtime or runtime), cache_dir=s.onnx_cache_dir)
        _log(f"scoring the same texts with {other.name} v{against.version} for the paired test")
        other_probs = {name: score_sets(against, by) for name, by in all_sets.items()}
        result["compare"] = {
            "model": {"name": other.name, "version": against.version, "path": str(other.path),
                      "runtime": against.runtime.name, **against.describe()},
            "difference": "this model minus the compared one",
            "sets": paired_tests(all_sets, probs, other_probs),
        }
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        _print_metrics(result)
        if "compare" in result:
            _print_comparison(result)
        console.print(f"confusion matrices in {plot_dir}")


def _ci(r: dict, key: str) -> str:
    ci = r.get(f"{key}_ci")
    return f"{r[key]:.4f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _print_comparison(result: dict) -> None:
    other = result["compare"]["model"]
    table = Table(title=f"{result['model']['name']} v{result['model']['version']} minus {other['name']} v{other['version']}")
    for col in ("set", "task", "accuracy diff [95% CI]", "p (not better)", "macro-F1 diff [95% CI]", "McNemar p"):
        table.add_column(col, justify="left" if col in ("set", "task") else "right")
    for name, by_task in result["compare"]["sets"].items():
        for task, r in by_task.items():
            a, f = r["accuracy"], r["macro_f1"]
            table.add_row(name, task, f"{a['difference']:+.4f} [{a['ci'][0]:+.3f}, {a['ci'][1]:+.3f}]",
                          f"{a['p_a_not_better']:.3f}", f"{f['difference']:+.4f} [{f['ci'][0]:+.3f}, {f['ci'][1]:+.3f}]",
                          f"{r['mcnemar']['p_value']:.3g}")
    Console().print(table)


def _print_metrics(result: dict) -> None:
    table = Table(title=f"{result['model']['name']} v{result['model']['version']}")
    for col in ("task", "who", "n", "accuracy", "macro-F1", "ECE"):
        table.add_column(col, justify="right" if col not in ("task", "who") else "left")
    for task, entry in result["validation"].items():
        for who in ("model", "baseline"):
            if who in entry:
                r = entry[who]
                table.add_row(task, who, str(r["n"]), _ci(r, "accuracy"), _ci(r, "macro_f1"), f"{r['ece']:.4f}")
    for set_name, entry in result.get("transfer", {}).items():
        for who, r in entry.items():
            table.add_row(f"transfer:{set_name}", who, str(r["n"]), _ci(r, "accuracy"), _ci(r, "macro_f1"), f"{r['ece']:.4f}")
    Console().print(table)


@app.command()
def predict(
    texts: Annotated[Optional[list[str]], typer.Argument(help="texts to score; none: one per line on stdin")] = None,
    model: ModelOpt = None,
    runtime: RuntimeOpt = None,
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
    classifier = Classifier.load(ref.path, runtime=_runtime(runtime or s.scoring.runtime), cache_dir=s.onnx_cache_dir)
    if classifier.test_model:
        _log(classifier.test_model)
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
    runtime: RuntimeOpt = None,
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
        serving = Serving.of(t, instances=instances, kind=kind, runtime=_runtime(runtime or s.scoring.runtime))
        if backend == "onnx":
            version_dir, diff = export_onnx(ref, out or s.triton_repository, serving)
            _log(f"ONNX checked against torch with onnxruntime: largest difference {diff:.1e}")
        else:
            version_dir = export_python(ref, out or s.triton_repository, serving)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    what = f"python, {serving.runtime}" if backend == "python" else backend
    _log(f"exported {ref.name}/{ref.version} ({what}, {serving.instances} x {serving.kind}) to {version_dir}")
