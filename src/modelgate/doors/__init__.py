"""One front door per API dialect, all on the metered core (``gateway/core.py``).

``default_doors()`` lists the built-in ones; ``doors/asgi.py`` serves them.
"""

from __future__ import annotations

from modelgate.doors.audio.speech import SpeechDoor
from modelgate.doors.audio.transcribe import TranscriptionsDoor, TranslationsDoor
from modelgate.doors.base import Door
from modelgate.doors.chat.door import ChatDoor
from modelgate.doors.embeddings.door import EmbeddingsDoor
from modelgate.doors.images.door import ImagesDoor
from modelgate.doors.images.edit import ImageEditsDoor
from modelgate.doors.messages.door import MessagesDoor
from modelgate.doors.responses.door import ResponsesDoor


def default_doors() -> list[Door]:
    return [
        ChatDoor(),
        MessagesDoor(),
        EmbeddingsDoor(),
        ResponsesDoor(),
        ImagesDoor(),
        ImageEditsDoor(),
        SpeechDoor(),
        TranscriptionsDoor(),
        TranslationsDoor(),
    ]
