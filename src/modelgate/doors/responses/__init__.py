"""The OpenAI Responses dialect: ``wire`` (request models), ``door``, ``translate`` (to the chat
shape), ``render`` (answers and events), ``state`` (stored responses, read and kept beside the door;
the SQL is ``store/responses.py``) and ``routes`` (``GET``/``DELETE /v1/responses/{id}`` …)."""
