from streams.privacy import hash_handle, scrub

KEY = b"test-key"


def test_emails_phones_mentions_scrubbed():
    text = "mail bob.smith+x@corp.example.co.uk or call +1 (555) 123-4567 / 555-987-6543, cc @Alice_99"
    out = scrub(text, KEY)
    assert "bob" not in out and "555" not in out and "Alice" not in out
    assert out.count("[email]") == 1 and out.count("[phone]") == 2
    assert "@user_" + hash_handle("alice_99", KEY)[:8] in out


def test_numbers_that_are_not_phones_survive():
    text = "$AAPL up 3.5% to 189.20, volume 1,234,567, Q3 2026"
    assert scrub(text, KEY) == text


def test_keyed_hash_stable_case_insensitive_and_key_dependent():
    assert hash_handle("@Bob", KEY) == hash_handle("bob", KEY)
    assert hash_handle("bob", KEY) != hash_handle("bob", b"other-key")
    assert len(hash_handle("bob", KEY)) == 16
