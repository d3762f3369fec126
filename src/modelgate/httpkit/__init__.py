"""The HTTP vocabulary shared by the doors (``doors/``), the service routers (``api/``) and the web
pages (``web/``): the app state and request dependencies (``deps``), the error envelopes
(``errors``) and the OpenAPI contract helpers (``contract``). It imports none of them, so every
arrow runs one way: ``api/``, ``doors/``, ``web/`` → ``httpkit/`` → the core below.

(Named ``httpkit`` rather than ``http`` so that it is never mistaken for the standard library.)
"""
