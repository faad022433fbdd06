"""Inference runtimes: what runs the network's forward pass behind the model contract.

Every runtime takes the contract's inputs, INT64 ``input_ids`` and ``attention_mask`` of shape
(batch, seq), and returns each head's softmax probabilities, FP32 (batch, n_labels). Four exist:

- ``torch-fp32``: the trained network as it is (training, and the fallback);
- ``torch-int8``: torch's dynamic int8 quantization of every Linear layer;
- ``ort-fp32``: ONNX Runtime on the network exported to ONNX (same probabilities within 1e-4);
- ``ort-int8``: ONNX Runtime on that export with int8 matrix products, activations quantized per token
  (:func:`models.quantize.per_token`).

The ONNX files are derived from the artifact once and cached under ``cache_dir``, keyed by the weights'
SHA-256 and the exporting library versions.

A score must not depend on what else arrived in the micro-batch (a replay would not reproduce it, and one
record could skew the rest). The fp32 runtimes and ``ort-int8`` batch: their rows are independent up to
float rounding, because ``ort-int8`` picks one activation scale per token. ``torch-int8`` quantizes
activations with one scale per tensor, so in a batch a text's scores would move with its neighbours and its
padding (on 64 validation headlines, by up to 0.50 with decisions flipped; ONNX Runtime's per-tensor
quantization by up to 0.23, and a run of symbols moved its neighbours by up to 0.09): it scores each row
alone (:func:`row_by_row`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, get_args

import numpy as np

from models import quantize
from models.labels import Task

if TYPE_CHECKING:  # torch is imported where a runtime is built: settings import the names alone
    from torch import nn

    from models.network import MultiTaskClassifier

RuntimeName = Literal["torch-fp32", "torch-int8", "ort-fp32", "ort-int8"]
RUNTIMES: tuple[RuntimeName, ...] = get_args(RuntimeName)
# The scoring default: the fastest runtime on CPU whose accuracy stays within 0.3 points of torch-fp32 on both
# validation splits (paired test; ``make bench`` measures both, docs/performance.md has the figures).
DEFAULT_RUNTIME: RuntimeName = "ort-int8"
INPUT_NAMES = ("input_ids", "attention_mask")
ONNX_OPSET = 17
# Part of the cache key: a change to how the files are written must not reuse old ones.
EXPORT_FORMAT = "2"


class Runtime(Protocol):
    """A forward pass: token ids and mask in, probabilities per task out (rows in input order)."""

    name: RuntimeName
    tasks: tuple[Task, ...]

    def probabilities(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[Task, np.ndarray]: ...


def version_suffix(runtime: RuntimeName) -> str:
    """What a runtime adds to the model version recorded with every score: nothing where it reproduces the
    trained network's probabilities (fp32), ``-int8`` / ``-ort-int8`` where quantization changes them."""
    return {"torch-int8": "-int8", "ort-int8": "-ort-int8"}.get(runtime, "")


Forward = Callable[[np.ndarray, np.ndarray], dict[Task, np.ndarray]]


def in_groups(forward: Forward, input_ids: np.ndarray, attention_mask: np.ndarray, groups: Sequence[np.ndarray],
              mapper: Callable = map) -> dict[Task, np.ndarray]:
    """``forward`` on each group of rows (row indices) alone, each cut after its group's last attended
    position, the results put back in row order. A row with nothing attended keeps its first position.
    ``mapper`` runs the groups (``map``, or a thread pool's ``map`` to run several at once)."""
    attended = attention_mask != 0
    last = np.where(attended.any(1), attended.shape[1] - 1 - np.argmax(attended[:, ::-1], axis=1), 0)

    def run(rows: np.ndarray) -> dict[Task, np.ndarray]:
        width = int(last[rows].max()) + 1
        return forward(input_ids[rows, :width], attention_mask[rows, :width])

    results = list(mapper(run, groups))
    if not results:
        return forward(input_ids, attention_mask)
    out = {task: np.empty((len(input_ids), *p.shape[1:]), p.dtype) for task, p in results[0].items()}
    for rows, result in zip(groups, results):
        for task, p in result.items():
            out[task][rows] = p
    return out


