"""The operators' dashboard: server-rendered Jinja2 pages, HTMX partials and Plotly
figures, mounted into the API app by ``app.include_router(web.routes.router)``.

Modules: :mod:`web.routes` (the router), :mod:`web.pages` (one module per page),
:mod:`web.figures`, :mod:`web.formatting`, :mod:`web.templating`, :mod:`web.errors`,
:mod:`web.assets` and :mod:`web.vendor`. ``web`` reads through ``manager`` (the read
model, jobs, the shared store) and never imports ``api``.
"""
