"""collab.packets' JSON for Socket.IO packets: orjson encodes what it
encodes as the json module would, the json module the rest; decoding is
engine.io's, as before."""

from __future__ import annotations

import json
import math

import pytest

from collab.packets import CollabPacket

J = CollabPacket.json


@pytest.mark.parametrize(
    "value",
    [
        ["chat:send", {"text": "héllo ✓", "clientMessageId": "m-1"}],
        {"sid": "abc", "n": 2**63 - 1, "f": 0.5, "none": None, "t": True},
        [],
        "plain",
    ],
)
def test_what_orjson_encodes_decodes_to_the_same_value(value):
    assert J.loads(J.dumps(value)) == value
    assert json.loads(J.dumps(value)) == json.loads(json.dumps(value))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"\\ud800"', "\ud800"),  # a lone surrogate: orjson refuses, json keeps it
        ("123456789012345678901234567890", 123456789012345678901234567890),  # past 64 bits
    ],
)
def test_decoding_is_the_json_module_s(text, expected):
    assert J.loads(text) == expected


def test_nan_and_huge_integers_are_decoded_and_refused_as_engine_io_does():
    assert math.isnan(J.loads("NaN"))
    with pytest.raises(ValueError):
        J.loads("1" * 101)  # engine.io's guard against huge integers
    with pytest.raises(ValueError):
        J.loads("{not json")


def test_what_orjson_cannot_encode_is_encoded_by_json():
    assert J.dumps({1: "a"}) == '{"1":"a"}'
    assert J.dumps([2**70]) == f"[{2**70}]"
    assert J.dumps("\ud800") == '"\\ud800"'


@pytest.mark.parametrize(
    "text",
    ['["x",{"a":[1,2.5,null,true]}]', "9" * 100, '{"sid":"abc"}', '"\\u00e9"', "-0", "1e400"],
)
def test_decoding_is_what_engine_io_s_loads_gives_with_one_decoder(text):
    """One decoder made once, not one per call: the same values as engine.io's ``loads``."""
    from engineio import json as engineio_json

    assert repr(J.loads(text)) == repr(engineio_json.loads(text))
