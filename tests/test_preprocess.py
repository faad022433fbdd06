from hypothesis import given, settings, strategies as st

from models.preprocess import check_text, prepare


def test_prepare_replaces_urls_entities_and_spaces():
    assert prepare("Apple &amp; Tesla  up\n https://t.co/AbC123 now") == "Apple & Tesla up http now"
    assert prepare("see www.example.com/x?y=1") == "see http"


def test_prepare_removes_control_characters():
    assert prepare("a\u200bb\x07c") == "a b c"


def test_check_text_cases():
    assert check_text("Shares jump", 100) == ("Shares jump", None, False)
    assert check_text("Zölle".encode(), 100) == ("Zölle", None, False)
    text, error, _ = check_text(b"\xff\xfe\x00\x01", 100)
    assert text is None and "not valid UTF-8" in error
    assert check_text("ab\x00cd", 100)[1] == "binary input: contains NUL bytes"
    assert check_text("\x01\x02\x03\x04abc", 100)[1] == "binary input: mostly control characters"
    assert check_text("   \n ", 100)[1] == "empty text: nothing to score"
    assert check_text(None, 100)[1] == "not text: got NoneType"
    text, error, truncated = check_text("word " * 100, 50)
    assert error is None and truncated and len(text) <= 50


# the per-character definitions the fast paths for ASCII text must match exactly
def _reference_prepare(text: str) -> str:
    import html
    import unicodedata

    from models.preprocess import SPACE_RE, URL_RE, URL_TOKEN

    text = URL_RE.sub(URL_TOKEN, unicodedata.normalize("NFKC", html.unescape(text)))
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return SPACE_RE.sub(" ", text).strip()


def _reference_controls(text: str) -> int:
    import unicodedata

    return sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r")


def test_every_ascii_character_is_prepared_and_counted_as_by_its_unicode_category():
    from models.preprocess import control_count

    for code in range(128):
        ch = chr(code)
        text = f"a{ch}b &amp;{ch}"
        assert prepare(text) == _reference_prepare(text), repr(ch)
        assert control_count(text) == _reference_controls(text), repr(ch)


_ALPHABET = st.sampled_from([chr(c) for c in range(128)] + ["é", "\u200b", "\u00a0", "\u2028", "\ufeff", "ｆ", "😀"])


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=60) | st.text(max_size=40))
def test_prepare_and_control_count_match_their_per_character_definition(text):
    from models.preprocess import control_count

    assert prepare(text) == _reference_prepare(text)
    assert control_count(text) == _reference_controls(text)
