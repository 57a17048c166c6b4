"""Discovery of strategy families (plugins).

Two sources, merged by family name (:attr:`Strategy.name`):

1. **Built-ins**: every concrete :class:`Strategy` subclass *defined* in a
   module of the :mod:`simulator.strategies` package (modules are found with
   :func:`pkgutil.iter_modules` and imported; a class merely imported into a
   module is not counted twice).
2. **Installed plugins**: entry points of the group ``cohortlab.strategies``
   (``importlib.metadata.entry_points(group=...)``). An entry point may load a
   :class:`Strategy` subclass (instantiated with no arguments) or an instance.
   A distribution declares one in its ``pyproject.toml``::

       [project.entry-points."cohortlab.strategies"]
       my_family = "my_package.my_module:MyFamily"

A module or plugin that fails to import or to instantiate, or that does not
load a Strategy, is skipped with a :class:`StrategyPluginWarning` naming it.
Two *different* classes claiming the same family name are an error naming both
origins. Discovery runs once (thread-safe) and is cached; :func:`refresh`
forces a new scan (after installing a plugin in a running process).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import pkgutil
import threading
import warnings
from typing import Any

from simulator.strategies.base import Strategy, StrategyError

#: Entry-point group scanned for third-party strategy families.
ENTRY_POINT_GROUP = "cohortlab.strategies"

__all__ = [
    "ENTRY_POINT_GROUP",
    "StrategyPluginWarning",
    "available",
    "get_strategy",
    "all_strategies",
    "origin",
    "refresh",
]


class StrategyPluginWarning(UserWarning):
    """A strategy module or plugin could not be loaded and was skipped."""


_lock = threading.Lock()
_families: dict[str, Strategy] | None = None
_origins: dict[str, str] = {}


def _is_family_class(obj: Any) -> bool:
    return (
        isinstance(obj, type)
        and issubclass(obj, Strategy)
        and obj is not Strategy
        and not inspect.isabstract(obj)
        and isinstance(getattr(obj, "name", None), str)
        and bool(obj.name)
    )


class _Collector:
    def __init__(self) -> None:
        self.families: dict[str, Strategy] = {}
        self.origins: dict[str, str] = {}

    def add(self, strategy: Strategy, where: str) -> None:
        name = strategy.name
        known = self.families.get(name)
        if known is not None:
            if type(known) is type(strategy):
                return  # the same class reached twice (module scan and entry point)
            raise StrategyError(
                f"strategy family name {name!r} is defined twice: by {self.origins[name]} and by {where}"
            )
        self.families[name] = strategy
        self.origins[name] = where


def _warn(message: str) -> None:
    warnings.warn(message, StrategyPluginWarning, stacklevel=4)


def _scan_package(out: _Collector) -> None:
    package = importlib.import_module("simulator.strategies")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        modname = f"{package.__name__}.{info.name}"
        try:
            module = importlib.import_module(modname)
        except Exception as exc:  # a broken module must not take the registry down
            _warn(f"strategy module {modname} failed to import and was skipped: {type(exc).__name__}: {exc}")
            continue
        for obj in list(vars(module).values()):
            if _is_family_class(obj) and obj.__module__ == module.__name__:
                where = f"{obj.__module__}.{obj.__qualname__}"
                try:
                    out.add(obj(), where)
                except StrategyError:
                    raise
                except Exception as exc:
                    _warn(f"strategy class {where} could not be instantiated and was skipped: "
                          f"{type(exc).__name__}: {exc}")


def _scan_entry_points(out: _Collector) -> None:
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value)):
        dist = getattr(getattr(ep, "dist", None), "name", None)
        where = f"entry point {ep.name!r} = {ep.value!r}" + (f" (distribution {dist})" if dist else "")
        try:
            obj = ep.load()
        except Exception as exc:
            _warn(f"strategy plugin {ep.name!r} ({ep.value}) failed to import and was skipped: "
                  f"{type(exc).__name__}: {exc}")
            continue
        if _is_family_class(obj):
            try:
                strategy = obj()
            except Exception as exc:
                _warn(f"strategy plugin {ep.name!r} ({ep.value}) could not be instantiated and was skipped: "
                      f"{type(exc).__name__}: {exc}")
                continue
        elif isinstance(obj, Strategy) and isinstance(getattr(obj, "name", None), str) and obj.name:
            strategy = obj
        else:
            _warn(f"strategy plugin {ep.name!r} ({ep.value}) is not a Strategy subclass or instance "
                  f"(got {obj!r}) and was skipped")
            continue
        out.add(strategy, where)


def _registry() -> dict[str, Strategy]:
    global _families, _origins
    families = _families
    if families is not None:
        return families
    with _lock:
        if _families is None:
            found = _Collector()
            _scan_package(found)
            _scan_entry_points(found)
            _origins = dict(sorted(found.origins.items()))
            _families = dict(sorted(found.families.items()))
        return _families


def refresh() -> None:
    """Forget the cached discovery; the next call scans modules and entry points again."""
    global _families, _origins
    with _lock:
        _families = None
        _origins = {}


def available() -> list[str]:
    """Sorted names of all discovered strategy families.

    Raises:
        StrategyError: two different classes claim the same family name.
    """
    return list(_registry())


def all_strategies() -> dict[str, Strategy]:
    """Family name -> strategy instance (a new dict, sorted by name; the
    instances are shared).

    Raises:
        StrategyError: two different classes claim the same family name.
    """
    return dict(_registry())


def get_strategy(name: str) -> Strategy:
    """The strategy instance of family ``name`` (the same instance every call).

    Raises:
        StrategyError: unknown name (the message lists the available families),
            or two different classes claim the same family name.
    """
    families = _registry()
    try:
        return families[name]
    except (KeyError, TypeError):
        raise StrategyError(
            f"unknown strategy family {name!r}; available: {', '.join(families) or '(none)'}"
        ) from None


def origin(name: str) -> str:
    """Where family ``name`` came from: ``module.Class`` for built-ins, the
    entry point and distribution for plugins.

    Raises:
        StrategyError: unknown name.
    """
    get_strategy(name)
    return _origins[name]
