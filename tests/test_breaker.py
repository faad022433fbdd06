from streams.triton.breaker import CircuitBreaker


def test_opens_after_threshold_fails_fast_then_lets_one_trial_through():
    b = CircuitBreaker(threshold=3, cooldown_s=10.0)
    for t in (0.0, 1.0):
        b.failure(t)
        assert b.state(t) == "closed" and b.allow(t)
    b.failure(2.0)
    assert b.state(2.0) == "open" and not b.allow(5.0) and b.retry_in(5.0) == 7.0
    assert b.state(12.5) == "half-open"
    assert b.allow(12.5) and not b.allow(12.6)  # one trial at a time
    b.failure(13.0)  # the trial failed: open again, a full cooldown
    assert b.state(20.0) == "open" and b.retry_in(20.0) == 3.0
    assert b.allow(23.5)
    b.success()
    assert b.state(23.6) == "closed" and b.failures == 0 and b.allow(23.6) and b.allow(23.6)


def test_a_success_resets_the_count_of_failures_in_a_row():
    b = CircuitBreaker(threshold=2, cooldown_s=1.0)
    b.failure(0.0)
    b.success()
    b.failure(0.1)
    assert b.state(0.1) == "closed"
