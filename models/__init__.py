"""Financial text classifiers: data, training, evaluation, the inference API (``models.classifier``)."""
