"""The cohortlab HTTP API (FastAPI): ``uvicorn api.app:app``.

Routers per resource (:mod:`api.routers`), pydantic schemas at the edge
(:mod:`api.schemas`), bearer-token auth and other dependencies (:mod:`api.deps`),
RFC 9457 problem documents (:mod:`api.problems`), request-latency middleware
(:mod:`api.middleware`), offline API docs (:mod:`api.docs`) and the app
(:mod:`api.app`). The use cases, the read model and jobs live in ``manager``;
nothing imports ``api``.
"""
