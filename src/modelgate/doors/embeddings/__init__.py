"""The OpenAI embeddings dialect: ``wire`` (request model and rendering) and ``door``."""
