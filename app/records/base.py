"""The base of every record: a Faust record that is also an Avro model."""

import json
from typing import Any

from dataclasses_avroschema.faust import AvroRecord

NAMESPACE = "fraud.records"


class FieldDict(dict):
    """A record's fields as a plain dict (the Avro decoder's, or the one the writer takes), readable
    as attributes too, as a :class:`Record` is: the hot path's values, without a record object.

    >>> value = FieldDict({"transaction_id": "t-1", "label": None})
    >>> value.transaction_id, value.label is None
    ('t-1', True)
    >>> value.members
    Traceback (most recent call last):
    ...
    AttributeError: 'FieldDict' has no field 'members'
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__!r} has no field {name!r}") from None


class Record(AvroRecord, abstract=True, include_metadata=False):
    """A Faust record with an Avro schema (``avro_schema()``), generated from its fields.

    Faust's metadata (``__faust``) is left out of the payload: the Avro schema is the contract.
    """


    @classmethod
    def schema_dict(cls) -> dict[str, Any]:
        return cls.avro_schema_to_python()

    @classmethod
    def schema_text(cls) -> str:
        """The canonical text of the ``.avsc`` file for this record."""
        return json.dumps(cls.schema_dict(), indent=2) + "\n"
