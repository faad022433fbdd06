"""Sentimon: streaming market-sentiment monitoring (CLI and settings)."""

__version__ = "0.1.0"
