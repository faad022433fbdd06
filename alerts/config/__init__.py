"""Load and validate the alerts file. Errors name the file, the line and the field, and say what to do.

``${NAME}`` and ``${NAME:-default}`` in string values are replaced from the environment (receiver URLs
differ per deployment); secrets are named (``env:``/``file:``), never written in the file.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import yaml
from jinja2 import TemplateSyntaxError
from pydantic import ValidationError

from alerts.config.model import (  # noqa: F401  (the public names of the config)
    AlertsConfig, AllOf, Delivery, GrafanaConfig, InhibitRule, NegativeShare, Receiver, Route, Rule, Scope, Secret,
    SentimentShift, TopicBurst, VolumeSpike, WebhookConfig, parse_duration,
)

DEFAULT_RULES = Path(__file__).resolve().parents[1] / "rules" / "default.yaml"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """The alerts file is not valid; the message names file, line and field."""


def _expand(text: str, where: str) -> str:
    def sub(m: re.Match) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            if m.group(2) is None:
                raise ConfigError(f"{where}: environment variable {m.group(1)} is not set (or write ${{{m.group(1)}:-default}})")
            return m.group(2)
        return value

    return _ENV.sub(sub, text)


MAX_NODES = 100_000  # an alias expanded again and again (a "billion laughs" file) stops here


def _plain(node: yaml.Node, path: tuple, lines: dict[tuple, int], source: str, inside: tuple = ()) -> Any:
    """The Python value of a composed YAML node, recording the line of every path."""
    line = node.start_mark.line + 1
    lines[path] = line
    if len(lines) > MAX_NODES:
        raise ConfigError(f"{source}:{line}: too large: more than {MAX_NODES} values once aliases are expanded")
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        if any(node is n for n in inside):
            raise ConfigError(f"{source}:{line}: an alias refers to a value that contains it")
        inside = inside + (node,)
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"{source}:{key_node.start_mark.line + 1}: a key must be text, not a list or mapping")
            key = key_node.value
            if key in out:
                raise ConfigError(f"{source}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            out[key] = _plain(value_node, path + (key,), lines, source, inside)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v, path + (i,), lines, source, inside) for i, v in enumerate(node.value)]
    try:
        value = yaml.safe_load(yaml.serialize(node)) if node.tag != "tag:yaml.org,2002:str" else node.value
    except yaml.YAMLError as exc:  # e.g. a tag safe loading refuses (!!python/object)
        raise ConfigError(f"{source}:{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    return _expand(value, f"{source}:{line}") if isinstance(value, str) else value


def _line(lines: dict[tuple, int], loc: tuple) -> int:
    """The line of the deepest part of ``loc`` the file has (a missing field: its parent's line)."""
    for n in range(len(loc), -1, -1):
        key = tuple(p for p in loc[:n] if not (isinstance(p, str) and p in _UNION_TAGS))
        if key in lines:
            return lines[key]
    return 1


_UNION_TAGS = {"sentiment_shift", "negative_share", "volume_spike", "topic_burst", "all"}


def parse(text: str, source: str = "<alerts>") -> AlertsConfig:
    """Validate the text of an alerts file; :class:`ConfigError` with file:line: field: problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    lines: dict[tuple, int] = {}
    data = _plain(node, (), lines, source) if node is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: expected a mapping with rules, route, receivers, inhibit_rules")
    try:
        config = AlertsConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            field = ".".join(str(p) for p in loc if not (isinstance(p, str) and p in _UNION_TAGS)) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{source}:{_line(lines, loc)}: {field}: {msg}")
        raise ConfigError("invalid alerts file:\n  " + "\n  ".join(problems)) from None
    _check_templates(config, source, lines)
    return config


def _check_templates(config: AlertsConfig, source: str, lines: dict[tuple, int]) -> None:
    from alerts.template import check

    for i, rule in enumerate(config.rules):
        for key, text in rule.annotations.items():
            try:
                problem = check(text)
            except TemplateSyntaxError as exc:
                problem = exc.message
            if problem:
                line = lines.get(("rules", i, "annotations", key), 1)
                raise ConfigError(f"{source}:{line}: rules.{i}.annotations.{key}: template error: {problem}")


def load(path: str | Path | None = None) -> AlertsConfig:
    """The alerts file at ``path`` (default: the rules shipped with Sentimon)."""
    path = Path(path) if path else DEFAULT_RULES
    if not path.is_file():
        raise ConfigError(f"{path}: no such alerts file (set alerts.rules_file or SENTIMON_ALERTS__RULES_FILE)")
    return parse(path.read_text(), str(path))


def rules_hash(config: AlertsConfig) -> str:
    """A short hash of the rules (recorded with each run: which rules produced these alerts)."""
    return hashlib.sha256(config.model_dump_json(by_alias=True).encode()).hexdigest()[:12]