def row_by_row(forward: Forward, input_ids: np.ndarray, attention_mask: np.ndarray,
               mapper: Callable = map) -> dict[Task, np.ndarray]:
    """``forward`` on each row alone, cut after its last attended position (no padding): a row's result
    depends on that row only (:func:`in_groups` of one row each)."""
    return in_groups(forward, input_ids, attention_mask, [np.array([i]) for i in range(len(input_ids))], mapper)


def by_length(attention_mask: np.ndarray, parts: int) -> list[np.ndarray]:
    """The rows in at most ``parts`` groups of consecutive lengths, as even in size as they divide."""
    order = np.argsort((attention_mask != 0).sum(1), kind="stable")
    return [g for g in np.array_split(order, max(1, min(parts, len(order)))) if len(g)]


class TorchRuntime:
    """The network in torch, float or dynamically quantized; threads are torch's (``torch.set_num_threads``).
    ``row_wise`` runs each row alone (:func:`row_by_row`; the torch int8 runtime does)."""

    def __init__(self, model: nn.Module, name: RuntimeName = "torch-fp32", device: str = "cpu",
                 row_wise: bool = False):
        import torch

        self._torch = torch
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.name = name
        self.row_wise = row_wise
        self.tasks: tuple[Task, ...] = tuple(model.tasks)

    def probabilities(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[Task, np.ndarray]:
        if self.row_wise:
            return row_by_row(self._forward, np.asarray(input_ids), np.asarray(attention_mask))
        return self._forward(input_ids, attention_mask)

    def _forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[Task, np.ndarray]:
        torch = self._torch

        def tensor(a: np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(self.device)

        with torch.inference_mode():
            logits = self.model(tensor(input_ids), tensor(attention_mask))
            return {task: torch.softmax(logits[task].float(), dim=-1).cpu().numpy() for task in self.tasks}


def quantize_torch(model: MultiTaskClassifier) -> nn.Module:
    """Dynamic int8 quantization of every Linear layer (weights int8, activations quantized per batch)."""
    import torch
    from torch import nn

    with warnings.catch_warnings():  # torch marks quantize_dynamic deprecated; it is kept for comparison
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


@dataclass(frozen=True)
class SessionSettings:
    """ONNX Runtime session options, recorded with every benchmark. ``threads``: how many cores a session
    uses (one per model process is the pipeline's setting, see :class:`streams.scorer.LocalScorer`). With
    ``split_batches`` (the default) a batch is split into ``threads`` groups of rows by length, each run at
    once on one intra-op thread, faster than the whole batch on ``threads`` intra-op threads, which wait for
    each other at every operator (the models benchmark measures both; docs/decisions.md). A row-wise session likewise runs one intra-op thread and ``threads`` rows
    at once, because one short text is too small a matrix product to split. One inter-op thread (the graph is
    a chain); every graph optimization; the memory arena on."""

    threads: int = 1
    split_batches: bool = True
    inter_op_threads: int = 1
    graph_optimization: str = "ORT_ENABLE_ALL"
    memory_arena: bool = True
    providers: tuple = ("CPUExecutionProvider",)  # names, or (name, options) pairs

    def options(self):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = self.inter_op_threads
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, self.graph_optimization)
        so.enable_cpu_mem_arena = self.memory_arena
        so.log_severity_level = 3  # errors only: ORT warns about every unused initializer otherwise
        return so


class OrtRuntime:
    """The network's ONNX export in an ONNX Runtime session; ``row_wise`` runs each row alone
    (:func:`row_by_row`)."""

    def __init__(self, session, tasks: Sequence[Task], name: RuntimeName, row_wise: bool = False,
                 row_workers: int = 1):
        self.session = session
        self.tasks: tuple[Task, ...] = tuple(tasks)
        self.name = name
        self.row_wise = row_wise
        # session.run releases the GIL and may be called concurrently: rows (row-wise) or groups of rows
        # (a split batch) run ``row_workers`` at a time
        self.row_workers = row_workers
        self._pool = None
        if row_workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(row_workers, thread_name_prefix="ort-rows")
        outputs = [o.name for o in session.get_outputs()]
        if sorted(outputs) != sorted(self.tasks):
            raise ValueError(f"the ONNX model's outputs {outputs} are not the model's tasks {list(self.tasks)}")
        self._outputs = list(self.tasks)

    @classmethod
    def open(cls, onnx_path: Path, tasks: Sequence[Task], name: RuntimeName,
             settings: SessionSettings = SessionSettings(), row_wise: bool = False) -> "OrtRuntime":
        """A session on ``onnx_path``; ``row_wise`` runs each row alone (needed for a file whose activations
        are quantized per tensor, :func:`models.quantize.per_tensor`); otherwise a batch is split across
        ``settings.threads`` one-thread runs when ``settings.split_batches`` (see :class:`SessionSettings`)."""
        import onnxruntime as ort
        from dataclasses import replace

        in_parts = row_wise or settings.split_batches
        options = (replace(settings, threads=1) if in_parts else settings).options()
        session = ort.InferenceSession(str(onnx_path), options, providers=list(settings.providers))
        return cls(session, tasks, name, row_wise, row_workers=settings.threads if in_parts else 1)

    def probabilities(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[Task, np.ndarray]:
        mapper = self._pool.map if self._pool is not None else map
        if self.row_wise:
            return row_by_row(self._forward, np.asarray(input_ids), np.asarray(attention_mask), mapper)
        if self.row_workers > 1 and len(input_ids) > 1:
            mask = np.asarray(attention_mask)
            return in_groups(self._forward, np.asarray(input_ids), mask, by_length(mask, self.row_workers), mapper)
        return self._forward(input_ids, attention_mask)

    def _forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[Task, np.ndarray]:
        feed = {"input_ids": np.ascontiguousarray(input_ids, dtype=np.int64),
                "attention_mask": np.ascontiguousarray(attention_mask, dtype=np.int64)}
        return dict(zip(self._outputs, self.session.run(self._outputs, feed)))


def probability_outputs(model: MultiTaskClassifier) -> nn.Module:
    """The network with the contract's outputs: a tuple of softmax probabilities per head, in task order."""
    import torch
    from torch import nn

    class Probabilities(nn.Module):
        def __init__(self, inner: nn.Module):
            super().__init__()
            self.model = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
            logits = self.model(input_ids, attention_mask)
            return tuple(torch.softmax(logits[task].float(), dim=-1) for task in self.model.tasks)

    return Probabilities(model).eval()


def write_onnx(model: MultiTaskClassifier, out: Path) -> Path:
    """Export the network (probability outputs, dynamic batch and sequence axes) to ``out``."""
    import torch

    wrapped = probability_outputs(model)
    dummy = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "seq"} for name in INPUT_NAMES}
    axes.update({task: {0: "batch"} for task in model.tasks})
    with warnings.catch_warnings():  # the TorchScript exporter warns that a newer one exists
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, (dummy, dummy), str(out), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=list(INPUT_NAMES), output_names=list(model.tasks), dynamic_axes=axes)
    return out


