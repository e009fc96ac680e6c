"""Unpickling into objects laid out as new ones, whose attribute reads run at full speed.

On CPython 3.11 a new instance of a plain class keeps its attributes in a compact array, and the
interpreter's specialised attribute reads go straight to it. Reading the instance's ``__dict__``
replaces that array by a dict for good, and every later attribute read of the instance takes a
slower path. Pickling an object reads its ``__dict__`` (its state), and so does unpickling one
(``pickle`` fills the new object's ``__dict__``): a River forest predicts and learns 5-7% slower
per event once checkpointed, or restored from a checkpoint, than one that never was
(docs/performance.md).

:func:`loads` unpickles as :func:`pickle.loads` does, but sets each object's state attribute by
attribute with ``object.__setattr__``, as ``__init__`` does, which keeps the compact layout (an
object with its own ``__setstate__`` or ``__setattr__``, or a state key that a class's data
descriptor owns, gets its state as :mod:`pickle` gives it). :func:`relaid` is a copy of an object
in that layout: what the owner of an object it has just pickled goes on with.

It runs :mod:`pickle`'s Python implementation, about five times slower than its C one (4 ms for a
forest of 3 trees that pickles to 40 kB): for checkpoints, not for messages. Like
:func:`pickle.loads`, it runs code named in the bytes: only for bytes this service wrote.

>>> from river import stats
>>> mean = stats.Mean()
>>> mean.update(2.0)
>>> has_instance_dict(mean)  # new
False
>>> data = pickle.dumps(mean)
>>> has_instance_dict(mean)  # pickled
True
>>> restored = loads(data)
>>> restored.get(), has_instance_dict(restored), has_instance_dict(pickle.loads(data))
(2.0, False, True)
>>> copy = relaid(mean)
>>> copy.update(4.0)
>>> copy.get(), has_instance_dict(copy)
(3.0, False)
"""
from __future__ import annotations

import functools
import gc
import io
import pickle
import sys

__all__ = ["has_instance_dict", "instances_with_dict", "loads", "relaid"]


@functools.lru_cache(maxsize=4096)
def _owned_by_descriptor(cls: type, name: str) -> bool:
    """Whether a data descriptor of ``cls`` (a property with a setter, a slot...) handles ``name``."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            attribute = type(klass.__dict__[name])
            return hasattr(attribute, "__set__") or hasattr(attribute, "__delete__")
    return False


class _Unpickler(pickle._Unpickler):
    """:mod:`pickle`'s Python unpickler with its ``BUILD`` step setting attributes one by one."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        cls = type(inst)
        if (getattr(inst, "__setstate__", None) is not None or cls.__setattr__ is not object.__setattr__
                or not cls.__dictoffset__):  # (no instance dict: slots only)
            self.stack.append(state)
            super().load_build()  # pickle's own way
            return
        slotstate = None
        if isinstance(state, tuple) and len(state) == 2:
            state, slotstate = state
        if state:
            intern, set_attribute = sys.intern, object.__setattr__
            for name, value in state.items():
                if type(name) is str and not _owned_by_descriptor(cls, name):
                    set_attribute(inst, intern(name), value)
                else:
                    inst.__dict__[name] = value
        if slotstate:
            for name, value in slotstate.items():
                setattr(inst, name, value)

    dispatch[pickle.BUILD[0]] = load_build


def loads(data: bytes):
    """The object pickled in ``data``, its instances laid out as new ones (see the module)."""
    return _Unpickler(io.BytesIO(data)).load()


def relaid(obj):
    """A copy of ``obj`` (through a pickle) whose instances are laid out as new ones."""
    return loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def has_instance_dict(obj) -> bool:
    """Whether ``obj`` keeps its attributes in a dict of its own rather than in the compact layout
    of a new instance, told without reading its ``__dict__`` (which would make one): the garbage
    collector's view of what it refers to holds that dict, its attributes by name. For tests."""
    missing = object()
    return any(type(referent) is dict and referent
               and all(type(name) is str and getattr(obj, name, missing) is value for name, value in referent.items())
               for referent in gc.get_referents(obj))


def instances_with_dict(root, module_prefix: str = "") -> list:
    """The objects reachable from ``root`` (their classes' modules starting with ``module_prefix``)
    for which :func:`has_instance_dict` holds. For tests."""
    seen, found, todo = {id(root)}, [], [root]
    while todo:
        obj = todo.pop()
        if type(obj).__module__.startswith(module_prefix) and has_instance_dict(obj):
            found.append(obj)
        for referent in gc.get_referents(obj):
            if id(referent) not in seen and not isinstance(referent, type):
                seen.add(id(referent))
                todo.append(referent)
    return found
