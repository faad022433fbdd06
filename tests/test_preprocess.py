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
