"""Triton python backend for a sentimon classifier: one forward pass per dynamic batch.

The contract is backend-neutral (the same one an ONNX or TensorRT model serves): the client tokenizes
and sends INT64 ``input_ids`` and ``attention_mask`` of shape (batch, seq); the model returns the
probabilities of each head, FP32 ``sentiment`` (batch, 3) and ``topic`` (batch, 20).

Triton hands this backend a list of requests (the dynamic batch; ``allow_ragged_batch`` lets requests
of different lengths join): they are right-padded to the longest, run as one batch, and split again.
The model artifact sits beside this file (``parameters.artifact``); the ``sentimon`` package must be
importable by the python backend's interpreter (the venv here; a custom execution environment in the
official container).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        torch.set_num_threads(int(params.get("threads", "1")))
        from models.artifact import load

        here = Path(args["model_repository"]) / args["model_version"]
        self.model, _, _ = load(here / params.get("artifact", "artifact"))
        gpu = args.get("model_instance_kind") == "GPU" and torch.cuda.is_available()
        self.device = torch.device(f"cuda:{args['model_instance_device_id']}" if gpu else "cpu")
        self.model.to(self.device)
        self.tasks = tuple(self.model.tasks)
        self.vocab = int(self.model.config.vocab_size)
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

            def batch(k: int) -> torch.Tensor:
                return torch.from_numpy(np.concatenate(
                    [np.pad(x[k], ((0, 0), (0, width - x[k].shape[1]))) for x in inputs]).astype(np.int64)).to(self.device)

            with torch.inference_mode():
                logits = self.model(batch(1), batch(2))
                probs = {task: torch.softmax(logits[task].float(), dim=-1).cpu().numpy() for task in self.tasks}
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
        self.model = None

