"""Entities in a text: cashtags, tickers and company names from the project's list of listed companies.

The list is ``streams/data/companies.csv`` (ticker, name, aliases separated by '|', GICS sector).
Single-letter tickers (F, T, C, V) are recognised only as cashtags ($F), never as bare words.
"""

from __future__ import annotations

import csv
import re

import ahocorasick
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

COMPANIES_FILE = Path(__file__).parent / "data" / "companies.csv"
CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?)(?![\w])")


@dataclass(frozen=True)
class Company:
    ticker: str
    name: str
    sector: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Entities:
    tickers: tuple[str, ...]
    sectors: tuple[str, ...]


class EntityIndex:
    """Finds tickers and their sectors in text; unknown cashtags are kept as tickers without a sector."""

    def __init__(self, companies: list[Company]):
        self.companies = {c.ticker: c for c in companies}
        # one Aho-Corasick automaton for names, aliases and bare tickers (>= 2 letters): one pass per
        # text instead of a regex alternation over hundreds of names (~20x faster)
        self._automaton = ahocorasick.Automaton()
        for c in companies:
            keys = [c.name, *c.aliases] + ([c.ticker] if len(c.ticker) >= 2 else [])
            for key in keys:
                self._automaton.add_word(key, (len(key), c.ticker))
        self._automaton.make_automaton()

    def _names(self, text: str) -> set[str]:
        found = set()
        n = len(text)
        for end, (length, ticker) in self._automaton.iter(text):
            start = end - length + 1
            before = text[start - 1] if start > 0 else " "
            after = text[end + 1] if end + 1 < n else " "
            if not (before.isalnum() or before in "&$_.") and not (after.isalnum() or after in "&_"):
                found.add(ticker)
        return found

    @classmethod
    def load(cls, path: Path = COMPANIES_FILE) -> "EntityIndex":
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        required = {"ticker", "name", "aliases", "sector"}
        if not rows or not required <= set(rows[0]):
            raise ValueError(f"{path}: expected columns {sorted(required)}")
        return cls(
            [
                Company(r["ticker"].strip().upper(), r["name"].strip(), r["sector"].strip(),
                        tuple(a.strip() for a in r["aliases"].split("|") if a.strip()))
                for r in rows
            ]
        )

    def sector(self, ticker: str) -> str | None:
        company = self.companies.get(ticker)
        return company.sector if company else None

    def find(self, text: str, tagged: tuple[str, ...] | list[str] = ()) -> Entities:
        """Tickers (sorted, unique, upper case, no '$') and their sectors found in ``text`` plus ``tagged``."""
        found = {t.strip().lstrip("$").upper() for t in tagged if t.strip().lstrip("$")}
        found.update(m.upper() for m in CASHTAG.findall(text))
        found.update(self._names(text))
        tickers = tuple(sorted(found))
        sectors = tuple(sorted({s for t in tickers if (s := self.sector(t))}))
        return Entities(tickers, sectors)


@lru_cache(maxsize=1)
def default_index() -> EntityIndex:
    return EntityIndex.load()
