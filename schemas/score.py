"""What the scoring stage produces (topic ``scores``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import Event, UtcTime
from schemas.document import Document


class Score(Event):
    """The classifier's verdict on one document. ``score`` = P(positive) - P(negative), in [-1, 1]."""

    schema_version: Literal[1] = 1
    doc_id: str
    model: str = Field(description="model name that produced the score")
    model_version: str
    scored_at: UtcTime
    sentiment: Literal["negative", "neutral", "positive"]
    p_negative: float = Field(ge=0, le=1)
    p_neutral: float = Field(ge=0, le=1)
    p_positive: float = Field(ge=0, le=1)
    score: float = Field(ge=-1, le=1)
    topic: str
    topic_confidence: float = Field(ge=0, le=1)


class ScoredDocument(Event):
    """A document with its score: the message on the scores topic, all the sink needs to store both."""

    schema_version: Literal[1] = 1
    document: Document
    score: Score
