"""The Anthropic Messages dialect: ``wire`` (request models), ``door``, ``translate`` (to the chat
shape and back, events included) and ``count`` (``/v1/messages/count_tokens``)."""
