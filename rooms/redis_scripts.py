"""The Lua scripts of the Redis store (rooms.store_redis), one place.

Every script that writes a room's data first reads the room's tombstone
(``collab:{room}:deleted``, field ``e``: the epoch the deletion began) and
refuses the write when it names an epoch other than the one the writing
node loaded the document in: a node whose copy predates a deletion cannot
write it back (issue 13, finding 3). No tombstone refuses nothing: the room
was never deleted, its tombstone expired, or Redis lost everything (then a
re-seed is what is wanted).

Every script that writes a document also names the room's Redis epoch
(``collab:{room}:epoch``) the node last reconciled the document with, and
refuses the write when Redis holds another one or none (Redis restarted
empty, or was replaced): the node must re-seed the document first
(rooms.replication), so nothing is appended to a Redis that lost what came
before it. Sequence numbers cannot tell: appends to an empty Redis push its
counter past any number a node remembers. The first append of a room that
has no epoch (and a node that knows of none) sets a random one.

MACs are computed by the node in Python (rooms.integrity) and passed in:
Redis never sees the cluster key. The append script therefore cannot pick
the sequence numbers itself; it is a compare-and-set: the node says which
number its first update takes (and MACs each update with its number), and
the script refuses the whole batch if another node took it meanwhile,
returning the current number for the node to retry with.
"""

from __future__ import annotations

__all__ = [
    "APPEND",
    "COMPACT",
    "DELETE",
    "DELETE_BLOBS",
    "LOAD",
    "OUTBOX_ADD",
    "OUTBOX_CLAIM",
    "OUTBOX_DONE",
    "OUTBOX_RETRY",
    "PUT_BLOB",
    "READ_LOG",
    "SAVE_INFO",
]

#: KEYS: log, seq, ch, docs, tomb, epoch, ids[, rooms index]
#: ARGV: origin, room, doc, publish command, tombstone epoch, first seq,
#: Redis epoch, a fresh epoch, then the claims: their count and for each
#: (update index from 1, field, value), then the records: their count and
#: for each (field, value), then update, mac, update, mac...
#: Claims (a chat message's key, atomically with its append: protocol.md
#: §6.1) are checked first: one that the ids hash holds with another value
#: refuses the whole batch, so the node can drop that update and try again.
#: Records (every message's key, with a re-seed) are set where absent.
#: Returns {1, last seq, last id, Redis epoch}; {0, current seq} when
#: ``first seq`` is taken; {-1, tombstone epoch} when the room was deleted
#: since the node loaded it; {-2, Redis epoch or ''} when the Redis epoch is
#: not the node's; {-3, {update index, stored value, ...}} for claims taken.
APPEND = """
local t = redis.call('HGET', KEYS[5], 'e')
if t and t ~= ARGV[5] then return {-1, t} end
local e = redis.call('GET', KEYS[6])
if (e or '') ~= ARGV[7] then return {-2, e or ''} end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if cur + 1 ~= tonumber(ARGV[6]) then return {0, cur} end
local claims = tonumber(ARGV[9])
local last_claim = 10 + 3 * (claims - 1)
local dups = {}
for c = 10, last_claim, 3 do
  local have = redis.call('HGET', KEYS[7], ARGV[c + 1])
  if have and have ~= ARGV[c + 2] then
    dups[#dups + 1] = tonumber(ARGV[c])
    dups[#dups + 1] = have
  end
end
if #dups > 0 then return {-3, dups} end
local r = 10 + 3 * claims
local records = tonumber(ARGV[r])
for c = r + 1, r + 2 * records - 1, 2 do
  if not redis.call('HGET', KEYS[7], ARGV[c]) then
    redis.call('HSET', KEYS[7], ARGV[c], ARGV[c + 1])
  end
end
for c = 10, last_claim, 3 do
  redis.call('HSET', KEYS[7], ARGV[c + 1], ARGV[c + 2])
end
if not e then
  e = ARGV[8]
  redis.call('SET', KEYS[6], e)
end
local seq, id = cur, ''
for i = r + 1 + 2 * records, #ARGV, 2 do
  seq = seq + 1
  id = redis.call('XADD', KEYS[1], '*', 'u', ARGV[i], 's', seq, 'o', ARGV[1], 'm', ARGV[i + 1])
  redis.call(ARGV[4], KEYS[3],
    cmsgpack.pack({2, 1, ARGV[1], ARGV[2], ARGV[3], seq, id, ARGV[i], ARGV[i + 1]}))
end
redis.call('SET', KEYS[2], seq)
redis.call('SADD', KEYS[4], ARGV[3])
if KEYS[8] then redis.call('SADD', KEYS[8], ARGV[2]) end
return {1, seq, id, e}
"""

#: KEYS: snap, log, seq, tomb, epoch   ARGV: -
#: Returns {snapshot, its stream id, entries after it, seq, snapshot seq,
#: snapshot MAC, tombstone epoch, tombstone MAC, Redis epoch} (false for
#: what is absent).
LOAD = """
local snap = redis.call('HMGET', KEYS[1], 'd', 'id', 's', 'm')
local entries
if snap[2] then
  entries = redis.call('XRANGE', KEYS[2], '(' .. snap[2], '+')
else
  entries = redis.call('XRANGE', KEYS[2], '-', '+')
end
local seq = redis.call('GET', KEYS[3]) or '0'
local tomb = redis.call('HMGET', KEYS[4], 'e', 'm')
return {snap[1] or false, snap[2] or false, entries, seq, snap[3] or '0', snap[4] or false,
        tomb[1] or false, tomb[2] or false, redis.call('GET', KEYS[5]) or false}
"""

