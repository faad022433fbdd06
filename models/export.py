"""Model artifacts -> a Triton model repository (``sentimon export``).

Layout written (Triton's): ``<out>/<model name>/config.pbtxt`` and ``<out>/<model name>/<version>/``
holding either ``model.py`` (the python backend, from ``triton_repo/python/``) and ``artifact/`` (the
model version's files), or ``model.onnx`` (for the official container's onnxruntime/TensorRT backends,
checked against torch with onnxruntime at export). The model name and version are the artifact's, so every score records the same
``model``/``model_version`` whichever backend produced it. Serving knobs (dynamic batching, instance
kind and count, threads per instance) are written into ``config.pbtxt`` at export, i.e. at deploy time.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Literal

from models import artifact
from models.artifact import ModelRef
from models.runtime import (DEFAULT_RUNTIME, INPUT_NAMES, RUNTIMES, OrtRuntime, RuntimeName, TorchRuntime,
                            largest_difference, onnx_file, write_onnx)

CONTRACT_INPUT_NAMES = INPUT_NAMES

REPO_SOURCES = Path(__file__).resolve().parents[1] / "triton_repo"  # model.py and config templates
ARTIFACT_FILES = ("model.safetensors", "config.json", "labels.json", "training.json", "tokenizer.json",
                  "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


@dataclass(frozen=True)
class Serving:
    """How Triton serves the model: dynamic batching and instances (see ``triton_repo/python/config.pbtxt``)."""

    max_batch_size: int = 256
    preferred_batch_sizes: tuple[int, ...] = (32, 64)
    queue_delay_us: int = 2000
    instances: int = 1
    kind: Literal["KIND_CPU", "KIND_GPU"] = "KIND_CPU"
    threads: int = 1  # threads per instance: 1 on a 2-core machine (2 threads ran 4x slower, docs/platform.md)
    runtime: RuntimeName = DEFAULT_RUNTIME  # what runs the network inside the python backend (models.runtime)

    def __post_init__(self) -> None:
        if not self.preferred_batch_sizes or max(self.preferred_batch_sizes) > self.max_batch_size:
            raise ValueError("preferred batch sizes must be given and at most max_batch_size")
        if self.kind not in ("KIND_CPU", "KIND_GPU"):
            raise ValueError(f"instance kind must be KIND_CPU or KIND_GPU, got {self.kind!r}")
        if self.instances < 1 or self.threads < 1:
            raise ValueError("instances and threads must be at least 1")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {self.runtime!r}: choose one of {', '.join(RUNTIMES)}")

    @classmethod
    def of(cls, triton, **overrides) -> "Serving":
        """From the ``triton`` settings (:class:`sentimon.settings.TritonSettings`), fields overridable
        (``runtime`` comes from the scoring settings: pass it here)."""
        fields = dict(max_batch_size=triton.max_batch_size, preferred_batch_sizes=tuple(triton.preferred_batch_sizes),
                      queue_delay_us=triton.queue_delay_us, instances=triton.instances, kind=triton.kind,
                      threads=triton.threads)
        return cls(**{**fields, **{k: v for k, v in overrides.items() if v is not None}})


Backend = Literal["python", "onnx"]
TENSORRT = ('optimization { execution_accelerators { gpu_execution_accelerator: [ { name: "tensorrt", '
            'parameters { key: "precision_mode" value: "FP16" } } ] } }')


def config_pbtxt(serving: Serving, max_length: int, backend: Backend = "python") -> str:
    template = Template((REPO_SOURCES / backend / "config.pbtxt").read_text())
    return template.substitute(
        max_batch_size=serving.max_batch_size,
        preferred_batch_sizes=", ".join(str(b) for b in serving.preferred_batch_sizes),
        queue_delay_us=serving.queue_delay_us,
        instances=serving.instances,
        kind=serving.kind,
        threads=serving.threads,
        runtime=serving.runtime,
        max_length=max_length,
        accelerator=TENSORRT if serving.kind == "KIND_GPU" else "",
    )


def _version_dir(ref: ModelRef, out: Path, serving: Serving, backend: Backend) -> Path:
    """An empty ``<out>/<name>/<version>`` with the model's ``config.pbtxt`` written beside it."""
    if not ref.version.isdigit():
        raise ValueError(f"Triton needs a numeric version directory, got {ref.path} (version {ref.version!r})")
    # the server's hard limit is the encoder's positions; clients truncate to the training length
    max_length = int(artifact.read_json(ref.path / "config.json").get("max_position_embeddings", 512))
    model_dir = Path(out) / ref.name
    version_dir = model_dir / ref.version
    if version_dir.exists():
        shutil.rmtree(version_dir)
    version_dir.mkdir(parents=True)
    (model_dir / "config.pbtxt").write_text(config_pbtxt(serving, max_length, backend))
    return version_dir


ONNX_DIR = "onnx"  # beside ``artifact/`` in a python-backend version: the runtime's ONNX files, made at export


def export_python(ref: ModelRef, out: Path, serving: Serving = Serving()) -> Path:
    """Write (or replace) the python-backend version of ``ref`` under ``out``; returns its version directory.
    For an ONNX Runtime runtime the ONNX file is derived here, so the server loads it instead of exporting.
    ValueError for an int8 runtime on GPU instances: dynamic int8 quantization is a CPU technique."""
    if serving.kind == "KIND_GPU" and serving.runtime.endswith("int8"):
        raise ValueError(f"runtime {serving.runtime} is for CPU instances: with KIND_GPU set scoring.runtime to "
                         "ort-fp32 (ONNX Runtime's CUDA provider) or torch-fp32")
    version_dir = _version_dir(ref, out, serving, "python")
    (version_dir / "artifact").mkdir()
    shutil.copy2(REPO_SOURCES / "python" / "model.py", version_dir / "model.py")
    for name in ARTIFACT_FILES:
        if (ref.path / name).is_file():
            shutil.copy2(ref.path / name, version_dir / "artifact" / name)
    if serving.runtime.startswith("ort-"):
        onnx_file(version_dir / "artifact", None, serving.runtime == "ort-int8", version_dir / ONNX_DIR)
    return version_dir


CHECK_TEXTS = ("Tesla shares slump after deliveries miss estimates", "Apple beats",
               "Fed holds rates steady; stocks rally into the close as yields fall", "$NVDA to the moon")


def export_onnx(ref: ModelRef, out: Path, serving: Serving = Serving(), tolerance: float = 1e-4) -> tuple[Path, float]:
    """Write the ONNX version of ``ref`` under ``out`` (for the official container's onnxruntime/TensorRT
    backends) and check it against torch with onnxruntime; returns (version directory, largest absolute
    difference of a probability). ValueError when the difference exceeds ``tolerance``."""
    model, tokenizer, training = artifact.load(ref.path)
    version_dir = _version_dir(ref, out, serving, "onnx")
    write_onnx(model, version_dir / "model.onnx")
    enc = tokenizer(list(CHECK_TEXTS), truncation=True, max_length=artifact.max_length(training), padding=True,
                    return_tensors="np")
    expected = TorchRuntime(model).probabilities(enc["input_ids"], enc["attention_mask"])
    got = OrtRuntime.open(version_dir / "model.onnx", model.tasks, "ort-fp32").probabilities(
        enc["input_ids"], enc["attention_mask"])
    diff = largest_difference(got, expected)
    if diff > tolerance:
        raise ValueError(f"the ONNX export differs from torch by {diff:.2e} > {tolerance:.0e}")
    return version_dir, diff
