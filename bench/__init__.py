"""Sentimon's benchmarks: speed and memory measured side by side in one run, as ratios, with the JSON of each run
under ``var/bench/``. Run them as ``python -m bench PART`` or through ``make bench`` and its ``bench-*`` targets;
nothing in the product imports this package.

Parts: ``models`` (float, int8 and the TF-IDF baseline), ``triton`` (Triton against in-process scoring),
``pipeline`` (raw consume, no-op and model pipelines, Triton, latency), ``through-triton`` (only the pipeline's
Triton pairs), ``alerts`` (detection quality, burst -> webhook latency), ``replay``, ``soak`` (memory under
sustained load and a burst), ``window`` (the ingest state's memory), ``broker`` (tansu's producers under kills).
"""
