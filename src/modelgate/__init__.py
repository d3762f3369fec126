"""modelgate: a self-hostable LLM API gateway compatible with the AI/ML API."""

__version__ = "0.1.0"
