"""The real tritonserver (from nvidia-pytriton, CPU, python backend) serving an exported tiny model."""

from __future__ import annotations

import queue
import shutil

import numpy as np
import pytest

from models.artifact import ModelRef
from models.classifier import Classifier
from models.export import export_python
from sentimon.local.triton import TritonServer, TritonUnavailable

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tiny_model, tmp_path_factory):
    path = tiny_model[0]
    ref = ModelRef(path, path.parent.name, path.name)
    root = tmp_path_factory.mktemp("served")
    export_python(ref, root / "repo")  # the default runtime, ONNX Runtime int8, derived at export
    with TritonServer(root / "repo", root / "work") as server:
        yield server, ref, Classifier.load(path, runtime="ort-int8", threads=1)


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
             ["Oil rallies as OPEC cuts output; airlines fall on fuel costs and weak guidance for the quarter"],
             # one long row and eight short ones in one request: the short rows are padded to the long one
             ["Banks slide as regulators propose tougher capital rules, lenders warn of slower loan growth, "
              "weaker margins and fewer buybacks while analysts cut their estimates for the sector again",
              *("Nvidia up", "AMD down", "Gold flat", "Oil up", "Yen weak", "Bonds rally", "Ford cuts", "GM up")]]
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
    assert int(stats["model_stats"][0]["inference_count"]) >= 13


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


def _scorer_settings(server, model_path, **scoring):
    from sentimon.settings import Settings

    return Settings(model=str(model_path), scoring={"backend": "triton", "retries": 1, "timeout_s": 10, **scoring},
                    triton={"host": server.host, "grpc_port": server.grpc_port})


def test_the_triton_scorer_gives_the_in_process_predictions(served, tiny_model):
    import asyncio

    from streams.scorer import make_scorer

    server, ref, classifier = served
    texts = ["Tesla shares slump", "", "Apple beats estimates on iPhone demand", "x" * 30, "\x00binary"]

    async def run():
        scorer = await make_scorer(_scorer_settings(server, tiny_model[0], batch_size=2, in_flight=2))
        try:
            return scorer.name, scorer.version, await scorer.score(texts), classifier.predict(texts)
        finally:
            await scorer.close()

    name, version, remote, local = asyncio.run(run())
    # the server's runtime is read from its config: the scores say they came from the int8 model
    assert (name, version) == (ref.name, f"{ref.version}-ort-int8") == (local[0].model, local[0].version)
    for r, loc in zip(remote, local):
        assert type(r) is type(loc)
        if hasattr(loc, "sentiment_probs"):
            assert r.sentiment == loc.sentiment and r.topic == loc.topic and abs(r.score - loc.score) < 1e-5
        else:
            assert r.error == loc.error


def test_a_model_the_server_does_not_serve_is_refused_at_start(served, tiny_model, tmp_path):
    import asyncio

    from streams.scorer import make_scorer
    from streams.triton.client import ModelMismatch

    server, ref, _ = served
    other = tmp_path / "models" / ref.name / "7"
    shutil.copytree(tiny_model[0], other)
    with pytest.raises(ModelMismatch, match=rf"does not serve model '{ref.name}' version '7'.*ready: {ref.name}/"):
        asyncio.run(make_scorer(_scorer_settings(server, other)))


def test_the_client_backs_off_while_triton_is_down_and_recovers_by_itself(tiny_model, tmp_path):
    import asyncio

    from streams.errors import ScorerUnavailable
    from streams.scorer import make_scorer

    path = tiny_model[0]
    export_python(ModelRef(path, path.parent.name, path.name), tmp_path / "repo")
    server = TritonServer(tmp_path / "repo", tmp_path / "work").start()

    async def run():
        scorer = await make_scorer(_scorer_settings(server, path))
        try:
            before = await scorer.score(["Apple beats"])
            server.stop()
            with pytest.raises(ScorerUnavailable):
                await scorer.score(["Apple beats"])
            restarted = TritonServer(tmp_path / "repo", tmp_path / "work", grpc_port=server.grpc_port,
                                     http_port=server.http_port, metrics_port=server.metrics_port).start()
            try:
                for _ in range(40):  # the breaker may still be open: the caller retries, as the stage does
                    try:
                        return before, await scorer.score(["Apple beats"])
                    except ScorerUnavailable:
                        await asyncio.sleep(0.5)
                raise AssertionError("no recovery")
            finally:
                restarted.stop()
        finally:
            await scorer.close()
            server.stop()

    before, after = asyncio.run(run())
    assert before[0].sentiment_probs == pytest.approx(after[0].sentiment_probs, abs=1e-6)
