"""Pickles that unpickle into objects laid out as new ones, whose attribute reads run at full speed.

On CPython 3.11 a new instance of a plain class keeps its attributes in a compact array, and the
interpreter's specialised attribute reads go straight to it. Reading the instance's ``__dict__``
replaces that array by a dict for good, and every later attribute read of the instance takes a
slower path. Pickling an object reads its ``__dict__`` (its state), and so does unpickling one
(``pickle`` fills the new object's ``__dict__``): once checkpointed, or restored from a
checkpoint, a River forest predicts and learns 6-7% slower per event and a Half-Space-Trees
detector 45-55% slower than one that never was (docs/performance.md).

:func:`dumps` pickles as :func:`pickle.dumps` does, but tells the unpickler to set the state of
each instance of a plain class (one with no ``__reduce__``, ``__getstate__``, ``__setstate__``
or ``__setattr__`` of its own) with :func:`set_state`, attribute by attribute as ``__init__``
does, which keeps the compact layout. What it writes is read back by :func:`pickle.loads`. The
object pickled is left in the slower layout: its owner goes on with the copy read back.

>>> from river import stats
>>> mean = stats.Mean()
>>> mean.update(2.0)
>>> has_instance_dict(mean)  # new
False
>>> data = dumps(mean)
>>> has_instance_dict(mean)  # pickled
True
>>> restored = pickle.loads(data)
>>> restored.get(), has_instance_dict(restored), has_instance_dict(pickle.loads(pickle.dumps(mean)))
(2.0, False, True)
>>> restored.update(4.0)
>>> restored.get(), has_instance_dict(restored)
(3.0, False)
"""
from __future__ import annotations

import copyreg
import functools
import gc
import io
import pickle
import sys

__all__ = ["dumps", "has_instance_dict", "instances_with_dict", "set_state"]

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class statement's class, not a built-in type


def set_state(obj, state: dict) -> None:
    """Give ``obj`` the attributes in ``state`` as ``__init__`` would (one at a time); a name a data
    descriptor of its class owns (a property...) goes into its ``__dict__``, as :mod:`pickle` puts it."""
    owned, set_attribute, intern = _descriptor_names(type(obj)), object.__setattr__, sys.intern
    for name, value in state.items():
        if type(name) is str and name not in owned:
            set_attribute(obj, intern(name), value)  # (interned as pickle does: the class's code's own string)
        else:
            obj.__dict__[name] = value


@functools.lru_cache(maxsize=4096)
def _descriptor_names(cls: type) -> frozenset:
    """The names a data descriptor of ``cls`` handles (a property with a setter, a slot...)."""
    is_descriptor: dict[str, bool] = {}
    for klass in reversed(cls.__mro__):  # a class's own attribute hides its bases'
        for name, attribute in vars(klass).items():
            is_descriptor[name] = hasattr(type(attribute), "__set__") or hasattr(type(attribute), "__delete__")
    return frozenset(name for name, descriptor in is_descriptor.items() if descriptor)


@functools.lru_cache(maxsize=4096)
def _plain(cls: type) -> bool:
    """Whether instances of ``cls`` (a class defined in Python) pickle by ``object``'s own means into
    a dict of attributes."""
    return (cls.__flags__ & _HEAP_TYPE and cls.__dictoffset__ != 0 and cls.__reduce_ex__ is object.__reduce_ex__
            and cls.__reduce__ is object.__reduce__ and cls.__getstate__ is object.__getstate__
            and getattr(cls, "__setstate__", None) is None and cls.__setattr__ is object.__setattr__
            and not any(klass.__dict__.get("__slots__") for klass in cls.__mro__[:-1]))  # (empty ones: fine)


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj):
        cls = type(obj)
        if isinstance(obj, type) or not _plain(cls):
            return NotImplemented
        reduced = obj.__reduce_ex__(_PROTOCOL)
        if (len(reduced) != 5 or reduced[0] is not copyreg.__newobj__ or reduced[1] != (cls,)
                or type(reduced[2]) is not dict):
            return reduced
        return (*reduced, set_state)


def dumps(obj) -> bytes:
    """The pickle of ``obj``, whose plain instances :func:`pickle.loads` lays out as new ones."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=_PROTOCOL).dump(obj)
    return buffer.getvalue()


def has_instance_dict(obj) -> bool:
    """Whether ``obj`` keeps its attributes in a dict of its own rather than in the compact layout
    of a new instance, told without reading its ``__dict__`` (which would make one): the garbage
    collector's view of what it refers to holds that dict, its attributes by name. For tests."""
    missing = object()
    return any(type(referent) is dict and referent
               and all(type(name) is str and getattr(obj, name, missing) is value for name, value in referent.items())
               for referent in gc.get_referents(obj))


def instances_with_dict(root, module_prefix: str = "") -> list:
    """The objects reachable from ``root`` for which :func:`has_instance_dict` holds, among the
    instances of plain classes (those :func:`dumps` lays out) defined in modules whose names start
    with ``module_prefix``. For tests."""
    seen, found, todo = {id(root)}, [], [root]
    while todo:
        obj = todo.pop()
        cls = type(obj)
        if cls.__module__.startswith(module_prefix) and _plain(cls) and has_instance_dict(obj):
            found.append(obj)
        for referent in gc.get_referents(obj):
            if id(referent) not in seen and not isinstance(referent, type):
                seen.add(id(referent))
                todo.append(referent)
    return found
