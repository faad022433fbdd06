"""Stream processors (Faust): ingest, scoring, sink. Built in issue 3; scoring calls models.classifier."""
