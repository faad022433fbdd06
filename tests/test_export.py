import json

import pytest

from models.artifact import ModelRef
from models.export import Serving, config_pbtxt, export_python


def test_config_carries_the_serving_choices():
    text = config_pbtxt(Serving(max_batch_size=128, preferred_batch_sizes=(16, 32), queue_delay_us=500, instances=3,
                                kind="KIND_GPU", threads=2, runtime="ort-fp32"), max_length=512)
    assert "max_batch_size: 128" in text and "preferred_batch_size: [ 16, 32 ]" in text
    assert "max_queue_delay_microseconds: 500" in text and "count: 3, kind: KIND_GPU" in text
    assert 'string_value: "2"' in text and 'string_value: "512"' in text and "$" not in text.split("\n", 2)[2]
    assert text.count("allow_ragged_batch: true") == 2
    assert 'key: "runtime", value: { string_value: "ort-fp32" }' in text


@pytest.mark.parametrize("bad", [dict(preferred_batch_sizes=(512,)), dict(kind="KIND_TPU"), dict(instances=0),
                                 dict(runtime="tensorrt")])
def test_impossible_serving_choices_are_refused(bad):
    with pytest.raises(ValueError):
        Serving(**bad)


def test_export_writes_a_versioned_model_directory(tmp_path):
    art = tmp_path / "models" / "sentimon-x" / "3"
    art.mkdir(parents=True)
    (art / "config.json").write_text(json.dumps({"max_position_embeddings": 256}))
    (art / "model.safetensors").write_bytes(b"weights")
    (art / "labels.json").write_text("{}")
    version_dir = export_python(ModelRef(art, "sentimon-x", "3"), tmp_path / "repo", Serving(runtime="torch-fp32"))
    assert version_dir == tmp_path / "repo" / "sentimon-x" / "3" and not (version_dir / "onnx").exists()
    assert (version_dir / "model.py").is_file() and (version_dir / "artifact" / "model.safetensors").read_bytes() == b"weights"
    assert 'string_value: "256"' in (tmp_path / "repo" / "sentimon-x" / "config.pbtxt").read_text()
    with pytest.raises(ValueError, match="numeric version"):
        export_python(ModelRef(art, "sentimon-x", "v3"), tmp_path / "repo")
    with pytest.raises(ValueError, match="for CPU instances"):
        export_python(ModelRef(art, "sentimon-x", "3"), tmp_path / "repo", Serving(kind="KIND_GPU", runtime="ort-int8"))


def test_an_onnx_runtime_export_carries_its_onnx_file(tiny_model, tmp_path):
    path = tiny_model[0]
    version_dir = export_python(ModelRef(path, path.parent.name, path.name), tmp_path / "repo")
    assert Serving().runtime == "ort-int8"
    assert {p.name for p in (version_dir / "onnx").glob("*/*.onnx")} == {"model.onnx", "model-int8.onnx"}
    assert 'string_value: "ort-int8"' in (version_dir.parent / "config.pbtxt").read_text()


@pytest.mark.slow
def test_onnx_export_matches_torch(tiny_model, tmp_path):
    from models.export import export_onnx

    path = tiny_model[0]
    version_dir, diff = export_onnx(ModelRef(path, path.parent.name, path.name), tmp_path / "repo",
                                    Serving(kind="KIND_GPU"))
    assert (version_dir / "model.onnx").stat().st_size > 1000 and diff < 1e-5
    config = (version_dir.parent / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in config and "tensorrt" in config and "$" not in config.split("\n", 3)[3]


def test_serving_comes_from_the_triton_settings_with_overrides():
    from sentimon.settings import TritonSettings

    t = TritonSettings(instances=3, preferred_batch_sizes=[8, 16], queue_delay_us=100)
    assert Serving.of(t) == Serving(256, (8, 16), 100, 3, "KIND_CPU", 1)
    assert Serving.of(t, instances=None, kind="KIND_GPU").kind == "KIND_GPU" and Serving.of(t, instances=None).instances == 3
    with pytest.raises(ValueError):
        Serving.of(t, kind="KIND_TPU")
