// A real y-socket.io peer driven by tests/interop over JSON lines.
//
//   node peer.mjs '{"url": "http://127.0.0.1:1234", "room": "r1", ...}'
//
// Config (argv[2], JSON):
//   url          server URL (required)
//   room         the provider's roomName: namespace `/yjs|<room>` (required)
//   auth         the connect auth payload, e.g. {"name": "Ann"}      (default {})
//   autoConnect  connect right away                                   (default true)
//   timeoutMs    exit by itself (code 3) after this long              (default 30000)
//   trace        print every event the socket receives               (default false)
//
// stdout: one JSON object per line, each with "event":
//   ready {clientID}            once, before connecting
//   connect / disconnect {reason} / connect_error {message, data}
//   synced {value, shapes, messages}   the provider's "sync" event, with the
//                               number of shapes / messages held at that moment
//   incoming {name}             (trace) an event the socket received
//   collab:error {payload}      the server's error event
//   reply {tag, ...}            the answer to a command
//   error {tag, message}        a command failed
//   timeout                     the script gave up (then exits with code 3)
//
// stdin: one JSON command per line, each with "cmd" and an optional "tag" that
// the reply echoes. Commands start in arrival order; the slow ones (wait,
// chat-send) answer when they finish, so a driver awaits each reply:
//   set-shape {id, shape, ymap}      shapes[id] = shape (a Y.Map if ymap)
//   set-field {id, key, value}       shapes[id] (a Y.Map) .set(key, value)
//   delete-shape {id}
//   burst {prefix, count, deleteEvery, field}
//                                    `count` transactions, yielding to the event
//                                    loop between them (concurrent with others)
//   push-message {message}           a local write to getArray('messages')
//   awareness {state}                awareness.setLocalState(state)
//   awareness-field {field, value}   awareness.setLocalStateField(field, value)
//   dump                             reply {clientID, shapes, messages, awareness,
//                                    connected, active, synced}
//   wait {until, timeoutMs}          reply (with a dump) once `until` holds:
//                                    {shapesEqual, shapesHave: [ids], shapesMissing,
//                                     messagesCount, awarenessHas: [clientIDs],
//                                     awarenessMissing, synced, connected}
//   disconnect                       provider.disconnect()
//   connect {dropBuffer}             provider.connect(); with dropBuffer, first
//                                    forget the updates socket.io-client buffered
//                                    while offline, so only the sync handshake can
//                                    carry them
//   chat-send {payload, timeoutMs}   socket.emitWithAck('chat:send', payload)
//   emit {event, args}               socket.emit(event, ...args) (no ack)
//   destroy                          provider.destroy()
//   exit                             destroy and exit 0

import * as Y from "yjs";
import { SocketIOProvider } from "y-socket.io";
import { createInterface } from "node:readline";

const config = JSON.parse(process.argv[2] ?? "{}");
const timeoutMs = config.timeoutMs ?? 30000;

function out(obj) {
  process.stdout.write(
    JSON.stringify(obj, (_key, value) =>
      typeof value === "bigint" ? { $bigint: value.toString() } : value,
    ) + "\n",
  );
}

function exit(code) {
  try {
    provider.destroy();
  } catch {
    // already destroyed
  }
  process.exit(code);
}

const giveUp = setTimeout(() => {
  out({ event: "timeout", afterMs: timeoutMs });
  exit(3);
}, timeoutMs);

const doc = new Y.Doc();
const shapes = doc.getMap("shapes");
const messages = doc.getArray("messages");

out({ event: "ready", clientID: doc.clientID });

const provider = new SocketIOProvider(config.url, config.room, doc, {
  autoConnect: false,
  disableBc: true,
  auth: config.auth ?? {},
});
const socket = provider.socket;

socket.on("connect", () => out({ event: "connect" }));
socket.on("disconnect", (reason) => out({ event: "disconnect", reason }));
socket.on("connect_error", (err) =>
  out({ event: "connect_error", message: err.message, data: err.data ?? null }),
);
socket.on("collab:error", (payload) => out({ event: "collab:error", payload }));
if (config.trace) {
  socket.onAny((name) => out({ event: "incoming", name }));
}
provider.on("sync", (value) =>
  out({ event: "synced", value, shapes: shapes.size, messages: messages.length }),
);

// -- state and conditions ----------------------------------------------------

function awarenessStates() {
  const states = {};
  for (const [id, state] of provider.awareness.getStates()) {
    states[id] = state;
  }
  return states;
}

function dump() {
  return {
    clientID: doc.clientID,
    shapes: shapes.toJSON(),
    messages: messages.toJSON(),
    awareness: awarenessStates(),
    connected: socket.connected,
    active: socket.active,
    synced: provider.synced,
  };
}

function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical(value[k])]),
    );
  }
  return value;
}

