"""The OpenAI Chat Completions dialect: ``door`` (parse, meter, answer) and ``render`` (JSON and
SSE chunks). Its wire models are the chat shape every provider speaks, so they stay below both, in
``wire/chat.py``."""
