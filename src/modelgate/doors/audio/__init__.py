"""The audio doors: ``POST /v1/audio/speech`` (speech.py), ``/v1/audio/transcriptions`` and
``/v1/audio/translations`` (transcribe.py: multipart uploads; files.py reads the file, render.py its
answer formats)."""
