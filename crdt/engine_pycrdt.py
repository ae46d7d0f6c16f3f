"""The default engine: a pycrdt ``Doc``."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from pycrdt import Array, Doc, Map, TransactionEvent

from crdt.errors import EnginePanic, MalformedUpdate
from crdt.types import StateVector, Update
from crdt.updates import check_state_vector

__all__ = ["PycrdtEngine"]


class PycrdtEngine:
    """An :class:`crdt.engine.Engine` over ``pycrdt.Doc`` (garbage collection on,
    so deleted content is dropped from the encoded state)."""

    __slots__ = ("_doc",)

    def __init__(self) -> None:
        # 32-bit client ids, as Yjs in JavaScript makes them: yrs makes
        # 53-bit ones, which y-py (and older yrs) order differently when
        # two inserts conflict, so replicas would not converge.
        self._doc: Doc[Any] = Doc(client_id=secrets.randbits(32))

    @property
    def client_id(self) -> int:
        return int(self._doc.client_id)

    def apply_update(self, update: Update) -> None:
        try:
            self._doc.apply_update(update)
        except Exception as exc:  # noqa: BLE001 - any engine error is a bad update
            raise MalformedUpdate(f"update rejected by the engine: {exc}") from None
        except BaseException as exc:  # pyo3's PanicException is a BaseException
            if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
                raise
            raise EnginePanic("update rejected by the engine (panic)") from None

    def state_vector(self) -> StateVector:
        return bytes(self._doc.get_state())

    def diff(self, state_vector: StateVector) -> Update:
        check_state_vector(state_vector)  # y-py aborts on a forged entry count
        try:
            return bytes(self._doc.get_update(state_vector))
        except Exception:  # noqa: BLE001 - any engine error is a bad vector
            raise MalformedUpdate("state vector does not decode") from None

    def full_state(self) -> Update:
        return bytes(self._doc.get_update())

    def read_map(self, root: str) -> dict[str, Any]:
        value = self._doc.get(root, type=Map).to_py()
        return dict(value) if isinstance(value, dict) else {}

    def read_array(self, root: str) -> list[Any]:
        value = self._doc.get(root, type=Array).to_py()
        return list(value) if isinstance(value, list) else []

    def set_map_fields(self, root: str, fields: Mapping[str, Any]) -> Update:
        target = self._doc.get(root, type=Map)

        def write() -> None:
            for key, value in fields.items():
                target[key] = value

        return self._capture(write)

    def append_map(self, root: str, fields: Mapping[str, Any]) -> Update:
        target = self._doc.get(root, type=Array)
        return self._capture(lambda: target.append(Map(dict(fields))))

    def set_item_fields(self, root: str, index: int, fields: Mapping[str, Any]) -> Update:
        item = self._doc.get(root, type=Array)[index]
        if not isinstance(item, Map):
            raise MalformedUpdate(f"item {index} of {root!r} is not a map")

        def write() -> None:
            for key, value in fields.items():
                item[key] = value

        return self._capture(write)

    def _capture(self, write: Any) -> Update:
        """Run ``write`` in one transaction and return the update it produced."""
        captured: list[bytes] = []

        def on_commit(event: TransactionEvent) -> None:
            captured.append(bytes(event.update))

        subscription = self._doc.observe(on_commit)
        try:
            with self._doc.transaction():
                write()
        finally:
            self._doc.unobserve(subscription)
        return captured[0] if captured else b"\x00\x00"
