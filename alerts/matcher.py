"""Label matchers (``name=value``, ``!=``, ``=~``, ``!~``), one implementation for routes, silences and
inhibition. Regular expressions are anchored, as in Alertmanager."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

Op = Literal["=", "!=", "=~", "!~"]
_PARSE = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


class Matcher(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    op: Op = "="
    value: str

    @model_validator(mode="after")
    def _regex_compiles(self) -> "Matcher":
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {self.value!r}: {exc}") from None
        return self

    @classmethod
    def parse(cls, text: str) -> "Matcher":
        """``'severity="critical"'``, ``'entity=~"AAPL|MSFT"'``, ``'entity_kind!=market'``."""
        m = _PARSE.match(text)
        if not m:
            raise ValueError(f"not a matcher: {text!r} (expected name=value, name!=value, name=~regex or name!~regex)")
        return cls(name=m.group(1), op=m.group(2), value=m.group(3))  # type: ignore[arg-type]

    @cached_property
    def _regex(self) -> re.Pattern:
        return re.compile(f"(?:{self.value})\\Z")

    def matches(self, labels: Mapping[str, str]) -> bool:
        """A missing label matches like the empty string (Alertmanager's rule)."""
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = self._regex.match(value) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def as_matchers(values: Iterable[str | Matcher | dict] | str | dict) -> list[Matcher]:
    """Matchers from their text form, dicts or matchers (one, or a list); ValueError for anything else."""
    if isinstance(values, (str, dict, Matcher)):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"expected a list of matchers like 'severity=\"critical\"', not {type(values).__name__}")
    out = []
    for v in values:
        if isinstance(v, Matcher):
            out.append(v)
        elif isinstance(v, str):
            out.append(Matcher.parse(v))
        elif isinstance(v, dict):
            out.append(Matcher.model_validate(v))
        else:
            raise ValueError(f"a matcher is text like 'severity=\"critical\"' or a mapping of name, op, value; not {v!r}")
    return out
