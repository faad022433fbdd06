"""Decision calibration (models.calibrate): the choices follow the held-out rows and their rules."""

import numpy as np

from models.calibrate import neutral_offset, topic_strength


def test_topic_strength_moves_towards_the_prior_while_macro_f1_holds():
    rng = np.random.default_rng(0)
    n, k = 3000, 4
    y = rng.choice(k, n, p=[0.7, 0.2, 0.07, 0.03])
    weights = np.array([0.5, 1.2, 2.5, 4.0])  # class-weighted training favoured the rare classes
    logits = rng.normal(0, 1.0, (n, k))
    logits[np.arange(n), y] += 1.5
    logits += np.log(weights)  # what a weighted model's raw logits look like
    choice, grid = topic_strength(logits, y, weights)
    assert [c.value for c in grid] == [round(0.1 * i, 1) for i in range(11)]
    assert choice.accuracy >= grid[0].accuracy and choice.value > 0
    assert choice.macro_f1 >= grid[0].macro_f1 - 0.01
    # a zero tolerance on macro-F1 can only keep the strength at or below the tolerant choice
    strict, _ = topic_strength(logits, y, weights, f1_tolerance=0.0)
    assert strict.value <= choice.value and strict.macro_f1 >= grid[0].macro_f1


def test_neutral_offset_gives_up_neutral_calls_only_within_the_accuracy_tolerance():
    rng = np.random.default_rng(1)
    n = 3000
    y = rng.choice(3, n, p=[0.2, 0.6, 0.2])  # negative, neutral, positive
    z = rng.normal(0, 1.0, (n, 3))
    z[np.arange(n), y] += 1.2
    bayes = 1.2 * z + np.log([0.2, 0.6, 0.2])  # the exact posterior logits of this mixture
    logits = bayes.copy()
    logits[:, 1] += 0.8  # a model leaning to neutral
    choice, grid = neutral_offset(logits, y)
    base = next(c for c in grid if c.value == 0)
    best_accuracy = max(c.accuracy for c in grid)
    assert choice.value < 0 and choice.macro_f1 > base.macro_f1
    assert choice.accuracy >= best_accuracy - 0.003
    assert -1.2 <= choice.value <= -0.4
    assert neutral_offset(bayes, y)[0].value > choice.value + 0.4  # less to correct, a smaller offset
