"""The structural check's walk of a Yjs v1 update, in one pass.

:func:`crdt.updates.check_update` runs on every update a client sends, and
a whiteboard's usual update is one struct of a few dozen bytes (a point
appended to a stroke). Read through :class:`crdt.lib0.Decoder`, one method
call per integer, the check cost about three times as much as applying the
update (8 µs against 3, BENCHMARKS.md, issue 18). Here the same walk reads the bytes
with a local offset: an integer below 128 (nearly all of them) is an index
and a comparison, a value of a ContentAny is skipped without building it.

It accepts and refuses exactly what the Decoder-based walk did (the rules
are in crdt/updates.py's docstring; tests/unit/test_update_walk.py compares
the two on real and fuzzed updates). Every count and length is checked
against the bytes that remain before anything is read past it.
"""

from __future__ import annotations

from crdt.errors import MalformedMessage, MalformedUpdate
from crdt.lib0 import var_uint_at

__all__ = ["Walked", "walk_update"]

#: (struct count, client ids with structs, delete ranges, clock units the
#: delete set covers)
Walked = tuple[int, set[int], int, int]

_BIT8 = 0x80  # has origin
_BIT7 = 0x40  # has right origin
_BIT6 = 0x20  # has parent sub (map key)
_ORIGINS = _BIT8 | _BIT7
_BITS5 = 0x1F  # content ref
_GC, _DELETED, _JSON, _BINARY, _STRING, _EMBED, _FORMAT, _TYPE, _ANY, _DOC, _SKIP = range(11)
_MAX_TYPE_REF = 6
_XML_ELEMENT, _XML_HOOK = 3, 5
#: lib0 ``writeAny`` tags whose value is nothing more than the tag, and the
#: fixed sizes of the numeric ones.
_BARE_TAGS = frozenset((127, 126, 121, 120))
_FIXED_TAGS = {124: 4, 123: 8, 122: 8}
_MAX_DEPTH = 64


def walk_update(
    buf: bytes,
    max_clock: int,
    roots: set[str],
    blocks: list[tuple[int, int, int]],
    needs: dict[int, int],
) -> Walked:
    """Walk ``buf`` as a Yjs v1 update: its structs, then its delete set,
    and nothing after it. Adds the root names it inserts into to
    ``roots``, its runs of structs to ``blocks`` and what it depends on to
    ``needs``; raises :class:`MalformedUpdate` (the message names the
    fault and about where it is, never the content)."""
    size = len(buf)
    pos = 0
    total = 0
    clients: set[int] = set()
    try:
        # The client blocks: count, client, clock, then the structs.
        value, pos = _count(buf, pos, 3)
        for _ in range(value):
            count, pos = _count(buf, pos, 1)
            client, pos = _uint(buf, pos)
            clock, pos = _uint(buf, pos)
            if count:
                clients.add(client)
            start = clock
            for _ in range(count):
                info = buf[pos]
                pos += 1
                ref = info & _BITS5
                if ref in (_GC, _SKIP):
                    length = buf[pos]
                    pos += 1
                    if length & 0x80:
                        length, pos = _long(buf, pos - 1)
                    if length <= 0:
                        raise MalformedMessage("struct of zero length")
                    if clock + length > max_clock:
                        raise MalformedMessage(f"clock range ends past the limit of {max_clock}")
                    if ref == _SKIP:  # the clocks it skips are not in this update
                        if clock > start:
                            blocks.append((client, start, clock))
                        start = clock + length
                    clock += length
                    continue
                if ref > _DOC:
                    raise MalformedMessage(f"unknown content kind {ref}")
                if info & _ORIGINS:
                    if info & _BIT8:  # origin: (client, clock)
                        pos = _need_id(buf, pos, needs)
                    if info & _BIT7:  # right origin
                        pos = _need_id(buf, pos, needs)
                else:
                    parent_is_root = buf[pos]
                    pos += 1
                    if parent_is_root & 0x80:
                        parent_is_root, pos = _long(buf, pos - 1)
                    if parent_is_root == 1:
                        name, pos = _string(buf, pos)
                        roots.add(name)
                    elif parent_is_root == 0:
                        pos = _need_id(buf, pos, needs)  # parent item
                    else:
                        raise MalformedMessage("bad parent info")
                    if info & _BIT6:
                        pos = _skip_string(buf, pos)  # map key
                if ref == _ANY:
                    length = buf[pos]
                    pos += 1
                    if length & 0x80:
                        length, pos = _long(buf, pos - 1)
                    if length > size - pos:
                        raise MalformedMessage(f"declared count {length} exceeds the data")
                    for _ in range(length):
                        if buf[pos] == 117:  # an array (a point: two numbers)
                            pos = _skip_array(buf, pos + 1, 1)
                        else:
                            pos = _skip_any(buf, pos, 0)
                else:
                    length, pos = _content(buf, pos, ref)
                if length <= 0:
                    raise MalformedMessage("struct of zero length")
                if clock + length > max_clock:
                    raise MalformedMessage(f"clock range ends past the limit of {max_clock}")
                clock += length
            if clock > start:
                blocks.append((client, start, clock))
            total += count
        # The delete set: per client, (clock, length) ranges.
        ranges = covered = 0
        value, pos = _count(buf, pos, 2)
        for _ in range(value):
            client, pos = _uint(buf, pos)
            count, pos = _count(buf, pos, 2)
            for _ in range(count):
                clock, pos = _uint(buf, pos)
                length, pos = _uint(buf, pos)
                if clock + length > max_clock:
                    raise MalformedMessage(f"clock range ends past the limit of {max_clock}")
                if clock + length > needs.get(client, 0):
                    needs[client] = clock + length
                covered += length
            ranges += count
    except IndexError:
        raise MalformedUpdate(f"unexpected end of data (at byte {size})") from None
    except MalformedMessage as exc:
        raise MalformedUpdate(f"{exc} (at byte {min(pos, size)})") from None
    if pos < size:
        raise MalformedUpdate(f"{size - pos} trailing bytes after the delete set")
    return total, clients, ranges, covered


