"""A synthetic feed of realistic-looking news and social traffic, with events injected on purpose.

Many tickers and sectors (the company list), several publishers and platforms, news and social mixed,
the same story re-published by other outlets (near duplicates), personal data in some posts (to be
scrubbed), and a daily rhythm (busier in US market hours, by event time). Injected events make a
known shift: a burst of negative news about one ticker, or a storm of one topic.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from math import exp
from typing import Literal

from streams.entities import Company, EntityIndex, default_index

NEWS_SOURCES = ("reuters", "bloomberg", "wsj", "ft", "cnbc", "marketwatch", "seekingalpha", "benzinga")
PLATFORMS = ("x", "stocktwits", "reddit")

# headlines are composed (subject + move + reason + coda) so that independent stories differ the way
# real ones do; only re-publications of one story are near duplicates
MOVES = {
    "positive": ("shares jump {p}%", "stock climbs {p}%", "rallies {p}%", "surges to a record high", "gains {p}%",
                 "shares rise {p}% in premarket trading"),
    "negative": ("shares plunge {p}%", "stock tumbles {p}%", "slides {p}%", "sinks to a 52-week low", "falls {p}%",
                 "shares drop {p}% after the bell"),
    "neutral": ("shares little changed", "stock flat", "trades sideways", "holds steady", "ends the session unchanged"),
}
REASONS = {
    "positive": ("after quarterly earnings beat estimates", "on raised full-year guidance", "after winning a {b} billion contract",
                 "as analysts upgrade to buy", "on a {b} billion share buyback", "as revenue growth accelerates",
                 "after strong subscriber numbers", "on upbeat demand outlook", "after a favourable court ruling"),
    "negative": ("after an earnings miss", "as it cuts its full-year forecast", "amid an SEC investigation",
                 "after a product recall over safety defects", "as analysts downgrade to sell", "on plans to cut {b},000 jobs",
                 "after its CFO resigns unexpectedly", "on weak demand in China", "after a data breach disclosure"),
    "neutral": ("ahead of quarterly results", "as it names a new chief financial officer", "before its investor day",
                "ahead of the Fed decision", "after filing its annual report", "as trading volume stays light"),
}
CODAS = ("", "", "", ", analysts say", ", sources say", " - report", " in heavy trading", " as Wall Street watches")
POSTS = {
    "positive": ("${ticker} looking strong today, adding more", "Great quarter from ${ticker}, bullish into year end",
                 "${ticker} breaking out, this run has legs", "Loaded up on ${ticker} calls, fundamentals are great",
                 "${ticker} crushing it, best performer in my portfolio", "${ticker} guidance was fantastic, long and strong",
                 "Never selling my ${ticker}, this company prints money"),
    "negative": ("${ticker} getting crushed, this is ugly", "Selling all my ${ticker}, guidance was a disaster",
                 "${ticker} in free fall, stay away", "${ticker} management keeps disappointing, I'm out",
                 "Bought puts on ${ticker}, this is going lower", "${ticker} is a falling knife, terrible numbers",
                 "Cut my losses on ${ticker}, what a mess"),
    "neutral": ("Anyone else watching ${ticker} today?", "${ticker} earnings next week, what are you expecting?",
                "Holding ${ticker} for now", "What's the consensus on ${ticker} here?", "${ticker} volume is light today"),
}
OPENERS = ("", "", "", "Honestly, ", "Ok so ", "Hot take: ", "Not advice but ", "Update: ", "Thread: ")
TAILS = ("", "", " imo", " #stocks", " target {n}", " at {n} now", " since {n}", " day {m}", " 📈", " lol")
MACRO = (
    ("Fed signals it will keep rates higher for longer", "negative"),
    ("Treasury yields fall as inflation cools more than expected", "positive"),
    ("Oil prices climb after OPEC extends output cuts", "neutral"),
    ("Dollar weakens against the euro ahead of jobs data", "neutral"),
    ("Gold hits record as investors seek safety", "neutral"),
    ("Stocks rally as strong jobs report eases recession fears", "positive"),
)
STORM = {
    "M&A": ("{name} agrees to acquire a rival in a ${b} billion deal", "{name} explores a sale of its {u} unit, sources say",
            "{name} in talks to buy a {u} startup for ${b} billion", "{name} makes a hostile bid for a {u} peer"),
    "Legal": ("{name} sued by regulators over {u} antitrust violations", "Court rules against {name} in {u} patent case",
              "{name} settles class action over {u} data breach", "{name} faces DOJ probe into its {u} business"),
}
UNITS = ("cloud", "chip", "payments", "advertising", "retail", "energy", "biotech", "logistics", "media", "software")
PII = (" DM @{handle} or email {handle}@example.com", " call me at +1 (555) {n:03d}-{m:04d}", " h/t @{handle}")
HANDLES = ("trader_joe", "bullish_betty", "wallst_wolf", "quant_kate", "dividend_dan", "macro_mike")


@dataclass(frozen=True)
class Injected:
    """An event: ``kind`` negative/positive burst about ``target`` (a ticker), or a topic ``storm``
    (``target`` one of STORM's topics) starting ``at_s`` seconds into the feed for ``duration_s``."""

    kind: Literal["negative", "positive", "storm"]
    target: str
    at_s: float
    duration_s: float = 30.0
    share: float = 0.4  # of all traffic while it lasts

    @classmethod
    def parse(cls, spec: str) -> "Injected":
        """``negative:TSLA@30s/40s`` = negative burst about TSLA from 30 s, lasting 40 s."""
        try:
            head, _, when = spec.partition("@")
            kind, _, target = head.partition(":")
            start, _, length = when.partition("/")
            return cls(kind, target, float(start.rstrip("s")), float(length.rstrip("s")) if length else 30.0)  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(f"bad event {spec!r}: expected KIND:TARGET@START[/DURATION], e.g. negative:TSLA@30s/40s") from None


def activity(hour: float) -> float:
    """Relative traffic by UTC hour: quiet at night, peaking in US market hours (~15-16 UTC)."""
    return 0.3 + 1.0 * exp(-(((hour - 16.0) / 3.5) ** 2))


class SyntheticFeed:
    """Yields (kind, item dict) in feed order; ``elapsed_s`` is the offset from the feed's start in feed time."""

    def __init__(self, seed: int = 7, start: datetime | None = None, events: tuple[Injected, ...] = (),
                 index: EntityIndex | None = None, duplicate_rate: float = 0.12, social_share: float = 0.45,
                 rhythm: bool = True, live: bool = False):
        self.rng = random.Random(seed)
        self.start = start or datetime.now(timezone.utc)
        self.events = events
        self.companies: list[Company] = list((index or default_index()).companies.values())
        # a few names dominate the news, as in a real feed
        self.weights = [1.0 / (i + 1) ** 0.7 for i in range(len(self.companies))]
        self.duplicate_rate = duplicate_rate
        self.social_share = social_share
        self.rhythm = rhythm
        self.live = live  # stamp items with the wall clock when they are made (latency measurements)
        self.count = 0
        # ids unique per feed run: two runs never collide on a document id (ids are the dedup key downstream)
        self.run = f"{seed:x}{int(self.start.timestamp() * 1000):x}"
        self._pending: list[tuple[str, dict]] = []

    def _company(self, ticker: str | None = None) -> Company:
        if ticker:
            return next(c for c in self.companies if c.ticker == ticker)
        return self.rng.choices(self.companies, self.weights)[0]

    def _name(self, c: Company) -> str:
        return self.rng.choice(c.aliases) if c.aliases and self.rng.random() < 0.8 else c.name

    def _headline(self, c: Company, mood: str) -> str:
        move = self.rng.choice(MOVES[mood]).format(p=round(self.rng.uniform(1, 12), 1))
        reason = self.rng.choice(REASONS[mood]).format(b=self.rng.randint(2, 40))
        return f"{self._name(c)} {move} {reason}{self.rng.choice(CODAS)}"

    def _id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-{self.run}-{self.count}"

    def _news(self, t: datetime, headline: str, tickers: list[str]) -> dict:
        source = self.rng.choice(NEWS_SOURCES)
        return {"id": self._id(source), "source": source, "published_at": t.isoformat().replace("+00:00", "Z"),
                "headline": headline, "body": f"<p>{headline}. More details to follow.</p>",
                "url": f"https://{source}.example.com/{self.count}", "tickers": tickers, "language": "en"}

    def _post(self, t: datetime, text: str, ticker: str) -> dict:
        if self.rng.random() < 0.2:
            text += self.rng.choice(PII).format(handle=self.rng.choice(HANDLES), n=self.rng.randrange(1000),
                                                m=self.rng.randrange(10000))
        platform = self.rng.choice(PLATFORMS)
        return {"id": self._id(platform), "platform": platform, "author": "@" + self.rng.choice(HANDLES) + str(self.rng.randrange(50)),
                "created_at": t.isoformat().replace("+00:00", "Z"), "text": text, "cashtags": [ticker],
                "engagement": {"likes": self.rng.randrange(200), "reposts": self.rng.randrange(30), "replies": self.rng.randrange(20)}}

    def _active(self, elapsed_s: float) -> Injected | None:
        for e in self.events:
            if e.at_s <= elapsed_s < e.at_s + e.duration_s and self.rng.random() < e.share:
                return e
        return None

    def next(self, elapsed_s: float) -> tuple[str, dict]:
        """The next item at ``elapsed_s`` seconds (feed time) after the start."""
        if self._pending:
            return self._pending.pop()
        t = datetime.now(timezone.utc) if self.live else self.start + timedelta(seconds=elapsed_s)
        event = self._active(elapsed_s)
        if event is not None and event.kind == "storm":
            c = self._company()
            headline = self.rng.choice(STORM[event.target]).format(name=self._name(c), b=self.rng.randint(2, 90),
                                                                     u=self.rng.choice(UNITS))
            return "news", self._news(t, headline, [c.ticker])
        if event is not None:
            c, mood = self._company(event.target), event.kind
        else:
            c, mood = self._company(), self.rng.choices(("positive", "neutral", "negative"), (0.35, 0.4, 0.25))[0]
        if self.rng.random() < self.social_share:
            text = self.rng.choice(OPENERS) + self.rng.choice(POSTS[mood]).replace("{ticker}", c.ticker)
            text += self.rng.choice(TAILS).format(n=self.rng.randrange(20, 900), m=self.rng.randrange(2, 60))
            return "social", self._post(t, text, c.ticker)
        if event is None and self.rng.random() < 0.08:
            headline, _ = self.rng.choice(MACRO)
            return "news", self._news(t, headline, [])
        headline = self._headline(c, mood)
        item = self._news(t, headline, [c.ticker])
        if self.rng.random() < self.duplicate_rate:  # other outlets pick the story up, lightly reworded
            for prefix in self.rng.sample(("UPDATE 1-", "BREAKING: ", "", "REFILE-"), self.rng.randint(1, 2)):
                copy = self._news(t + timedelta(seconds=self.rng.uniform(1, 20)), prefix + headline + ".", [c.ticker])
                self._pending.append(("news", copy))
        return "news", item

    def items(self, n: int, rate_per_s: float) -> Iterator[tuple[float, str, dict]]:
        """``n`` items, (elapsed_s, kind, item), at ``rate_per_s`` in peak hours, shaped by :func:`activity`
        when ``rhythm`` is on (flat otherwise)."""
        elapsed = 0.0
        for _ in range(n):
            t = self.start + timedelta(seconds=elapsed)
            shape = activity(t.hour + t.minute / 60) / activity(16.0) if self.rhythm else 1.0
            elapsed += self.rng.expovariate(rate_per_s * shape)
            kind, item = self.next(elapsed)
            yield elapsed, kind, item
