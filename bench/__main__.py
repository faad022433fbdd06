"""``python -m bench PART [--quick] [--model M] [--minutes N]``: run one benchmark (see :mod:`bench`)."""

from __future__ import annotations

import argparse
import importlib
import sys

from rich.console import Console

# part -> (module, function); every function takes (settings, out_dir, quick=, log=)
PARTS = {
    "triton": ("bench.triton", "run_triton_bench"),
    "pipeline": ("bench.pipeline", "run_pipeline_bench"),
    "through-triton": ("bench.pipeline", "run_through_triton_bench"),
    "alerts": ("bench.alerts", "run_alerts_bench"),
    "replay": ("bench.replay", "run_replay_bench"),
    "soak": ("bench.soak", "run_soak_bench"),
    "window": ("bench.window", "run_window_bench"),
    "broker": ("bench.broker", "run_broker_bench"),
    "event-loop": ("bench.event_loop", "run_event_loop_bench"),
    "summary": ("bench.summary", "run_summary"),
}
console = Console(stderr=True)


def log(message: str) -> None:
    console.print(f"[dim]{message}[/dim]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run one of the benchmarks: side by side in "
                                     "one run, a table printed and the JSON saved under var/bench/.")
    parser.add_argument("part", choices=["models", *PARTS], help="which benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer items per measurement (a smoke run)")
    parser.add_argument("--model", "-m", help="model name, version directory or 'auto' (default: the settings')")
    parser.add_argument("--minutes", type=float, help="soak: minutes of sustained load (default 10)")
    parser.add_argument("--per-message", type=int, default=1, metavar="N",
                        help="through-triton: raw items per Kafka message (N > 1: JSON Lines, as `sentimon feed "
                        "--per-message N`; default 1)")
    parser.add_argument("--triton-cores", type=int, default=0, metavar="N",
                        help="through-triton: tritonserver on N cores of its own, the broker, worker and client on "
                        "the rest (as on a deployment where Triton has its own machine; default 0: all share them)")
    parser.add_argument("--gpu", action="store_true", help="models: add the GPU rows (torch CUDA, ONNX Runtime CUDA "
                        "and TensorRT providers)")
    args = parser.parse_args(argv)

    from sentimon.settings import get_settings

    settings = get_settings()
    if args.model:
        settings = settings.model_copy(update={"model": args.model})
    out_dir = settings.var_dir / "bench"
    if args.part == "models":
        return _models(settings, out_dir, args.quick, args.gpu)
    module, function = PARTS[args.part]
    extra = {"minutes": args.minutes} if args.part == "soak" and args.minutes else {}
    if args.part == "through-triton" and args.per_message > 1:
        extra["per_message"] = args.per_message
    if args.part == "through-triton" and args.triton_cores:
        extra["triton_cores"] = args.triton_cores
    getattr(importlib.import_module(module), function)(settings, out_dir, quick=args.quick, log=log, **extra)
    return 0


def _models(settings, out_dir, quick: bool, gpu: bool = False) -> int:
    from bench.models import run_models_bench
    from models import artifact
    from models.dataset import load
    from models.labels import TASKS

    try:
        ref = artifact.resolve(settings.model, settings.models_dir)
        sets = {split: {t: load(t, split, settings.data_dir, settings.data_source) for t in TASKS}
                for split in ("train", "valid")}
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    run_models_bench(ref, sets["train"], sets["valid"], out_dir, quick=quick, cache_dir=settings.onnx_cache_dir, gpu=gpu,
                     log=log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
