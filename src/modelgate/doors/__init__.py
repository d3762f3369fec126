"""One front door per API dialect, all on the metered core (``gateway/core.py``).

``default_doors()`` lists the built-in ones; ``doors/asgi.py`` serves them.
"""

from __future__ import annotations

from modelgate.doors.base import Door
from modelgate.doors.chat import ChatDoor
from modelgate.doors.embeddings import EmbeddingsDoor
from modelgate.doors.messages import MessagesDoor
from modelgate.doors.responses import ResponsesDoor


def default_doors() -> list[Door]:
    return [ChatDoor(), MessagesDoor(), EmbeddingsDoor(), ResponsesDoor()]
