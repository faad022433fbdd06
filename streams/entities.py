"""Entities in a text: cashtags, tickers and company names from the project's list of listed companies.

The list is ``streams/data/companies.csv`` (ticker, name, aliases separated by '|', GICS sector).
Single-letter tickers (F, T, C, V) are recognised only as cashtags ($F), never as bare words.
"""

from __future__ import annotations

import csv
import re
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
        names = {}
        for c in companies:
            for alias in (c.name, *c.aliases):
                names[alias] = c.ticker
        self._alias_ticker = names
        # longest first so "Bank of America" wins over "America"-like shorter aliases
        alternatives = "|".join(re.escape(a) for a in sorted(names, key=len, reverse=True))
        self._names = re.compile(rf"(?<![\w&]){'(?:' + alternatives + ')'}(?![\w&])")
        bare = "|".join(re.escape(t) for t in sorted(self.companies, key=len, reverse=True) if len(t) >= 2)
        self._bare = re.compile(rf"(?<![\w$.]){'(?:' + bare + ')'}(?![\w])")

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
        found.update(self._alias_ticker[m] for m in self._names.findall(text))
        found.update(self._bare.findall(text))
        tickers = tuple(sorted(found))
        sectors = tuple(sorted({s for t in tickers if (s := self.sector(t))}))
        return Entities(tickers, sectors)


@lru_cache(maxsize=1)
def default_index() -> EntityIndex:
    return EntityIndex.load()
