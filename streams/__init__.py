"""Stream processors (Faust): ingest, scoring, sink; scoring calls models.classifier."""
