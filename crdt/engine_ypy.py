"""The y-py engine (the older binding of the same Rust core), for the ``ypy`` extra."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import y_py as Y

from crdt.engine import contained, shape_parts, writable
from crdt.errors import MalformedUpdate
from crdt.types import StateVector, Update
from crdt.updates import check_state_vector, check_update

__all__ = ["YpyEngine"]


class YpyEngine:
    """An :class:`crdt.engine.Engine` over ``y_py.YDoc``."""

    __slots__ = ("_doc",)

    def __init__(self) -> None:
        self._doc = Y.YDoc(client_id=secrets.randbits(32))

    @property
    def client_id(self) -> int:
        return int(self._doc.client_id)

    def apply_update(self, update: Update) -> None:
        # y-py aborts the process on some malformed updates: check here too,
        # whatever the caller did.
        check_update(update)
        with contained("update"):
            Y.apply_update(self._doc, update)

    def state_vector(self) -> StateVector:
        return bytes(Y.encode_state_vector(self._doc))

    def diff(self, state_vector: StateVector) -> Update:
        check_state_vector(state_vector)  # y-py aborts on a forged entry count
        with contained("state vector"):
            return bytes(Y.encode_state_as_update(self._doc, state_vector))

    def full_state(self) -> Update:
        return bytes(Y.encode_state_as_update(self._doc))

    def read_map(self, root: str) -> dict[str, Any]:
        value = orjson.loads(self._doc.get_map(root).to_json())
        return dict(value) if isinstance(value, dict) else {}

    def map_size(self, root: str) -> int:
        return len(self._doc.get_map(root))

    def read_array(self, root: str) -> list[Any]:
        value = orjson.loads(self._doc.get_array(root).to_json())
        return list(value) if isinstance(value, list) else []

    def set_map_fields(self, root: str, fields: Mapping[str, Any]) -> Update:
        writable(fields)
        target = self._doc.get_map(root)

        def write(txn: Any) -> None:
            for key, value in fields.items():
                target.set(txn, key, value)

        return self._capture(write)

    def delete_map_keys(self, root: str, keys: Iterable[str]) -> Update:
        target = self._doc.get_map(root)
        present = [key for key in keys if key in target]

        def write(txn: Any) -> None:
            for key in present:
                target.pop(txn, key)

        return self._capture(write)

    def append_map(self, root: str, fields: Mapping[str, Any]) -> Update:
        writable(fields)
        target = self._doc.get_array(root)
        return self._capture(lambda txn: target.append(txn, Y.YMap(dict(fields))))  # type: ignore[call-arg,misc]

    def set_item_fields(self, root: str, index: int, fields: Mapping[str, Any]) -> Update:
        writable(fields)
        item = self._doc.get_array(root)[index]
        if not isinstance(item, Y.YMap):
            raise MalformedUpdate(f"item {index} of {root!r} is not a map")

        def write(txn: Any) -> None:
            for key, value in fields.items():
                item.set(txn, key, value)

        return self._capture(write)

    def put_shapes(
        self, root: str, shapes: Mapping[str, Mapping[str, Any]], delete: Iterable[str] = ()
    ) -> Update:
        made = {key: _shape_map(fields) for key, fields in shapes.items()}
        target = self._doc.get_map(root)
        gone = [key for key in delete if key in target]

        def write(txn: Any) -> None:
            for key in gone:
                target.pop(txn, key)
            for key, value in made.items():
                target.set(txn, key, value)

        return self._capture(write)

    def _capture(self, write: Any) -> Update:
        # y-py cannot unsubscribe a document observer, so the update is
        # computed as the difference from the state before the write.
        before = Y.encode_state_vector(self._doc)
        with contained("write"), self._doc.begin_transaction() as txn:  # type: ignore[misc,call-arg]
            write(txn)
        return bytes(Y.encode_state_as_update(self._doc, before))


def _shape_map(fields: Mapping[str, Any]) -> Any:
    prelim: dict[str, Any] = {}
    for key, kind, value in shape_parts(fields):
        if kind == "text":
            prelim[key] = Y.YText(value)
        elif kind == "array":
            prelim[key] = Y.YArray(value)  # type: ignore[call-arg,misc]
        else:
            prelim[key] = value
    return Y.YMap(prelim)  # type: ignore[call-arg,misc]
