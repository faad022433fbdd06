"""Triton Inference Server: the asyncio gRPC client the scoring stage uses (``client``) and its circuit breaker
(``breaker``). The local server is started by :mod:`sentimon.local.triton`."""