function sameJSON(a, b) {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function holds(until) {
  const states = provider.awareness.getStates();
  const checks = [
    () => until.shapesEqual === undefined || sameJSON(shapes.toJSON(), until.shapesEqual),
    () => (until.shapesHave ?? []).every((id) => shapes.has(id)),
    () => (until.shapesMissing ?? []).every((id) => !shapes.has(id)),
    () => until.messagesCount === undefined || messages.length === until.messagesCount,
    () => (until.awarenessHas ?? []).every((id) => states.has(Number(id))),
    () => (until.awarenessMissing ?? []).every((id) => !states.has(Number(id))),
    () => until.synced === undefined || provider.synced === until.synced,
    () => until.connected === undefined || socket.connected === until.connected,
  ];
  return checks.every((check) => check());
}

const waiters = new Set();

function recheck() {
  for (const waiter of waiters) {
    if (holds(waiter.until)) {
      waiters.delete(waiter);
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
  }
}

doc.on("afterTransaction", () => queueMicrotask(recheck));
provider.awareness.on("change", () => queueMicrotask(recheck));
provider.on("sync", () => queueMicrotask(recheck));
socket.on("connect", () => queueMicrotask(recheck));
socket.on("disconnect", () => queueMicrotask(recheck));

function waitUntil(until, ms) {
  if (holds(until)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const waiter = { until, resolve };
    waiter.timer = setTimeout(() => {
      waiters.delete(waiter);
      reject(new Error(`condition not met in ${ms} ms: ${JSON.stringify(until)}`));
    }, ms);
    waiters.add(waiter);
  });
}

// -- commands ----------------------------------------------------------------

function toYMap(obj) {
  const map = new Y.Map();
  for (const [key, value] of Object.entries(obj)) map.set(key, value);
  return map;
}

const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve));

const commands = {
  "set-shape": ({ id, shape, ymap = true }) => {
    shapes.set(id, ymap ? toYMap(shape) : shape);
  },
  "set-field": ({ id, key, value }) => {
    const shape = shapes.get(id);
    if (!(shape instanceof Y.Map)) throw new Error(`shape ${id} is not a Y.Map`);
    shape.set(key, value);
  },
  "delete-shape": ({ id }) => {
    shapes.delete(id);
  },
  burst: async ({ prefix, count, deleteEvery = 0, field = null }) => {
    for (let i = 0; i < count; i++) {
      doc.transact(() => {
        shapes.set(`${prefix}${i}`, toYMap({ type: "pen", points: [[i, i + 1]], z: i }));
        if (deleteEvery > 0 && i % deleteEvery === deleteEvery - 1) {
          shapes.delete(`${prefix}${i - 1}`);
        }
        if (field !== null) {
          const target = shapes.get(field.id);
          if (target instanceof Y.Map) target.set(field.key, `${field.value}${i}`);
        }
      });
      await yieldToLoop();
    }
  },
  "push-message": ({ message }) => {
    messages.push([toYMap(message)]);
  },
  awareness: ({ state }) => {
    provider.awareness.setLocalState(state);
  },
  "awareness-field": ({ field, value }) => {
    provider.awareness.setLocalStateField(field, value);
  },
  dump: () => dump(),
  wait: async ({ until, timeoutMs: ms = 10000 }) => {
    await waitUntil(until ?? {}, ms);
    return dump();
  },
  disconnect: () => {
    provider.disconnect();
  },
  connect: ({ dropBuffer = false }) => {
    const buffered = socket.sendBuffer.length;
    if (dropBuffer) socket.sendBuffer = [];
    provider.connect();
    return { buffered };
  },
  "chat-send": async ({ payload, timeoutMs: ms = 10000 }) => {
    const ack = await socket.timeout(ms).emitWithAck("chat:send", payload);
    return { ack };
  },
  emit: ({ event, args = [] }) => {
    socket.emit(event, ...args);
  },
  destroy: () => {
    provider.destroy();
  },
  exit: () => {
    clearTimeout(giveUp);
    exit(0);
  },
};

async function run(command) {
  const { cmd, tag = null } = command;
  try {
    const handler = commands[cmd];
    if (handler === undefined) throw new Error(`unknown command ${JSON.stringify(cmd)}`);
    const result = await handler(command);
    out({ event: "reply", tag, cmd, ...(result ?? {}) });
  } catch (err) {
    out({ event: "error", tag, cmd, message: String(err?.message ?? err) });
  }
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.trim() === "") return;
  let command;
  try {
    command = JSON.parse(line);
  } catch (err) {
    out({ event: "error", tag: null, message: `bad command line: ${err.message}` });
    return;
  }
  run(command);
});
// The driver went away: do not linger.
lines.on("close", () => exit(0));

if (config.autoConnect ?? true) provider.connect();
