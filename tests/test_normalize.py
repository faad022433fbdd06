from streams.normalize import find_urls, looks_binary, normalize


def test_html_entities_tags_urls_whitespace():
    raw = "<p>Apple &amp;amp; <b>Microsoft</b>\u200b rally</p><br/>see https://t.co/x1?a=b now\t\n "
    assert normalize(raw) == "Apple & Microsoft rally see now"


def test_unicode_nfkc_and_controls():
    assert normalize("ＡＰＰＬ\x07 up ½") == "APPL up 1⁄2"


def test_idempotent():
    for text in ("<i>a</i> &lt;b&gt;", "x  y", "http://a.b/c d", "&amp;amp;"):
        once = normalize(text)
        assert normalize(once) == once


def test_script_removed_and_urls_found():
    assert normalize("<script>alert(1)</script>ok") == "ok"
    assert find_urls("read https://x.com/a, then www.y.org.") == ["https://x.com/a", "www.y.org"]


def test_binary_detection():
    assert looks_binary("abc\x00def")
    assert looks_binary("\x01\x02\x03\x04ab")
    assert not looks_binary("plain text\nwith lines\t")