def _long(buf: bytes, pos: int) -> tuple[int, int]:
    """An unsigned LEB128 integer of more than one byte from ``pos``, and
    the offset after it. A Yjs client id, a random 32-bit number, is five
    bytes: up to five are read unrolled, longer ones by lib0's reader (at
    most 2**53 - 1). Past the end of ``buf``: IndexError."""
    value = buf[pos] & 0x7F
    shift = 7
    for at in range(pos + 1, pos + 5):
        byte = buf[at]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at + 1
        shift += 7
    return var_uint_at(buf, pos)


def _uint(buf: bytes, pos: int) -> tuple[int, int]:
    """An unsigned LEB128 integer at ``pos``, and the offset after it (where
    a call per integer costs little: once per client block, the delete set)."""
    value = buf[pos]
    if value & 0x80:
        return _long(buf, pos)
    return value, pos + 1


def _count(buf: bytes, pos: int, min_item_bytes: int) -> tuple[int, int]:
    """A count of following entries, each at least ``min_item_bytes`` long,
    refused if the bytes that remain cannot hold them (as Decoder.read_count),
    and the offset after it."""
    count, pos = _uint(buf, pos)
    if count * min_item_bytes > len(buf) - pos:
        raise MalformedMessage(f"declared count {count} exceeds the data")
    return count, pos


def _need_id(buf: bytes, pos: int, needs: dict[int, int]) -> int:
    """An item id (client, clock) the struct refers to: the update needs
    that client's clock past it."""
    client = buf[pos]
    pos += 1
    if client & 0x80:
        client, pos = _long(buf, pos - 1)
    clock = buf[pos]
    pos += 1
    if clock & 0x80:
        clock, pos = _long(buf, pos - 1)
    if clock + 1 > needs.get(client, 0):
        needs[client] = clock + 1
    return pos


def _bytes_end(buf: bytes, pos: int) -> tuple[int, int]:
    """A length-prefixed byte string: where it starts and ends."""
    length = buf[pos]
    pos += 1
    if length & 0x80:
        length, pos = _long(buf, pos - 1)
    end = pos + length
    if end > len(buf):
        raise MalformedMessage(f"declared length {length} exceeds the {len(buf) - pos} bytes left")
    return pos, end


