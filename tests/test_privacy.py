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


from hypothesis import example, given, settings, strategies as st  # noqa: E402

from streams.privacy import EMAIL, MENTION, PHONE, _phone  # noqa: E402

# text where the patterns have something to find: digits with separators, '@', dots, words
_CONTACTISH = st.lists(st.sampled_from(list("0123456789 .-+()@_abcxyz") + ["\u00a0", "\n", ".com", "(555) "]),
                       max_size=60).map("".join)


@settings(max_examples=400, deadline=None)
@given(_CONTACTISH)
@example("call 12 345 67 now")  # the shortest phone: two digits, a separator, three digits
@example("+1 (12) 345-6789 or ab.c@x.co or @bob")
def test_skipping_patterns_whose_core_is_absent_changes_nothing(text):
    # scrub runs the e-mail and mention patterns only where '@' is, the phone pattern only where two
    # digits, a separator and three digits are: the same result as running every pattern everywhere
    unconditional = MENTION.sub(lambda m: "@user_" + hash_handle(m.group(1), KEY)[:8],
                                PHONE.sub(_phone, EMAIL.sub("[email]", text)))
    assert scrub(text, KEY) == unconditional
