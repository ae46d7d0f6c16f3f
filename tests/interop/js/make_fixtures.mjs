// Prints the JS-produced byte vectors embedded as hex in tests/unit (lib0
// encodings, a Yjs update and state vector, y-protocols awareness updates), so
// the unit tests need no node. Run: node tests/interop/js/make_fixtures.mjs
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
const hex = u => Buffer.from(u).toString('hex')
// A JS-produced update
const doc = new Y.Doc()
doc.clientID = 123456789
const shapes = doc.getMap('shapes')
doc.transact(() => {
  const s = new Y.Map()
  s.set('type', 'sticky'); s.set('x', 10); s.set('y', -2.5); s.set('text', 'hi 😀'); s.set('points', [[1, 2], [3, 4]])
  shapes.set('s1', s)
})
const arr = doc.getArray('list')
arr.push([1, 'two', true, null, { k: [1.5] }, new Uint8Array([1, 2, 3])])
arr.delete(1, 1)
const text = doc.getText('t')
text.insert(0, 'héllo 🎉 wörld')
text.format(0, 5, { bold: true })
text.delete(6, 2)
console.log('JS_UPDATE', hex(Y.encodeStateAsUpdate(doc)))
console.log('JS_SV', hex(Y.encodeStateVector(doc)))
console.log('JS_JSON', JSON.stringify({ shapes: shapes.toJSON(), list: arr.toJSON(), t: text.toString() }))
// awareness
const adoc = new Y.Doc()
adoc.clientID = 3000000000
const aw = new awarenessProtocol.Awareness(adoc)
aw.setLocalState({ user: { name: 'Ann', color: '#ff0000' }, cursor: { x: 1.5, y: 2 } })
const other = new Y.Doc(); other.clientID = 42
const aw2 = new awarenessProtocol.Awareness(other)
aw2.setLocalState(null)
awarenessProtocol.applyAwarenessUpdate(aw, awarenessProtocol.encodeAwarenessUpdate(aw2, [42]), 'x')
console.log('AW', hex(awarenessProtocol.encodeAwarenessUpdate(aw, [3000000000])))
// include a removal entry: set local null on aw2 produced clock
console.log('AW_REMOVE', hex(awarenessProtocol.encodeAwarenessUpdate(aw2, [42])))
aw.setLocalStateField('cursor', null)
console.log('AW2', hex(awarenessProtocol.encodeAwarenessUpdate(aw, [3000000000])))
// lib0 vectors
const uintVals = [0, 1, 127, 128, 300, 16383, 16384, 2**31, 2**32, 2**53 - 1]
for (const v of uintVals) { const e = encoding.createEncoder(); encoding.writeVarUint(e, v); console.log('UINT', v, hex(encoding.toUint8Array(e))) }
const intVals = [0, 1, -1, 63, -63, 64, -64, 300, -300, 2**31, -(2**31), 2**53 - 1, -(2**53 - 1)]
for (const v of intVals) { const e = encoding.createEncoder(); encoding.writeVarInt(e, v); console.log('INT', v, hex(encoding.toUint8Array(e))) }
const strVals = ['', 'a', 'héllo', '😀', 'x'.repeat(200)]
for (const v of strVals) { const e = encoding.createEncoder(); encoding.writeVarString(e, v); console.log('STR', JSON.stringify(v), hex(encoding.toUint8Array(e))) }
const anyVals = [null, undefined, true, false, 0, 42, -42, 2**31, 1.5, 0.1, 'str', [], [1, 'a', null], {}, { a: 1, b: [true, { c: 'd' }] }, 2n ** 62n, new Uint8Array([0, 255])]
for (const v of anyVals) { const e = encoding.createEncoder(); encoding.writeAny(e, v); console.log('ANY', typeof v === 'bigint' ? 'bigint' : v instanceof Uint8Array ? 'bytes' : JSON.stringify(v), hex(encoding.toUint8Array(e))) }
// Awareness instances keep a renewal timer: end explicitly.
process.exit(0)
