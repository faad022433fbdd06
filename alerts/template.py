"""Annotation templates (sandboxed Jinja): the numbers that fired a rule and example headlines.

Names a template may use: ``rule``, ``entity``, ``entity_kind``, ``severity``, ``value``, the detector's
numbers (``z``, ``mean``, ``baseline``, ``share``, ``stories``, ``ratio`` ... as the detector gives them),
``window`` (minutes), ``headlines`` (a list), ``labels`` (a dict); in a combination (``type: all``) each
detector's numbers also under its type (``volume_spike.ratio``, ``sentiment_shift.z``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)

SAMPLE: dict[str, Any] = {
    "rule": "rule", "entity": "AAPL", "entity_kind": "ticker", "severity": "warning", "value": -3.5, "z": -3.5,
    "mean": -0.4, "baseline": 0.1, "sigma": 0.1, "share": 0.7, "baseline_share": 0.1, "stories": 12,
    "baseline_stories": 5.0, "ratio": 3.0, "topic": "M&A", "window": 5, "headlines": ["a headline"],
    "labels": {"alertname": "rule"},
}
SAMPLE.update({kind: dict(SAMPLE) for kind in ("sentiment_shift", "negative_share", "volume_spike", "topic_burst")})


@lru_cache(maxsize=256)
def compile_template(text: str) -> Template:
    return _ENV.from_string(text)


def check(text: str) -> str | None:
    """Why the template cannot render with the documented names, or None."""
    try:
        compile_template(text).render(SAMPLE)
    except UndefinedError as exc:
        return f"{exc.message} (names: {', '.join(sorted(SAMPLE))})"
    except Exception as exc:  # a filter misused etc.
        return str(exc)
    return None


def render(text: str, context: dict[str, Any]) -> str:
    """The template rendered; if a number is missing at run time, the text says so instead of failing."""
    try:
        return compile_template(text).render(context)
    except Exception as exc:
        return f"{text} [template error: {exc}]"
