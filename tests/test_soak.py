from bench.soak import summarize, window_full_at


def _samples(window_full_min: float, minutes: int = 10, rate_per_min: int = 10_000) -> list[dict]:
    """RSS that grows 10 MB/min while the duplicate window fills, then stays flat (plus a small sawtooth)."""
    out = []
    for k in range(minutes * 12 + 1):
        t = k * 5.0
        filling = min(t / 60, window_full_min)
        out.append({"t_s": t, "backlog": 0, "ingested": int(t / 60 * rate_per_min),
                    "pipeline worker": 400 + 10 * filling + (1 if k % 2 else 0)})
    return out


def test_growth_is_also_measured_from_when_the_duplicate_window_was_full(tmp_path):
    result = {"samples": _samples(window_full_min=6), "dedup_window": 60_000, "published": 1, "stored": 1,
              "lost": 0, "counted_twice": 0, "capacity_docs_per_s": 166.0, "minutes": 10}
    lines: list[str] = []
    summarize(result, ["pipeline worker"], tmp_path, lines.append)
    rss = result["rss"]["pipeline worker"]
    assert result["window_full_s"] == 360.0
    assert rss["second_half_mb_per_min"] > 0.8  # the window still filling in minutes 5-6 looks like a leak
    assert abs(rss["steady_mb_per_min"]) < 0.2  # from minute 6 on it is flat
    assert (tmp_path / "soak.png").exists()


def test_a_window_never_full_gives_no_steady_figure(tmp_path):
    samples = _samples(window_full_min=20)
    assert window_full_at(samples, 500_000) is None
    result = {"samples": samples, "dedup_window": 500_000, "published": 1, "stored": 1, "lost": 0,
              "counted_twice": 0, "capacity_docs_per_s": 1.0, "minutes": 10}
    lines: list[str] = []
    summarize(result, ["pipeline worker"], tmp_path, lines.append)
    assert result["rss"]["pipeline worker"]["steady_mb_per_min"] is None
    assert any("not full" in line for line in lines)
