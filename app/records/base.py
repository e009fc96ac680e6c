"""The base of every record: a Faust record that is also an Avro model."""

import json
from typing import Any

from dataclasses_avroschema.faust import AvroRecord

NAMESPACE = "fraud.records"


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
