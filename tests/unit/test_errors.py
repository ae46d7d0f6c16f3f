"""Error classes and their codes live in the package that owns them.

crdt/errors.py holds the base and the engine's errors (``CrdtCode``),
rooms/errors.py the rooms' (``RoomCode``), collab/errors.py the app's
(``AppCode``) and ``ALL_CODES``, every code of the three.
"""

from __future__ import annotations

import inspect
from collections import Counter
from types import ModuleType

import pytest

from collab import errors as app_errors
from crdt import errors as crdt_errors
from rooms import errors as room_errors

#: Lowest layer first: a class may take a code from its own layer or a lower one.
LAYERS: list[tuple[ModuleType, type[crdt_errors.WireCode]]] = [
    (crdt_errors, crdt_errors.CrdtCode),
    (room_errors, room_errors.RoomCode),
    (app_errors, app_errors.AppCode),
]


def error_classes(module: ModuleType) -> list[type[crdt_errors.CollabError]]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, crdt_errors.CollabError) and cls.__module__ == module.__name__
    ]


def test_the_code_enums_are_the_three_and_all_codes_is_their_union():
    assert set(crdt_errors.WireCode.__subclasses__()) == {enum for _, enum in LAYERS}
    assert list(app_errors.ALL_CODES) == [code for _, enum in LAYERS for code in enum]


def test_no_code_is_defined_twice():
    counts = Counter(code.value for code in app_errors.ALL_CODES)
    assert [value for value, n in counts.items() if n > 1] == []


@pytest.mark.parametrize("layer", range(len(LAYERS)), ids=[m.__name__ for m, _ in LAYERS])
def test_each_class_has_a_code_of_its_own_package(layer):
    module, own = LAYERS[layer]
    allowed = tuple(enum for _, enum in LAYERS[: layer + 1])
    classes = error_classes(module)
    assert classes, module.__name__
    for cls in classes:
        if "code" in vars(cls):
            assert type(cls.code) is own, f"{cls.__name__}.code {cls.code!r} is not {own.__name__}"
        else:  # inherited (TooManyStructs, InternalError): from this layer or below
            assert isinstance(cls.code, allowed), cls.__name__


def test_every_code_is_some_class_code():
    used = {cls.code for module, _ in LAYERS for cls in error_classes(module)}
    assert [code for code in app_errors.ALL_CODES if code not in used] == []


@pytest.mark.parametrize("module", [m for m, _ in LAYERS], ids=lambda m: m.__name__)
def test_no_module_re_exports_another_modules_errors(module):
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value):
            assert value.__module__ == module.__name__, f"{module.__name__} re-exports {name}"
