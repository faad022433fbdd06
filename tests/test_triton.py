"""The real tritonserver (from nvidia-pytriton, CPU, python backend) serving an exported tiny model."""

from __future__ import annotations

import queue
import shutil

import numpy as np
import pytest

from models.artifact import ModelRef
from models.classifier import Classifier
from models.export import export_python
from streams.triton.server import TritonServer, TritonUnavailable

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tiny_model, tmp_path_factory):
    path = tiny_model[0]
    ref = ModelRef(path, path.parent.name, path.name)
    root = tmp_path_factory.mktemp("served")
    export_python(ref, root / "repo")
    with TritonServer(root / "repo", root / "work") as server:
        yield server, ref, Classifier.load(path)


def _inputs(grpc, ids: np.ndarray, mask: np.ndarray):
    inputs = [grpc.InferInput("input_ids", list(ids.shape), "INT64"),
              grpc.InferInput("attention_mask", list(mask.shape), "INT64")]
    inputs[0].set_data_from_numpy(ids.astype(np.int64))
    inputs[1].set_data_from_numpy(mask.astype(np.int64))
    return inputs


def test_triton_scores_equal_the_in_process_scores(served):
    import tritonclient.grpc as grpc

    server, ref, classifier = served
    client = grpc.InferenceServerClient(server.grpc_url)
    assert client.is_model_ready(ref.name, ref.version)
    texts = [["Tesla shares slump after deliveries miss estimates"], ["Apple beats", "Fed holds rates steady again"],
             ["Oil rallies as OPEC cuts output; airlines fall on fuel costs and weak guidance for the quarter"]]
    results: queue.Queue = queue.Queue()
    for n, group in enumerate(texts):  # in flight together: Triton batches requests of different lengths
        enc = classifier.tokenizer(group, truncation=True, max_length=classifier.max_length, padding=True,
                                   return_tensors="np")
        client.async_infer(ref.name, _inputs(grpc, enc["input_ids"], enc["attention_mask"]),
                           callback=lambda result, error, n=n: results.put((n, result, error)), model_version=ref.version)
    got = dict((n, (r, e)) for n, r, e in (results.get(timeout=60) for _ in texts))
    for n, group in enumerate(texts):
        result, error = got[n]
        assert error is None
        expected = classifier.proba(group)
        for task in ("sentiment", "topic"):
            np.testing.assert_allclose(result.as_numpy(task), expected[task], atol=1e-5)
    stats = client.get_inference_statistics(ref.name, ref.version, as_json=True)
    assert int(stats["model_stats"][0]["inference_count"]) >= 4


def test_a_shape_mismatch_gets_a_clear_error(served):
    import tritonclient.grpc as grpc
    from tritonclient.utils import InferenceServerException

    server, ref, _ = served
    client = grpc.InferenceServerClient(server.grpc_url)
    ids = np.ones((2, 5), np.int64)
    with pytest.raises(InferenceServerException, match=r"must both be \(batch, seq\)"):
        client.infer(ref.name, _inputs(grpc, ids, np.ones((2, 4), np.int64)), model_version=ref.version)
    with pytest.raises(InferenceServerException, match="wrong tokenizer"):
        client.infer(ref.name, _inputs(grpc, ids * 10**9, np.ones((2, 5), np.int64)), model_version=ref.version)


def test_a_broken_model_stops_the_server_at_start_with_its_reason(tiny_model, tmp_path):
    path = tiny_model[0]
    version_dir = export_python(ModelRef(path, path.parent.name, path.name), tmp_path / "repo")
    (version_dir / "artifact" / "model.safetensors").unlink()
    with pytest.raises(TritonUnavailable, match="model.safetensors|No such file"):
        TritonServer(tmp_path / "repo", tmp_path / "work").start(timeout_s=120)
    shutil.rmtree(tmp_path / "repo")
    with pytest.raises(TritonUnavailable, match="sentimon export"):
        TritonServer(tmp_path / "repo", tmp_path / "work").start()
