"""Triton Inference Server: the server this project starts itself (``server``); the client comes next."""
