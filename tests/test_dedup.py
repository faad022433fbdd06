from streams.dedup import Deduplicator

STORY = "Apple shares surge after record iPhone sales beat estimates on Tuesday"


def test_exact_and_near_duplicates_point_to_the_first():
    d = Deduplicator(window=100)
    assert d.check("a", STORY, "AAPL") == ""
    assert d.check("b", STORY.upper() + "!", "AAPL") == "a"  # exact after normalization
    assert d.check("c", "UPDATE 1-" + STORY.replace("Tuesday", "Tuesday, analysts say"), "AAPL") == "a"


def test_different_stories_and_different_entities_are_not_duplicates():
    d = Deduplicator(window=100)
    assert d.check("a", STORY, "AAPL") == ""
    assert d.check("b", "Tesla recalls two million vehicles over autopilot safety concerns", "TSLA") == ""
    # same template, another company: another story
    assert d.check("c", STORY.replace("Apple", "Oracle"), "ORCL") == ""


def test_redelivery_gets_the_same_answer():
    d = Deduplicator(window=100)
    d.check("a", STORY)
    assert d.check("b", STORY) == "a"
    assert d.check("b", STORY) == "a"
    assert d.check("a", STORY) == ""


def test_window_bounds_memory():
    import random

    rng = random.Random(1)
    texts = [" ".join(rng.choice("abcdefghijklmnopqrstuvwxyz") * 4 + str(i) for i in range(12)) for _ in range(200)]
    d = Deduplicator(window=50)
    for i, text in enumerate(texts):
        assert d.check(str(i), text) == ""
    assert len(d) == 50
    assert d.check("again-last", texts[-1]) == "199"  # remembered
    assert d.check("again-first", texts[0]) == ""  # forgotten


def test_forgotten_documents_leave_no_index_behind():
    # the LSH buckets are kept per scope (tickers): a scope whose documents all left the window goes too
    d = Deduplicator(window=3)
    for i, ticker in enumerate(["AAPL", "TSLA", "MSFT"]):
        d.check(f"old{i}", STORY.replace("Apple", ticker), ticker)
    assert set(d._buckets) == {"AAPL", "TSLA", "MSFT"}
    for i in range(3):
        d.check(f"new{i}", f"Oracle story number {i} about databases, clouds and quarterly revenue", "ORCL")
    assert set(d._buckets) == {"ORCL"} and len(d) == 3
    assert d.check("again", STORY, "AAPL") == ""  # forgotten, not found through a stale bucket
