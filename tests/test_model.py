"""Training, saving, loading and scoring with the real backbone on real data (slow: ~2-3 min)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from models import artifact
from models.classifier import Classifier, Prediction, PredictionError, predict_proba
from models.evaluate import evaluate_artifact
from models.labels import LABELS
from models.preprocess import prepare
from models.profiles import TrainConfig
from models.train import train

pytestmark = pytest.mark.slow


def majority_share(data) -> float:
    return max(data.counts()) / len(data)


def test_tiny_training_run_learns(tiny_model, valid_small):
    path, _ = tiny_model
    clf = Classifier.load(path)
    for task, data in valid_small.items():
        probs = clf.proba([prepare(t) for t in data.texts])[task]
        accuracy = float((probs.argmax(1) == np.asarray(data.labels)).mean())
        margin = 0.03 if task == "sentiment" else 0.2
        assert accuracy > majority_share(data) + margin, (task, accuracy, majority_share(data))


def test_save_and_load_give_identical_predictions(tiny_model, valid_small):
    path, model = tiny_model
    loaded, tokenizer, training = artifact.load(path)
    texts = [prepare(t) for t in valid_small["topic"].texts[:64]]
    model.eval()
    before = predict_proba(model, tokenizer, texts, 48)
    after = predict_proba(loaded, tokenizer, texts, 48)
    for task in LABELS:
        np.testing.assert_allclose(before[task], after[task], atol=1e-6)
    assert training["config"]["profile"] == "tiny"
    assert json.loads((path / "labels.json").read_text())["sentiment"] == ["negative", "neutral", "positive"]
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()


def test_predictions_are_labelled_consistently(tiny_model):
    clf = Classifier.load(tiny_model[0])
    [p] = clf.predict(["Shares of Acme plunge 30% after fraud charges and a profit warning"])
    assert isinstance(p, Prediction)
    assert p.sentiment == max(p.sentiment_probs, key=p.sentiment_probs.get)
    assert p.topic == max(p.topic_probs, key=p.topic_probs.get)
    assert p.score == pytest.approx(p.sentiment_probs["positive"] - p.sentiment_probs["negative"])
    assert sum(p.sentiment_probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert set(p.topic_probs) == set(LABELS["topic"])
    assert (p.model, p.version) == ("sentimon-tiny", "1")


def test_bad_inputs_are_handled_per_item(tiny_model):
    clf = Classifier.load(tiny_model[0], batch_size=4)
    items = ["Stocks rally", "", b"\xff\xfe\xfd", "bin\x00ary", 42, "growth " * 10_000, "Die Aktie steigt stark", "ok"]
    results = clf.predict(items)
    assert len(results) == len(items)
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["Prediction", "PredictionError", "PredictionError", "PredictionError", "PredictionError",
                     "Prediction", "Prediction", "Prediction"]
    assert "empty" in results[1].error and "UTF-8" in results[2].error and "NUL" in results[3].error
    assert "not text" in results[4].error
    assert results[5].truncated and not results[0].truncated
    # a bad item does not change its neighbours' scores
    alone = clf.predict(["Stocks rally"])[0]
    assert alone.sentiment_probs == pytest.approx(results[0].sentiment_probs, abs=1e-5)


def test_torch_int8_runtime_agrees_with_float(tiny_model, valid_small):
    path, _ = tiny_model
    texts = valid_small["sentiment"].texts[:200]
    f = Classifier.load(path).predict(texts)
    q = Classifier.load(path, runtime="torch-int8").predict(texts)
    agree = np.mean([a.sentiment == b.sentiment for a, b in zip(f, q)])
    assert agree > 0.9
    assert q[0].version == "1-int8"
    model = Classifier.load(path, runtime="torch-int8").runtime.model
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in model.modules())


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, train_sets):
    cfg = TrainConfig(profile="resume", max_length=24, batch_size=8, epochs=2.0, train_limit={"sentiment": 24, "topic": 24},
                      checkpoint_every=1, eval_limit=None, warmup_ratio=0.0)
    silent = dict(progress=False, log=lambda _: None)
    whole, _ = train(cfg, train_sets, {}, tmp_path / "a", None, **silent)
    _, partial = train(cfg, train_sets, {}, tmp_path / "b", None, stop_after_steps=7, **silent)
    assert partial == {"stopped_at": 7} and (tmp_path / "b" / "checkpoint.pt").is_file()
    messages: list[str] = []
    resumed, record = train(cfg, train_sets, {}, tmp_path / "b", None, progress=False, log=messages.append)
    assert any("resuming" in m and "step 7/12" in m for m in messages)
    a, b = whole.state_dict(), resumed.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_evaluate_artifact_writes_metrics_card_and_plots(tmp_path, tiny_model, train_sets, valid_small):
    import shutil

    path = tmp_path / "sentimon-tiny" / "1"
    shutil.copytree(tiny_model[0], path)
    eval_dir = tmp_path / "eval"
    (eval_dir / "heads").mkdir(parents=True)
    (eval_dir / "heads" / "sent_valid.csv").write_text("text,label\nProfit collapses,0\nRecord profit,1\nAGM held,2\n")
    small_train = {t: d.sample(600, seed=0) for t, d in train_sets.items()}
    result = evaluate_artifact(path, small_train, valid_small, eval_dir, log=lambda _: None)
    saved = json.loads((path / "metrics.json").read_text())
    assert saved["validation"]["topic"]["model"]["accuracy"] == result["validation"]["topic"]["model"]["accuracy"]
    assert set(saved["validation"]["sentiment"]) >= {"model", "baseline"}
    assert saved["transfer"]["heads"]["model"]["n"] == 3
    assert 0 < saved["int8"]["sentiment"]["accuracy"] <= 1
    assert (path / "confusion_topic.png").stat().st_size > 10_000
    card = (path / "README.md").read_text()
    assert "## Known limits" in card and "MIT" in card and "Transfer" in card


def test_cli_predict_and_evaluate(tiny_model, tmp_path, monkeypatch):
    from sentimon.cli import app

    monkeypatch.setenv("SENTIMON_VAR_DIR", str(tmp_path / "var"))
    runner = CliRunner()
    res = runner.invoke(app, ["predict", "--model", str(tiny_model[0]), "Profits soar", ""])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.strip().splitlines()]
    assert lines[0]["sentiment"] in LABELS["sentiment"] and lines[1]["error"].startswith("empty")

    res = runner.invoke(app, ["predict", "--model", str(tiny_model[0]), "--table", "Profits soar", ""])
    assert res.exit_code == 0 and "sentimon-tiny v1" in res.stdout and "empty text" in res.stdout

    data = tmp_path / "only_sent"
    data.mkdir()
    (data / "sent_valid.csv").write_text("text,label\nLoss widens,0\nRevenue beats,1\n")
    res = runner.invoke(app, ["evaluate", "--model", str(tiny_model[0]), "--data", str(data), "--json", "--no-baseline"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert list(out["validation"]) == ["sentiment"] and out["validation"]["sentiment"]["model"]["n"] == 2

    res = runner.invoke(app, ["evaluate", "--model", str(tiny_model[0]), "--data", str(data), "--json", "--no-baseline",
                              "--compare", str(tiny_model[0])])
    assert res.exit_code == 0, res.output
    paired = json.loads(res.stdout)["compare"]["sets"]["validation"]["sentiment"]
    assert paired["accuracy"]["difference"] == 0 and paired["mcnemar"]["p_value"] == 1.0  # a model against itself

    res = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "make models-full" in res.output


def test_a_test_model_says_so_wherever_it_is_used(tiny_model, tmp_path):
    import shutil

    from models.card import model_card
    from sentimon.cli import app

    fast = tmp_path / "sentimon-fast" / "1"
    shutil.copytree(tiny_model[0], fast)
    training = json.loads((fast / "training.json").read_text())
    training["config"]["profile"] = "fast"
    (fast / "training.json").write_text(json.dumps(training))
    res = CliRunner().invoke(app, ["predict", "--model", str(fast), "Profits soar"])
    assert res.exit_code == 0 and "sentimon-fast is a test model" in res.output
    assert Classifier.load(fast).describe()["test_model"] and not Classifier.load(tiny_model[0]).describe()["test_model"]
    card = model_card("sentimon-fast", "1", training, {"validation": {}})
    assert "is a test model" in card.splitlines()[2]


def test_bench_measures_every_runtime_and_saves_json(tiny_model, train_sets, valid_small, tmp_path):
    from models.artifact import ModelRef
    from models.runtime import RUNTIMES
    from bench.models import ONE_RUN, PER_TENSOR, PER_TENSOR_BATCHED, THREADS, TORCH_SPLIT, run_models_bench

    path = tiny_model[0]
    result = run_models_bench(ModelRef(path, "sentimon-tiny", "1"), train_sets, valid_small, tmp_path, quick=True,
                              rounds=1, log=lambda _: None)
    cells = {(r["runtime"], r["threads"]) for r in result["rows"]}
    assert cells == {(name, t) for name in (*RUNTIMES, PER_TENSOR, PER_TENSOR_BATCHED) for t in THREADS} | {
        (ONE_RUN, 2), (TORCH_SPLIT, 2)}  # the two-thread references of the split batches
    assert all(r["texts_per_s"] > 0 and r["p99_ms"] >= r["p50_ms"] for r in result["rows"])
    # the shares partition each pass (however the machine is loaded), and the network is most of it
    assert all(r["tokenize_share"] + r["pad_share"] + r["forward_share"] == pytest.approx(1.0) and
               min(r["tokenize_share"], r["pad_share"]) >= 0 and r["forward_share"] > 0.5 for r in result["rows"])
    assert result["ort_int8_vs_torch_fp32_ratio"] > 0
    assert result["split_vs_one_run_ratio"] > 0 and result["ort_int8_vs_torch_fp32_split_ratio"] > 0
    # every runtime scored both splits; fp32 runtimes reproduce torch's decisions
    assert set(result["accuracy"]) == {*RUNTIMES, PER_TENSOR}
    ort = result["accuracy"]["ort-fp32"]
    assert ort["sentiment"]["same_decision"] == 1.0 and ort["topic"]["largest_probability_difference"] < 1e-4
    assert result["accuracy"]["torch-fp32"]["within_tolerance"]
    sizes = result["size_mb"]
    assert sizes["model-int8.onnx"] < sizes["model.onnx"] / 2
    saved = json.loads((tmp_path / "models-latest.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(result["rows"]))


def test_tune_records_every_trial_and_resumes(tmp_path, train_sets):
    from models.tune import tune

    base = TrainConfig(profile="tune", batch_size=16)
    study_dir = tmp_path / "study"
    silent = dict(log=lambda _: None)
    tune(base, train_sets, study_dir, trials=1, subset={"sentiment": 40, "topic": 60}, **silent)
    study = tune(base, train_sets, study_dir, trials=1, subset={"sentiment": 40, "topic": 60}, **silent)
    record = json.loads((study_dir / "trials.json").read_text())
    assert [t["number"] for t in record["trials"]] == [0, 1]  # the second call added to the same study
    trial = record["trials"][0]
    assert trial["state"] == "COMPLETE" and {"lr", "epochs", "max_length"} <= set(trial["params"])
    assert 0 <= trial["topic_macro_f1"] <= 1 and trial["seconds"] > 0
    assert json.loads((study_dir / "best.json").read_text())["value"] == study.best_value


def test_training_can_continue_from_a_model_version(tmp_path, tiny_model, train_sets):
    path, tiny = tiny_model
    cfg = TrainConfig(profile="continue", init_from=str(path), max_length=24, batch_size=8, epochs=1.0, lr=1e-12,
                      head_lr=1e-12, train_limit={"sentiment": 8, "topic": 8}, eval_limit=None)
    messages: list[str] = []
    model, record = train(cfg, train_sets, {}, tmp_path / "run", None, progress=False, log=messages.append)
    assert any("starting from the weights of" in m for m in messages)
    before, after = tiny.state_dict(), model.state_dict()
    for key in before:
        if not key.startswith("logit_adjust_"):
            torch.testing.assert_close(before[key], after[key], rtol=0, atol=1e-5)
    assert record["config"]["init_from"] == str(path)


def test_the_local_scorer_runs_the_model_in_processes_of_its_own(tiny_model):
    """The model is loaded and run in child processes (see LocalScorer), each batch split across them:
    the scores are the in-process classifier's, in order, a bad text still gets its error in place, and
    closing the scorer ends the processes."""
    import asyncio
    import os
    import time

    from models.classifier import Classifier
    from streams.scorer import LocalScorer

    texts = ["Shares of $AAPL plunge after the recall", "Fed holds rates steady", "", "Great quarter for Tesla"]

    async def run():
        scorer = await LocalScorer.load(tiny_model[0], processes=2, threads=1)
        out = [await scorer.score(texts), await scorer.score(texts[:1]), scorer.pids, (scorer.name, scorer.version)]
        await scorer.close()
        return out

    first, second, pids, identity = asyncio.run(run())
    assert len(set(pids)) == 2 and os.getpid() not in pids
    classifier = Classifier.load(tiny_model[0], runtime="ort-int8", threads=1)  # the default runtime
    expected = classifier.predict(texts)
    assert identity == (classifier.name, classifier.version) == ("sentimon-tiny", "1-ort-int8")
    assert isinstance(first[2], PredictionError) and first[2].error == expected[2].error
    assert [getattr(p, "sentiment", None) for p in first] == [getattr(p, "sentiment", None) for p in expected]
    # float tolerance, not equality: the processes derive their own ONNX files and sessions
    assert [getattr(p, "score", 0.0) for p in first] == pytest.approx([getattr(p, "score", 0.0) for p in expected], abs=1e-5)
    assert second[0].score == pytest.approx(first[0].score, abs=1e-5)

    def running(pid: int) -> bool:
        try:
            return "zombie" not in open(f"/proc/{pid}/status").read()
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(map(running, pids)):
        time.sleep(0.05)
    assert not any(map(running, pids)), "a model process outlived close()"


def test_a_batch_is_split_by_length_into_parts_of_like_cost_and_joined_back_in_order():
    import numpy as np

    from streams.scorer import joined, split_by_length

    lengths = [50, 3, 40, 7, 90, 12, 8]
    parts = split_by_length(lengths, 2)
    assert sorted(i for part in parts for i in part) == list(range(len(lengths)))
    assert [[lengths[i] for i in part] for part in parts] == [[3, 8, 40, 90], [7, 12, 50]]
    assert split_by_length([5], 2) == [[0]] and split_by_length([], 2) == []
    rows = np.arange(len(lengths), dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    probs = [{"sentiment": rows[part]} for part in parts]  # each part's rows, as its process returns them
    assert np.array_equal(joined(parts, probs, len(lengths))["sentiment"], rows)


def test_the_scored_sets_are_validation_and_each_transfer_set(valid_small, settings, tmp_path):
    from models.evaluate import with_transfer

    said: list[str] = []
    sets = with_transfer(valid_small, settings.eval_dir, said.append)
    assert sets["validation"] is valid_small and len(sets) > 1 and not said
    assert all(set(by) == {"sentiment"} and len(by["sentiment"]) > 0 for name, by in sets.items() if name != "validation")
    assert list(with_transfer(valid_small, tmp_path / "none", said.append)) == ["validation"]
    assert said == [f"no evaluation sets at {tmp_path / 'none'}: transfer skipped"]
    assert list(with_transfer(valid_small, None, said.append)) == ["validation"] and len(said) == 1
