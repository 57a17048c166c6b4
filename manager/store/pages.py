"""Reading a whole offset-paged store listing, a page at a time."""
from __future__ import annotations

from typing import Any, Callable, Iterator

__all__ = ["offset_pages"]

#: documents asked per page (every listing allows up to MAX_LIST_LIMIT)
PAGE = 200


def offset_pages(lister: Callable[..., list[dict[str, Any]]], *, max_docs: int | None = None,
                 **filters: Any) -> Iterator[dict[str, Any]]:
    """Every document of ``lister(limit=, offset=, **filters)`` (a store's ``list_*``
    method), in its order, :data:`PAGE` at a time; the pages stop after the first short
    one, or once ``max_docs`` documents were asked for (None: no bound).

    A caller that changes what the listing filters on while it reads (a status it
    lists by) should take ``list(...)`` first: offsets shift under a moving listing.
    """
    offset = 0
    while max_docs is None or offset < max_docs:
        page = lister(limit=PAGE, offset=offset, **filters)
        yield from page
        if len(page) < PAGE:
            return
        offset += PAGE