def largest_difference(a: dict[Task, np.ndarray], b: dict[Task, np.ndarray]) -> float:
    """The largest absolute difference of a probability between two runtimes' outputs."""
    return max(float(np.abs(a[t] - b[t]).max()) for t in a)


def cache_key(path: Path) -> str:
    """What the ONNX files of a version depend on: its weights and the exporting libraries."""
    import onnx
    import onnxruntime
    import torch

    from models import artifact

    parts = [artifact.sha256(Path(path) / artifact.WEIGHTS), torch.__version__, onnx.__version__,
             onnxruntime.__version__, EXPORT_FORMAT]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def check_export(model: MultiTaskClassifier, onnx_path: Path, tolerance: float = 1e-4) -> float:
    """Largest probability difference between the ONNX file and the torch network on a batch of random
    token ids of mixed lengths; ValueError above ``tolerance`` (a broken export must never score)."""
    rng = np.random.default_rng(0)
    vocab = int(model.config.vocab_size)
    ids = rng.integers(1000, vocab, size=(4, 24))
    mask = (np.arange(24) < np.array([[24], [17], [9], [3]])).astype(np.int64)
    diff = largest_difference(OrtRuntime.open(onnx_path, model.tasks, "ort-fp32").probabilities(ids, mask),
                              TorchRuntime(model).probabilities(ids, mask))
    if diff > tolerance:
        raise ValueError(f"the ONNX export differs from torch by {diff:.2e} > {tolerance:.0e}")
    return diff


