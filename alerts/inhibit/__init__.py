"""Inhibition: a firing alert that matches a rule's source matchers mutes alerts matching its target
matchers that carry the same values of the ``equal`` labels (e.g. a market-wide alert mutes the
per-ticker ones while it fires). An alert never inhibits itself."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from alerts.config.model import InhibitRule
from alerts.matcher import matches_all


def inhibited(rules: Iterable[InhibitRule], labels: Mapping[str, str], firing: Iterable[Mapping[str, str]]) -> bool:
    """Whether ``labels`` is muted by any of the ``firing`` alerts' labels under ``rules``."""
    firing = list(firing)
    for rule in rules:
        if not matches_all(rule.target_matchers, labels):
            continue
        for source in firing:
            if source is labels or dict(source) == dict(labels):
                continue
            if matches_all(rule.source_matchers, source) and all(source.get(k, "") == labels.get(k, "") for k in rule.equal):
                return True
    return False
