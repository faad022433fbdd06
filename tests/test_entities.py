import pytest

from streams.entities import EntityIndex, default_index


@pytest.fixture(scope="module")
def index() -> EntityIndex:
    return default_index()


def test_company_file_is_complete(index):
    assert len(index.companies) >= 90
    assert all(c.sector for c in index.companies.values())
    assert len({c.sector for c in index.companies.values()}) == 11  # every GICS sector


def test_cashtags_names_and_tickers(index):
    found = index.find("$tsla falls while Microsoft and NVDA rise; Bank of America cautious")
    assert found.tickers == ("BAC", "MSFT", "NVDA", "TSLA")
    assert "Information Technology" in found.sectors and "Financials" in found.sectors


def test_unknown_cashtag_kept_without_sector(index):
    found = index.find("$BTC breaks out", tagged=["$aapl"])
    assert found.tickers == ("AAPL", "BTC")
    assert found.sectors == ("Information Technology",)


def test_single_letter_tickers_only_as_cashtags(index):
    assert index.find("A big day for F and T").tickers == ()
    assert index.find("$F and $T up").tickers == ("F", "T")


def test_no_match_inside_words(index):
    assert index.find("Applebee's and Metallica").tickers == ()