def onnx_file(path: Path, model: MultiTaskClassifier | None, int8: bool, cache_dir: Path) -> Path:
    """The version's ONNX file (fp32, or int8 when asked), written once into ``cache_dir/<key>/``; the fp32
    export is checked against torch before it is kept (:func:`check_export`). ``model`` is the version's
    network, or None to load it only if a file must be written.

    Written to a temporary name and renamed, so concurrent model processes never read half a file."""
    folder = Path(cache_dir) / f"{Path(path).parent.name}-{Path(path).name}-{cache_key(path)}"
    fp32, q8 = folder / "model.onnx", folder / "model-int8.onnx"
    target = q8 if int8 else fp32
    if target.is_file():
        return target
    if model is None:
        from models import artifact

        model = artifact.load(Path(path))[0]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        if not fp32.is_file():
            write_onnx(model, Path(tmp) / fp32.name)
            check_export(model, Path(tmp) / fp32.name)
            os.replace(Path(tmp) / fp32.name, fp32)
        if int8:
            quantize.per_token(fp32, Path(tmp) / q8.name)
            os.replace(Path(tmp) / q8.name, q8)
    return target


def build(path: Path, model: MultiTaskClassifier | None, runtime: RuntimeName, *, threads: int = 1,
          cache_dir: Path | None = None, providers: Sequence[str] = ("CPUExecutionProvider",),
          device: str = "cpu", tasks: Sequence[Task] | None = None) -> Runtime:
    """The named runtime for a version (``model`` is its torch network, from :func:`artifact.load`, or None:
    then the network is loaded only where it is needed, i.e. for torch or to write a missing ONNX file, and
    ``tasks`` names the heads).

    ``device`` places torch-fp32 (e.g. ``cuda:0``); ``providers`` are ONNX Runtime's execution providers.
    Without ``cache_dir`` the ONNX files go to a temporary folder that is removed once the session holds
    the model."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
    if model is None and runtime.startswith("torch-"):
        from models import artifact

        model = artifact.load(Path(path))[0]
    if runtime == "torch-fp32":
        return TorchRuntime(model, device=device)
    if runtime == "torch-int8":
        return TorchRuntime(quantize_torch(model), "torch-int8", row_wise=True)
    heads = tuple(model.tasks) if model is not None else tuple(tasks or ())
    if not heads:
        raise ValueError("an ONNX Runtime runtime without its network needs the model's tasks")
    settings = SessionSettings(threads=threads, providers=tuple(providers))
    if cache_dir is not None:
        return OrtRuntime.open(onnx_file(path, model, runtime == "ort-int8", cache_dir), heads, runtime, settings)
    with tempfile.TemporaryDirectory() as tmp:
        return OrtRuntime.open(onnx_file(path, model, runtime == "ort-int8", Path(tmp)), heads, runtime, settings)
