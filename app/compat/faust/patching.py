"""Replacing a library's methods once, and only on the versions a mend was written against.

A mend copies a method body of the library and changes a few lines; on another release the copy
may undo upstream fixes or call internals that no longer exist. :func:`require` compares the
installed version of a distribution with those a mend names and raises :class:`UnsupportedVersion`
on any other; :func:`patch_once` then sets the replacement methods, once.

>>> require("no-such-distribution", ["1.0"], mend="a mend")
Traceback (most recent call last):
...
app.compat.faust.patching.UnsupportedVersion: a mend was written against no-such-distribution 1.0, but no-such-distribution is not installed

>>> class Greeter:
...     def hello(self):
...         return "hi"
>>> def hello(self):
...     return "hello"
>>> patch_once(Greeter, "_polite", {(Greeter, "hello"): hello}, "Greeter says hello")
<class 'app.compat.faust.patching.Greeter'>
>>> Greeter().hello(), patch_once(Greeter, "_polite", {}, "again: nothing to do") is Greeter
('hello', True)
"""
from __future__ import annotations

import importlib.metadata
import logging
from typing import Any, Callable, Collection, Mapping

log = logging.getLogger(__name__)


class UnsupportedVersion(RuntimeError):
    """A mend was asked to install on a version of a library it was not written against."""

    def __init__(self, mend: str, distribution: str, installed: str | None, supported: Collection[str]):
        self.mend = mend
        self.distribution = distribution
        self.installed = installed
        self.supported = tuple(supported)
        written = f"{mend} was written against {distribution} {' or '.join(self.supported)}"
        if installed is None:
            message = f"{written}, but {distribution} is not installed"
        else:
            message = (f"{written}, but {distribution} {installed} is installed: check that {installed} still has "
                       f"the problem, and the code the mend replaces, before adding {installed} to its versions")
        super().__init__(message)


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` (a name as pip knows it), or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def require(distribution: str, supported: Collection[str], *, mend: str) -> str:
    """Return the installed version of ``distribution`` if it is one of ``supported``; otherwise raise
    :class:`UnsupportedVersion`, naming ``mend``, the installed version and the supported ones."""
    installed = installed_version(distribution)
    if installed not in supported:
        raise UnsupportedVersion(mend, distribution, installed, supported)
    return installed


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
