"""The Images door (``POST /v1/images/generations``): OpenAI's shape, priced per image."""
