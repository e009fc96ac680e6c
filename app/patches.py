"""Mending a library in place, once: the worker's fixes to faust-streaming (:mod:`app.recovery`,
:mod:`app.fetching`) replace methods of its classes when the app is imported.

>>> class Greeter:
...     def hello(self):
...         return "hi"
>>> def hello(self):
...     return "hello"
>>> patch_once(Greeter, "_polite", {(Greeter, "hello"): hello}, "Greeter says hello")
<class 'app.patches.Greeter'>
>>> Greeter().hello(), patch_once(Greeter, "_polite", {}, "again: nothing to do") is Greeter
('hello', True)
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)


def patch_once(owner: type, marker: str, replacements: Mapping[tuple[type, str], Callable[..., Any]],
               what: str) -> type:
    """Set each ``(class, name)`` of ``replacements`` to its function unless ``owner`` carries
    ``marker`` (set here), and log ``what`` at debug level; returns ``owner``."""
    if not getattr(owner, marker, False):
        for (cls, name), function in replacements.items():
            setattr(cls, name, function)
        setattr(owner, marker, True)
        log.debug("%s", what)
    return owner
