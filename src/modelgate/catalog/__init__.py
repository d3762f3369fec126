"""Model catalogue: models, aliases, pricing and provider routes."""