#: KEYS: log, epoch   ARGV: after (a stream id)
#: Returns {Redis epoch or false, the entries after ``after``}: one read, so
#: a node never takes entries of a new Redis for continuations of the old.
READ_LOG = """
return {redis.call('GET', KEYS[2]) or false, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')}
"""

#: KEYS: snap, log, tomb, epoch
#: ARGV: data, upto id, upto seq, snapshot MAC, tombstone epoch, Redis epoch
#: Refuses a snapshot that covers less than the stored one (equal coverage
#: replaces it: a later snapshot, e.g. after a redaction), so two nodes
#: compacting at once cannot drop entries the surviving snapshot lacks.
#: Then the stream is rebuilt rather than trimmed: XTRIM only flags entries
#: deleted inside a stream node that later entries share, so their bytes
#: would stay in memory (and in RDB/AOF files). The new stream holds the
#: entries after ``upto``, with their ids, and numbers later entries after
#: ``upto`` still. Returns 1, 0 (refused: older), -1 (deleted meanwhile) or
#: -2 (another Redis epoch: the snapshot may miss what others wrote since).
COMPACT = """
local t = redis.call('HGET', KEYS[3], 'e')
if t and t ~= ARGV[5] then return -1 end
if (redis.call('GET', KEYS[4]) or '') ~= ARGV[6] then return -2 end
local function parse(id)
  local ms, sq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(sq)
end
local cur = redis.call('HGET', KEYS[1], 'id')
local ms, sq = parse(ARGV[2])
if cur then
  local cms, csq = parse(cur)
  if cms > ms or (cms == ms and csq > sq) then return 0 end
end
local keep = redis.call('XRANGE', KEYS[2], '(' .. ARGV[2], '+')
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'id', ARGV[2], 's', ARGV[3], 'm', ARGV[4])
redis.call('DEL', KEYS[2])
if ms > 0 or sq > 0 then
  -- An empty stream whose last id is upto: later ids stay after the snapshot's.
  redis.call('XADD', KEYS[2], 'MAXLEN', '0', ARGV[2], 'x', '')
end
for _, entry in ipairs(keep) do
  redis.call('XADD', KEYS[2], entry[1], unpack(entry[2]))
end
return 1
"""

#: KEYS: docs, info, tomb, Redis epoch, blobs, blob index
#: ARGV: room, epoch, tombstone MAC, time ms, lifetime ms
#: Deletes every document key (chat message keys too), the record, the
#: Redis epoch and the room's images, and leaves the tombstone.
DELETE = """
local docs = redis.call('SMEMBERS', KEYS[1])
for _, doc in ipairs(docs) do
  local base = 'collab:{' .. ARGV[1] .. '}:doc:' .. doc
  redis.call('DEL', base .. ':log', base .. ':seq', base .. ':snap', base .. ':lock',
             base .. ':ids')
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6])
redis.call('HSET', KEYS[3], 'e', ARGV[2], 'm', ARGV[3], 'at', ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return #docs
"""

#: KEYS: info, tomb[, rooms index]   ARGV: room, epoch, field, value, field, value...
#: Returns 1, or -1 when the room was deleted since the node loaded it.
SAVE_INFO = """
local t = redis.call('HGET', KEYS[2], 'e')
if t and t ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if KEYS[3] then redis.call('SADD', KEYS[3], ARGV[1]) end
return 1
"""


# -- images (rooms.redis_blobs; the room's hash tag, so DELETE removes them) -----------

#: KEYS: blobs, blob index, tomb   ARGV: digest, value, index entry, tombstone epoch
#: Returns 1 (stored), 0 (the room holds that digest: left as it is) or -1
#: (the room was deleted since the node loaded it: nothing written).
PUT_BLOB = """
local t = redis.call('HGET', KEYS[3], 'e')
if t and t ~= ARGV[4] then return -1 end
if redis.call('HGET', KEYS[2], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""

#: KEYS: blobs, blob index   ARGV: digests
#: Returns how many the room held.
DELETE_BLOBS = """
local gone = 0
for _, digest in ipairs(ARGV) do
  gone = gone + redis.call('HDEL', KEYS[2], digest)
  redis.call('HDEL', KEYS[1], digest)
end
return gone
"""


# -- the webhook outbox (rooms.redis_keys.OUTBOX_KEYS: one cluster slot) ---------------
# Each script is one atomic step, so nodes sharing Redis never claim one
# entry twice while its lease runs, and a retry never brings back an entry
# another node delivered meanwhile.

#: KEYS: due, created, entries, attempts
#: ARGV: (id, sealed record, created ms, next ms, attempts) per entry
#: An id held already is left as it is. Returns how many were added.
OUTBOX_ADD = """
local added = 0
for i = 1, #ARGV, 5 do
  if redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('ZADD', KEYS[1], ARGV[i + 3], ARGV[i])
    redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i])
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 4])
    added = added + 1
  end
end
return added
"""

#: KEYS: due, entries, attempts   ARGV: now ms, limit, lease end ms
#: The due entries, earliest first, each moved to the lease's end.
#: Returns {id, sealed record or '', attempts, ...}.
OUTBOX_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[3], id)
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
  out[#out + 1] = redis.call('HGET', KEYS[3], id) or '0'
end
return out
"""

#: KEYS: due, created, entries, attempts   ARGV: id
OUTBOX_DONE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return redis.call('HDEL', KEYS[4], ARGV[1])
"""

#: KEYS: due, entries, attempts   ARGV: id, next ms, attempts
#: Returns 0 (and writes nothing) for an entry that is gone.
OUTBOX_RETRY = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1
"""