def _string(buf: bytes, pos: int) -> tuple[str, int]:
    start, end = _bytes_end(buf, pos)
    try:
        return buf[start:end].decode("utf-8"), end
    except UnicodeDecodeError:
        raise MalformedMessage("string is not valid UTF-8") from None


def _skip_string(buf: bytes, pos: int) -> int:
    start, end = _bytes_end(buf, pos)
    raw = buf[start:end]
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessage("string is not valid UTF-8") from None
    return end


def _content(buf: bytes, pos: int, ref: int) -> tuple[int, int]:
    """An item's content of kind ``ref`` (not ContentAny): its length in
    clock units, and the offset after it."""
    if ref == _DELETED:
        length = buf[pos]
        pos += 1
        if length & 0x80:
            length, pos = _long(buf, pos - 1)
        return length, pos
    if ref == _STRING:
        start, end = _bytes_end(buf, pos)
        raw = buf[start:end]
        if raw.isascii():
            return len(raw), end
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessage("string is not valid UTF-8") from None
        # Yjs counts strings in UTF-16 code units.
        return len(text.encode("utf-16-le")) // 2, end
    if ref == _JSON:
        count, pos = _count(buf, pos, 1)
        for _ in range(count):
            pos = _skip_string(buf, pos)
        return count, pos
    if ref == _BINARY:
        return 1, _bytes_end(buf, pos)[1]
    if ref == _EMBED:
        return 1, _skip_string(buf, pos)
    if ref == _FORMAT:
        return 1, _skip_string(buf, _skip_string(buf, pos))
    if ref == _TYPE:
        type_ref = buf[pos]
        pos += 1
        if type_ref & 0x80:
            type_ref, pos = _long(buf, pos - 1)
        if type_ref > _MAX_TYPE_REF:
            raise MalformedMessage(f"unknown type reference {type_ref}")
        if type_ref in (_XML_ELEMENT, _XML_HOOK):
            pos = _skip_string(buf, pos)
        return 1, pos
    # _DOC: a guid, then options
    return 1, _skip_any(buf, _skip_string(buf, pos), 0)


def _skip_any(buf: bytes, pos: int, depth: int) -> int:
    """A lib0 ``writeAny`` value, read and checked but not built; the
    offset after it."""
    if depth > _MAX_DEPTH:
        raise MalformedMessage("value nested too deeply")
    tag = buf[pos]
    pos += 1
    if tag in _BARE_TAGS:
        return pos
    fixed = _FIXED_TAGS.get(tag)
    if fixed is not None:
        pos += fixed
        if pos > len(buf):
            raise MalformedMessage(
                f"declared length {fixed} exceeds the {len(buf) - pos + fixed} bytes left"
            )
        return pos
    if tag == 125:  # a signed integer: sign in bit 6 of the first byte
        byte = buf[pos]
        pos += 1
        shift = 6
        while byte & 0x80:
            byte = buf[pos]
            pos += 1
            shift += 7
            if shift > 60:
                raise MalformedMessage("integer too large")
        return pos
    if tag == 119:
        return _skip_string(buf, pos)
    if tag == 117:
        return _skip_array(buf, pos, depth + 1)
    if tag == 118:  # an object: string keys
        count, pos = _count(buf, pos, 2)
        for _ in range(count):
            pos = _skip_any(buf, _skip_string(buf, pos), depth + 1)
        return pos
    if tag == 116:
        return _bytes_end(buf, pos)[1]
    raise MalformedMessage(f"unknown value tag {tag}")


def _skip_array(buf: bytes, pos: int, depth: int) -> int:
    """A ``writeAny`` array's values (after its tag), at ``depth``: numbers
    skipped here, anything else by :func:`_skip_any`."""
    count, pos = _count(buf, pos, 1)
    fixed_tags = _FIXED_TAGS
    for _ in range(count):
        fixed = fixed_tags.get(buf[pos])
        if fixed is not None and depth <= _MAX_DEPTH:
            pos += 1 + fixed
        else:
            pos = _skip_any(buf, pos, depth)
    if pos > len(buf):
        raise MalformedMessage("a number cut short")
    return pos
