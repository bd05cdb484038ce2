"""The HTTP service: a framework-free service layer (``service``) under a thin FastAPI adapter (``app``).

Nothing is imported here on purpose: ``paraxl.serving.app`` pulls in FastAPI, which library users
that only want :class:`~paraxl.serving.service.ParaxlService` should not pay for.
"""
