// Building blocks of the end-to-end scenarios: clients of the library under test (build/node.js),
// a publisher that keeps a window of publishes in flight, subscribers that record what their
// handler saw, and the checks "each message once, in order" and "written once".
import assert from "node:assert/strict";
import { connect } from "../../build/node.js";
import { waitFor, readAll } from "./processes.js";

export const quick = { reconnect: { initialDelayMs: 100, maxDelayMs: 1000 }, pingIntervalMs: 0 };

export function unique(prefix) {
  return `${prefix}.${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

const clients = new Set();

/** A client that records its disconnects and errors (closed by closeClients()). */
export function client(url, options = {}) {
  const c = connect(url, { ...quick, ...options });
  clients.add(c);
  c.disconnects = [];
  c.errors = [];
  c.on("disconnected", (d) => c.disconnects.push(d));
  c.on("error", (e) => c.errors.push(e));
  return c;
}

/** Closes every client made by client() (they would keep reconnecting, and the process alive). */
export async function closeClients() {
  await Promise.all([...clients].map((c) => c.close().catch(() => undefined)));
  clients.clear();
}

/** Subscribes `c` to `topic`; `seen` gets each message's data (handler order). */
export async function recorder(c, topic, options = {}, handler) {
  const seen = [];
  const infos = [];
  const sub = await c.subscribe(topic, async (m) => {
    seen.push(m.data);
    if (handler) await handler(m);
  }, { ...options, onSubscribed: (i) => infos.push(i) });
  return { seen, infos, sub };
}

/**
 * Publishes {n} for n in [from, to) with at most `window` unacknowledged; returns the acks.
 * `onPublished(n)` is called right after publish n was handed to the client, `onAcked(count)` after
 * each ack. `data(n)` makes the payload (default {n}).
 */
export async function publishRange(c, topic, from, to, { window = 20, data = (n) => ({ n }), onPublished, onAcked } = {}) {
  const acks = new Array(to - from);
  let acked = 0;
  const inflight = new Set();
  for (let n = from; n < to; n++) {
    const p = c.publish(topic, data(n)).then((ack) => {
      acks[n - from] = ack;
      acked++;
      onAcked?.(acked);
    });
    inflight.add(p);
    onPublished?.(n);
    void p.finally(() => inflight.delete(p)).catch(() => undefined);
    if (inflight.size >= window) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  return acks;
}

export const END = { end: true };

/** Waits (bounded) until `seen` holds the end marker. */
export function untilEnd(seen, timeoutMs, what) {
  return waitFor(() => seen.some((d) => d && d.end === true), timeoutMs, `${what} to receive the end marker`);
}

/** `seen` is exactly n = from..to-1, each once, in order, then the end marker. */
export function assertExactly(seen, from, to, what) {
  const ns = seen.map((d) => (d && d.end ? "end" : d.n));
  const expected = [];
  for (let n = from; n < to; n++) expected.push(n);
  expected.push("end");
  if (ns.length !== expected.length || ns.some((v, i) => v !== expected[i])) {
    const dups = ns.filter((v, i) => ns.indexOf(v) !== i);
    const missing = expected.filter((v) => !ns.includes(v));
    assert.fail(`${what}: ${ns.length} deliveries for ${expected.length} messages; duplicates ${JSON.stringify(dups.slice(0, 20))}, missing ${JSON.stringify(missing.slice(0, 20))}, first out of order at ${ns.findIndex((v, i) => v !== expected[i])}`);
  }
}

/** Reads the topic from its earliest message with a fresh connection: every n once, in publish order. */
export async function assertWrittenOnce(url, topic, from, to) {
  const all = await readAll(url, topic, (m) => m.data && m.data.end === true);
  assertExactly(all.map((m) => m.data), from, to, `the log of ${topic} read from earliest`);
}
