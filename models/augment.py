"""Counterfactual training rows for the constructions the model gets wrong.

A clear-toned sentiment row whose tone rests on a directional word (beats / misses expectations, raises
/ cuts guidance, upgrade / downgrade, rises / falls, above / below, higher / lower) is rewritten with
every such word turned to its opposite, and labelled with the opposite tone; a row beating or topping
expectations is sometimes negated instead ("fails to beat", "fails to top"), which is negative too. The
model then learns that these words, not the company or the style of the feed, carry the tone.

Pure functions; rows whose cue words point both ways, or the other way than their label, are left alone.
"""

from __future__ import annotations

import random
import re

from models.dataset import LabelledTexts
from models.labels import SENTIMENT_LABELS

NEGATIVE, POSITIVE = SENTIMENT_LABELS.index("negative"), SENTIMENT_LABELS.index("positive")

# (positive form, negative form): each word turns into the other
PAIRS: tuple[tuple[str, str], ...] = (
    ("beats", "misses"), ("beat", "missed"), ("tops", "trails"), ("topped", "trailed"),
    ("exceeds", "falls short of"), ("exceeded", "fell short of"),
    ("above", "below"), ("higher", "lower"),
    ("raises", "cuts"), ("raised", "slashed"), ("boosts", "trims"), ("hikes", "reduces"),
    ("upgrade", "downgrade"), ("upgrades", "downgrades"), ("upgraded", "downgraded"),
    ("rises", "falls"), ("rose", "fell"), ("jumps", "drops"), ("jumped", "dropped"),
    ("surges", "plunges"), ("surged", "plunged"), ("soars", "sinks"), ("soared", "sank"),
    ("gains", "loses"), ("climbs", "slides"), ("climbed", "slid"), ("rallies", "slumps"), ("rallied", "slumped"),
    ("high", "low"), ("highs", "lows"), ("bullish", "bearish"),
    ("rise", "fall"), ("jump", "drop"), ("surge", "plunge"), ("rally", "slump"), ("raise", "cut"),
    ("lifts", "lowers"), ("lifted", "lowered"),
)
TO_NEGATIVE = {p: n for p, n in PAIRS}
# negative forms with no positive form of their own above
TO_POSITIVE = {n: p for p, n in PAIRS} | {"miss": "beat", "missing": "beating", "declines": "advances",
                                         "declined": "advanced", "tumbles": "soars", "tumbled": "soared"}
# beating expectations, negated: negative too
NEGATED = {"beats": "fails to beat", "tops": "fails to top", "exceeds": "fails to exceed"}


# Ratings and price targets state a direction in their numbers and grades ("downgraded to buy from
# neutral", "target raised to $58 from $70"): a flipped verb would contradict them, so such rows are left.
RATINGS_RE = re.compile(
    r"\b(target|rating|buy|sell|hold|overweight|underweight|outperform|underperform|neutral|equal[- ]weight|"
    r"market perform|sector weight|sector perform|accumulate|reduce)\b|\b(from|to|vs\.?)\s+\$?\d",
    re.IGNORECASE,
)


def _pattern(words) -> re.Pattern[str]:
    alternatives = sorted(words, key=len, reverse=True)  # "falls short of" before "falls"
    # not a cashtag ($TOPS) and not inside a hyphenated word (52-week-high)
    return re.compile(r"(?<![$\w-])(" + "|".join(re.escape(w) for w in alternatives) + r")(?![\w-])",
                      re.IGNORECASE)


_POSITIVE_RE, _NEGATIVE_RE = _pattern(TO_NEGATIVE), _pattern(TO_POSITIVE)


def _cased(word: str, like: str) -> str:
    """``word`` in the letter case of ``like`` (all capitals, a capital first, or as is)."""
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def flip(text: str, label: int, negate: bool = False) -> tuple[str, int] | None:
    """``text`` with its tone turned over, and the new label; None when the row is not clear-toned, has no
    cue word, has cue words both ways or against its label, or states a rating or a price target. ``negate``: a positive row beating
    expectations is negated ("fails to beat") rather than turned into a miss."""
    if RATINGS_RE.search(text):
        return None
    positive, negative = _POSITIVE_RE.findall(text), _NEGATIVE_RE.findall(text)
    if label == POSITIVE and positive and not negative:
        negated = negate and any(w.lower() in NEGATED for w in positive)
        words, new, pattern = (TO_NEGATIVE | NEGATED if negated else TO_NEGATIVE), NEGATIVE, _POSITIVE_RE
    elif label == NEGATIVE and negative and not positive:
        words, new, pattern = TO_POSITIVE, POSITIVE, _NEGATIVE_RE
    else:
        return None
    # every match is a key of ``words``: the pattern was built from those keys
    turned = pattern.sub(lambda m: _cased(words[m.group(0).lower()], m.group(0)), text)
    return turned, new


def counterfactuals(data: LabelledTexts, share: float, seed: int = 0) -> LabelledTexts:
    """Flipped copies of ``share`` of the sentiment rows :func:`flip` can turn (a seeded sample, in row
    order); about one beating-expectations row in three is negated instead."""
    if data.task != "sentiment":
        raise ValueError(f"counterfactual rows are for sentiment, not {data.task}")
    rng = random.Random(seed)
    texts, labels = [], []
    for text, label in zip(data.texts, data.labels):
        if rng.random() >= share:
            continue
        turned = flip(text, label, negate=rng.random() < 1 / 3)
        if turned is not None:
            texts.append(turned[0])
            labels.append(turned[1])
    return LabelledTexts("sentiment", texts, labels)
