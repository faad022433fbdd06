"""Event contracts: versioned pydantic models, their exported JSON Schema (``schemas/json``), and the
ClickHouse DDL as ordered migrations (``schemas/migrations``, applied by ``sentimon db migrate``).

Raw inputs (:class:`NewsItem`, :class:`SocialPost`) reject unknown fields: a feed that changes shape
lands in the dead-letter topic with a reason instead of being half-read.
"""

from schemas.alert import Alert
from schemas.dead_letter import DeadLetter
from schemas.document import Document
from schemas.news import NewsItem
from schemas.score import Score, ScoredDocument
from schemas.social import SocialPost

EVENTS = {
    "news_item": NewsItem,
    "social_post": SocialPost,
    "document": Document,
    "score": Score,
    "scored_document": ScoredDocument,
    "dead_letter": DeadLetter,
    "alert": Alert,
}

__all__ = ["Alert", "DeadLetter", "Document", "NewsItem", "Score", "ScoredDocument", "SocialPost", "EVENTS"]
