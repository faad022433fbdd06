"""Triton python backend for a sentimon classifier: one forward pass per dynamic batch.

The contract is backend-neutral (the same one an ONNX or TensorRT model serves): the client tokenizes
and sends INT64 ``input_ids`` and ``attention_mask`` of shape (batch, seq); the model returns the
probabilities of each head, FP32 ``sentiment`` (batch, 3) and ``topic`` (batch, 20).

Triton hands this backend a list of requests (the dynamic batch; ``allow_ragged_batch`` lets requests
of different lengths join): they are right-padded to the longest, run as one batch, and split again.
The model artifact sits beside this file (``parameters.artifact``); ``parameters.runtime`` names what
runs the network (:mod:`models.runtime`: ONNX Runtime int8 or fp32 from the ONNX files ``sentimon export``
derived into ``onnx/``, or torch). On a GPU instance ONNX Runtime uses its CUDA provider when it has one,
else the network runs in torch on the GPU. The ``sentimon`` package must be importable by the python
backend's interpreter (the venv here; a custom execution environment in the official container).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        threads = int(params.get("threads", "1"))
        import torch

        from models.artifact import load_checked, read_json
        from models.runtime import build

        torch.set_num_threads(threads)
        here = Path(args["model_repository"]) / args["model_version"]
        artifact_dir = here / params.get("artifact", "artifact")
        tasks, _, _ = load_checked(artifact_dir)
        runtime = params.get("runtime", "torch-fp32")
        device, providers = "cpu", ["CPUExecutionProvider"]
        if args.get("model_instance_kind") == "GPU" and torch.cuda.is_available():
            device = f"cuda:{args['model_instance_device_id']}"
            import onnxruntime

            if runtime.startswith("ort-") and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                providers = [("CUDAExecutionProvider", {"device_id": int(args["model_instance_device_id"])}),
                             "CPUExecutionProvider"]
            else:
                runtime = "torch-fp32"
        self.vocab = int(read_json(artifact_dir / "config.json")["vocab_size"])
        # the network itself is loaded only for torch (ONNX Runtime reads the files made at export)
        self.runtime = build(artifact_dir, None, runtime, threads=threads, cache_dir=here / "onnx",
                             providers=providers, device=device, tasks=tasks)
        self.tasks = tuple(self.runtime.tasks)
        self.max_length = int(params.get("max_length", "512"))

    def _check(self, ids: np.ndarray, mask: np.ndarray) -> str | None:
        if ids.ndim != 2 or ids.shape != mask.shape:
            return f"input_ids {list(ids.shape)} and attention_mask {list(mask.shape)} must both be (batch, seq)"
        if ids.shape[1] > self.max_length:
            return f"sequence length {ids.shape[1]} > the model's limit {self.max_length}: truncate on the client"
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab):
            return f"token ids must lie in [0, {self.vocab}): wrong tokenizer for this model?"
        return None

    def execute(self, requests: list) -> list:
        inputs, errors = [], {}
        for n, request in enumerate(requests):
            ids = pb_utils.get_input_tensor_by_name(request, "input_ids").as_numpy()
            mask = pb_utils.get_input_tensor_by_name(request, "attention_mask").as_numpy()
            problem = self._check(ids, mask)
            if problem:
                errors[n] = problem
            else:
                inputs.append((n, ids, mask))
        probs: dict[str, np.ndarray] = {}
        if inputs:
            width = max(ids.shape[1] for _, ids, _ in inputs)

            def batch(k: int) -> np.ndarray:
                return np.concatenate(
                    [np.pad(x[k], ((0, 0), (0, width - x[k].shape[1]))) for x in inputs]).astype(np.int64)

            probs = self.runtime.probabilities(batch(1), batch(2))
        responses, start = [], 0
        rows = {n: ids.shape[0] for n, ids, _ in inputs}
        for n in range(len(requests)):
            if n in errors:
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(errors[n])))
                continue
            end = start + rows[n]
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor(task, probs[task][start:end]) for task in self.tasks]))
            start = end
        return responses

    def finalize(self) -> None:
        self.runtime = None

