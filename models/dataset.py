"""Labelled text sets: the CSVs in ``data_dir`` or the same sets by name from the Hugging Face hub.

A folder holds a task when it has that task's CSV (``sent_{split}.csv`` / ``topic_{split}.csv``,
columns ``text,label``); labels are mapped onto :mod:`models.labels` on load.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from models.labels import LABELS, TASKS, Task, source_to_index

FILE_PREFIX: dict[Task, str] = {"sentiment": "sent", "topic": "topic"}
SUBDIR: dict[Task, str] = {
    "sentiment": "twitter_financial_news_sentiment",
    "topic": "twitter_financial_news_topic",
}
HUB_NAMES: dict[Task, str] = {
    "sentiment": "zeroshot/twitter-financial-news-sentiment",
    "topic": "zeroshot/twitter-financial-news-topic",
}
SPLIT_FILES = {"train": "train", "valid": "valid", "validation": "valid"}


@dataclass(frozen=True)
class LabelledTexts:
    """Texts of one task with label indices into ``LABELS[task]``."""

    task: Task
    texts: list[str]
    labels: list[int]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError("texts and labels differ in length")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def label_names(self) -> tuple[str, ...]:
        return LABELS[self.task]

    def counts(self) -> list[int]:
        out = [0] * len(self.label_names)
        for y in self.labels:
            out[y] += 1
        return out

    def sample(self, n: int | None, seed: int = 0) -> "LabelledTexts":
        """A reproducible random subset of at most n rows (all rows when n is None)."""
        if n is None or n >= len(self):
            return self
        idx = sorted(random.Random(seed).sample(range(len(self)), n))
        return LabelledTexts(self.task, [self.texts[i] for i in idx], [self.labels[i] for i in idx])

    def split(self, fraction: float, seed: int = 0) -> tuple["LabelledTexts", "LabelledTexts"]:
        """Stratified split into (rest, held-out fraction)."""
        rng = random.Random(seed)
        by_label: dict[int, list[int]] = {}
        for i, y in enumerate(self.labels):
            by_label.setdefault(y, []).append(i)
        held: list[int] = []
        for idx in by_label.values():
            rng.shuffle(idx)
            held.extend(idx[: max(1, round(len(idx) * fraction))])
        held_set = set(held)
        rest = [i for i in range(len(self)) if i not in held_set]
        pick = lambda ids: LabelledTexts(self.task, [self.texts[i] for i in ids], [self.labels[i] for i in ids])  # noqa: E731
        return pick(rest), pick(sorted(held))


def read_csv(path: Path, task: Task) -> LabelledTexts:
    """Read a ``text,label`` CSV; a clear ValueError names the file and row of any bad line."""
    texts: list[str] = []
    labels: list[int] = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"text", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected a header with columns 'text,label', got {reader.fieldnames}")
        for row_no, row in enumerate(reader, start=2):
            try:
                labels.append(source_to_index(task, int(row["label"])))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{row_no}: bad label {row['label']!r} ({exc})") from None
            texts.append(row["text"] or "")
    return LabelledTexts(task, texts, labels)


def csv_path(folder: Path, task: Task, split: str) -> Path:
    return Path(folder) / f"{FILE_PREFIX[task]}_{SPLIT_FILES[split]}.csv"


def tasks_in(folder: Path) -> dict[Task, Path]:
    """The tasks a folder of validation CSVs holds (``sent_valid.csv``, ``topic_valid.csv``)."""
    found = {task: csv_path(folder, task, "valid") for task in TASKS}
    return {task: path for task, path in found.items() if path.is_file()}


def load_local(data_dir: Path, task: Task, split: str) -> LabelledTexts:
    """Load a split from ``data_dir/<task subdir>/`` or, failing that, ``data_dir/`` itself."""
    for folder in (Path(data_dir) / SUBDIR[task], Path(data_dir)):
        path = csv_path(folder, task, split)
        if path.is_file():
            return read_csv(path, task)
    raise FileNotFoundError(
        f"no {task} {split} data under {data_dir}: expected {SUBDIR[task]}/{csv_path(Path('.'), task, split).name}; "
        "set SENTIMON_DATA_DIR to the folder that holds it"
    )


def load_hub(task: Task, split: str) -> LabelledTexts:
    """Download the same CSVs by data-set name from the Hugging Face hub (needs network access)."""
    from huggingface_hub import hf_hub_download

    filename = csv_path(Path("."), task, split).name
    try:
        path = hf_hub_download(HUB_NAMES[task], filename, repo_type="dataset")
    except Exception as exc:  # offline, hub unreachable, missing file: all mean "use local data"
        raise RuntimeError(
            f"could not fetch {filename} of {HUB_NAMES[task]} from the hub ({type(exc).__name__}: {exc}); "
            "use SENTIMON_DATA_SOURCE=local with SENTIMON_DATA_DIR pointing at the CSVs"
        ) from exc
    return read_csv(Path(path), task)


def load(task: Task, split: str, data_dir: Path, source: str = "local") -> LabelledTexts:
    """Load one task's split from the configured source."""
    return load_hub(task, split) if source == "hub" else load_local(data_dir, task, split)
