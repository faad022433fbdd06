"""Inference runtimes (models.runtime): the same contract on torch and ONNX Runtime, fp32 and int8."""

from __future__ import annotations

import numpy as np
import pytest

from models import artifact
from models.batching import pad_arrays
from models.classifier import Classifier, token_ids
from models.runtime import RUNTIMES, build, by_length, check_export, in_groups, onnx_file, row_by_row, version_suffix

TEXTS = ["Tesla shares slump after deliveries miss estimates", "Apple beats", "$NVDA to the moon 🚀🚀",
         "Fed holds rates steady; stocks rally into the close as yields fall and the dollar weakens against the yen",
         "ＡＰＰＬＥ\u202eＳＴＯＣＫ", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"]


@pytest.fixture(scope="module")
def loaded(tiny_model):
    path = tiny_model[0]
    model, tokenizer, training = artifact.load(path)
    ids, mask = pad_arrays(token_ids(tokenizer, TEXTS, 48), tokenizer.pad_token_id)
    return path, model, ids, mask


@pytest.mark.parametrize("name", RUNTIMES)
def test_every_runtime_gives_probabilities_per_task(loaded, tmp_path, name):
    path, model, ids, mask = loaded
    out = build(path, model, name, threads=1, cache_dir=tmp_path).probabilities(ids, mask)
    assert set(out) == {"sentiment", "topic"}
    assert out["sentiment"].shape == (len(TEXTS), 3) and out["topic"].shape == (len(TEXTS), 20)
    for probs in out.values():
        assert probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_onnx_fp32_reproduces_torch_and_int8_stays_close(loaded, tmp_path):
    path, model, ids, mask = loaded
    torch_fp32 = build(path, model, "torch-fp32").probabilities(ids, mask)
    ort_fp32 = build(path, model, "ort-fp32", cache_dir=tmp_path).probabilities(ids, mask)
    ort_int8 = build(path, model, "ort-int8", cache_dir=tmp_path).probabilities(ids, mask)
    for task in torch_fp32:
        np.testing.assert_allclose(ort_fp32[task], torch_fp32[task], atol=1e-4)
        assert np.abs(ort_int8[task] - torch_fp32[task]).max() < 0.2
        assert not np.array_equal(ort_int8[task], ort_fp32[task])  # it is quantized


@pytest.mark.parametrize("name", ["ort-int8", "torch-int8"])
def test_an_int8_score_does_not_depend_on_its_batch(loaded, tmp_path, name):
    """A text scored in a batch (padded, beside a run of symbols) gets the scores it gets alone: per-token
    activation scales (ort-int8) up to float rounding, each row run alone (torch-int8) exactly."""
    path, model, ids, mask = loaded
    runtime = build(path, model, name, threads=1, cache_dir=tmp_path)
    together = runtime.probabilities(ids, mask)
    for i in range(len(TEXTS)):
        width = int(mask[i].sum())
        alone = runtime.probabilities(ids[i:i + 1, :width], mask[i:i + 1, :width])
        for task in together:
            np.testing.assert_allclose(alone[task][0], together[task][i], rtol=0,
                                       atol=0.0 if name == "torch-int8" else 1e-5)


def recording_forward():
    """A forward pass that records the token ids it was given and sums each row: (record, forward)."""
    seen = []

    def forward(ids, mask):
        seen.append(ids.tolist())
        return {"t": ids.sum(1, keepdims=True).astype(np.float32)}

    return seen, forward


@pytest.mark.parametrize("name", ["ort-int8", "ort-fp32"])
def test_a_batch_split_across_threads_scores_as_one_run(loaded, tmp_path, name):
    """Two threads run a batch as two groups of rows, each on one thread: the same scores as the whole batch
    in one run (up to float rounding), in the rows' order."""
    from models.runtime import OrtRuntime, SessionSettings, onnx_file

    path, model, ids, mask = loaded
    file = onnx_file(path, model, name == "ort-int8", tmp_path)
    whole = OrtRuntime.open(file, model.tasks, name, SessionSettings(threads=1)).probabilities(ids, mask)
    split = OrtRuntime.open(file, model.tasks, name, SessionSettings(threads=2))
    assert split.row_workers == 2
    calls = []
    forward = split._forward
    split._forward = lambda i, m: calls.append(len(i)) or forward(i, m)
    out = split.probabilities(ids, mask)
    assert sorted(calls) == [3, 3]
    for task in whole:
        np.testing.assert_allclose(out[task], whole[task], rtol=0, atol=1e-5)
    one_row = split.probabilities(ids[:1], mask[:1])  # a single row is not split
    np.testing.assert_allclose(one_row["topic"][0], whole["topic"][0], rtol=0, atol=1e-5)


def test_groups_are_cut_after_their_last_attended_position_and_put_back_in_order():
    seen, forward = recording_forward()
    ids = np.array([[5, 6, 0, 0], [7, 7, 7, 0], [9, 9, 9, 9], [3, 0, 0, 0]])
    mask = (ids != 0).astype(np.int64)
    groups = by_length(mask, 2)
    assert [g.tolist() for g in groups] == [[3, 0], [1, 2]]  # the two shortest, then the two longest
    out = in_groups(forward, ids, mask, groups)
    assert seen == [[[3, 0], [5, 6]], [[7, 7, 7, 0], [9, 9, 9, 9]]]
    assert out["t"].ravel().tolist() == [11, 21, 36, 3]
    assert [g.tolist() for g in by_length(mask, 8)] == [[3], [0], [1], [2]]  # never an empty group


def test_per_tensor_activations_would_tie_a_score_to_its_batch(loaded, tmp_path):
    """Why ort-int8 quantizes per token: ONNX Runtime's per-tensor file, batched, moves a text's scores
    with its neighbours by far more than the tolerance above; row by row it does not."""
    from models import quantize
    from models.runtime import OrtRuntime

    path, model, ids, mask = loaded
    per_tensor = quantize.per_tensor(onnx_file(path, model, False, tmp_path), tmp_path / "per-tensor.onnx")
    moved = {}
    for row_wise in (False, True):
        runtime = OrtRuntime.open(per_tensor, model.tasks, "ort-int8", row_wise=row_wise)
        together = runtime.probabilities(ids, mask)
        moved[row_wise] = max(
            float(np.abs(runtime.probabilities(ids[i:i + 1, :int(mask[i].sum())], mask[i:i + 1, :int(mask[i].sum())])
                         [task][0] - together[task][i]).max())
            for i in range(len(TEXTS)) for task in together)
    assert moved[False] > 1e-3 and moved[True] == 0.0


def test_the_per_token_file_quantizes_every_weight_matrix(loaded, tmp_path):
    import onnx

    path, model, _, _ = loaded
    fp32 = onnx.load(str(onnx_file(path, model, False, tmp_path)))
    int8 = onnx.load(str(onnx_file(path, model, True, tmp_path)))
    weights = {i.name for i in fp32.graph.initializer}
    dense = [n for n in fp32.graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    assert dense
    left = {i.name for i in int8.graph.initializer}
    assert not [n for n in int8.graph.node if n.op_type == "MatMul" and n.input[1] in left]
    assert sum(n.op_type == "MatMulIntegerToFloat" for n in int8.graph.node) == len(dense)
    int8_weights = {i.name: i for i in int8.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    products = [n.input[1] for n in int8.graph.node if n.op_type == "MatMulIntegerToFloat"]
    assert all(np.abs(onnx.numpy_helper.to_array(int8_weights[w])).max() <= 63 for w in products)
    # the vocabulary's embedding table is looked up in int8 too; the small tables stay float
    tables = [n.input[0] for n in int8.graph.node if n.op_type == "Gather" and n.input[0] in int8_weights]
    assert len(tables) == 1 and set(int8_weights) == {*products, *tables}
    assert "model.encoder.embeddings.word_embeddings.weight" not in {i.name for i in int8.graph.initializer}


def test_row_by_row_cuts_each_row_after_its_last_attended_position():
    seen, forward = recording_forward()
    ids = np.array([[5, 6, 0, 0], [7, 0, 8, 0], [9, 9, 9, 9], [3, 0, 0, 0]])
    mask = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    out = row_by_row(forward, ids, mask)
    assert seen == [[[5, 6]], [[7, 0, 8]], [[9, 9, 9, 9]], [[3]]]
    assert out["t"].ravel().tolist() == [11, 15, 36, 3]


def test_onnx_files_are_derived_once_and_keyed_by_the_weights(loaded, tmp_path):
    import shutil

    path, model, _, _ = loaded
    first = onnx_file(path, model, True, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert onnx_file(path, model, True, tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert first.name == "model-int8.onnx" and (first.parent / "model.onnx").is_file()
    # other weights, another key: a retrained version never reuses a stale export
    other = tmp_path / "sentimon-tiny" / "1"
    shutil.copytree(path, other)
    weights = other / artifact.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x00\x01")
    assert onnx_file(other, model, False, tmp_path).parent != first.parent


def test_an_export_that_differs_from_torch_is_refused(loaded, tmp_path):
    import torch

    path, model, _, _ = loaded
    exported = onnx_file(path, model, False, tmp_path)
    assert check_export(model, exported) < 1e-4
    changed, _, _ = artifact.load(path)
    with torch.no_grad():
        changed.heads["sentiment"].bias += torch.tensor([3.0, 0.0, -3.0])
    with pytest.raises(ValueError, match="differs from torch"):
        check_export(changed, exported)


def test_classifier_records_the_runtime_in_the_version(tiny_model, tmp_path):
    path = tiny_model[0]
    assert {name: version_suffix(name) for name in RUNTIMES} == {
        "torch-fp32": "", "torch-int8": "-int8", "ort-fp32": "", "ort-int8": "-ort-int8"}
    clf = Classifier.load(path, runtime="ort-int8", threads=1, cache_dir=tmp_path)
    results = clf.predict(["Stocks rally", "", "Banks slide"])
    assert results[0].version == "1-ort-int8" and results[1].error  # a bad item still gets its reason
    assert clf.runtime.name == "ort-int8"
    with pytest.raises(ValueError, match="unknown runtime"):
        Classifier.load(path, runtime="tensorrt")


def test_token_ids_match_the_tokenizer_call(tiny_model):
    tokenizer = artifact.load_tokenizer(tiny_model[0])
    texts = [*TEXTS, "x" * 3000, "", "naïve café 東京 \u0000"]
    for max_length in (8, 48):
        assert token_ids(tokenizer, texts, max_length) == tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    assert token_ids(tokenizer, [], 48) == []


def test_onnx_runtime_loads_the_network_only_to_write_its_files(tiny_model, tmp_path, monkeypatch):
    path = tiny_model[0]
    first = Classifier.load(path, runtime="ort-int8", threads=1, cache_dir=tmp_path)
    monkeypatch.setattr(artifact, "load", lambda *_: (_ for _ in ()).throw(AssertionError("network loaded")))
    again = Classifier.load(path, runtime="ort-int8", threads=1, cache_dir=tmp_path)  # the files exist now
    assert again.predict(["Banks slide"])[0].score == first.predict(["Banks slide"])[0].score
    with pytest.raises(AssertionError, match="network loaded"):
        Classifier.load(path, runtime="ort-fp32", threads=1, cache_dir=tmp_path / "elsewhere")
