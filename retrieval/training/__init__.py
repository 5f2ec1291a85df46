"""Training citewise's own scorer for one index: data from the corpus (or the user's labels), then a model."""
