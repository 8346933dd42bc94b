// Unit tests of the client against a fake WebSocket server (no network, no broker).
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { connect as connectClient, backoffDelay, memoryStorage, BrokerError } from "../../build/broker-client.js";
import { FakeServer, fast, nextEvent } from "../support/fake-server.js";

// Every client a test makes is closed after it, also when the test failed (a client keeps
// reconnecting, and the process alive, until closed).
const made = new Set();
function connect(url, options) {
  const client = connectClient(url, options);
  made.add(client);
  return client;
}
afterEach(async () => {
  for (const client of made) await client.close().catch(() => undefined);
  made.clear();
});

const T = { timeout: 5000 };

/** Answers the next subscribe of `socket` and returns the request. */
async function answerSubscribe(socket, pos = "P0", extra = {}) {
  const req = await socket.frame("subscribe");
  socket.push({ type: "subscribed", id: req.id, topic: req.topic, pos, ...extra });
  return req;
}

function message(topic, n, extra = {}) {
  return { type: "message", topic, pos: `p${n}`, ts: 1700000000000 + n, data: { n }, ...extra };
}

test("connects with a stable client identity kept in the storage hook, the session and batch=1 in the query", T, async () => {
  const server = new FakeServer();
  const storage = memoryStorage();
  let writes = 0;
  const counting = { getItem: (k) => storage.getItem(k), setItem: (k, v) => { writes++; storage.setItem(k, v); } };
  const a = connect("ws://broker.test/ws", fast(server, { storage: counting, session: "s-1", batch: true }));
  const s1 = await server.accept();
  assert.equal(s1.url.pathname, "/ws");
  const id = s1.url.searchParams.get("client");
  assert.match(id, /^[A-Za-z0-9._-]{1,128}$/);
  assert.equal(s1.url.searchParams.get("session"), "s-1");
  assert.equal(s1.url.searchParams.get("batch"), "1");
  assert.equal(a.clientId, id);
  await a.close();

  // Another client with the same storage (a page reload) has the same identity; it is written once.
  const b = connect("ws://broker.test/ws", fast(server, { storage: counting }));
  const s2 = await server.accept();
  assert.equal(s2.url.searchParams.get("client"), id);
  assert.equal(s2.url.searchParams.has("session"), false);
  assert.equal(writes, 1);
  await b.close();

  // Without storage: a fresh identity per client; an explicit clientId wins.
  const c = connect("ws://broker.test/ws", fast(server));
  assert.notEqual((await server.accept()).url.searchParams.get("client"), id);
  await c.close();
  const d = connect("ws://broker.test/ws", fast(server, { clientId: "svc-7" }));
  assert.equal((await server.accept()).url.searchParams.get("client"), "svc-7");
  await d.close();
  assert.throws(() => connect("ws://x/ws", fast(server, { clientId: "no spaces" })), /clientId/);
});

test("request ids never repeat across clients that share one identity", T, async () => {
  const server = new FakeServer();
  const storage = memoryStorage();
  const ids = new Set();
  for (let i = 0; i < 2; i++) {
    const client = connect("ws://b/ws", fast(server, { storage }));
    const s = await server.accept();
    client.publish("t", i).catch(() => undefined);
    ids.add((await s.frame("publish")).id);
    await client.close().catch(() => undefined);
  }
  assert.equal(ids.size, 2);
});

test("publish resolves with the ack; an unacknowledged publish is resent after a reconnect with the same id, in order", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server));
  const s1 = await server.accept();
  const first = client.publish("chat", { text: "one" }, { key: "k" });
  const p1 = await s1.frame("publish");
  assert.deepEqual({ topic: p1.topic, data: p1.data, key: p1.key }, { topic: "chat", data: { text: "one" }, key: "k" });
  s1.push({ type: "ack", id: p1.id, topic: "chat", pos: "A1" });
  assert.deepEqual(await first, { id: p1.id, topic: "chat", pos: "A1" });

  const second = client.publish("chat", 2);
  const third = client.publish("chat", 3);
  const p2 = await s1.frame("publish");
  const p3 = await s1.frame("publish");
  s1.drop(1006); // no acks: the node died

  const s2 = await server.accept();
  const r2 = await s2.frame("publish");
  const r3 = await s2.frame("publish");
  assert.deepEqual([r2.id, r2.data, r3.id, r3.data], [p2.id, 2, p3.id, 3]);
  assert.equal(s2.framesOf("publish").length, 2); // the acknowledged one is not resent
  s2.push({ type: "ack", id: p3.id, topic: "chat", pos: "A3" }, { type: "ack", id: p2.id, topic: "chat", pos: "A2" });
  assert.equal((await second).pos, "A2");
  assert.equal((await third).pos, "A3");
  assert.equal(client.pendingPublishes, 0);
  await client.close();
});

test("publishes made while disconnected wait in a bounded queue; a full queue fails with queue_full", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server, { maxPending: 2 }));
  const s1 = await server.next();
  s1.refuse();
  const a = client.publish("t", 1);
  const b = client.publish("t", 2);
  await assert.rejects(client.publish("t", 3), (e) => e instanceof BrokerError && e.code === "queue_full" && /maxPending = 2/.test(e.message));
  const s2 = await server.accept();
  const f1 = await s2.frame("publish");
  const f2 = await s2.frame("publish");
  assert.deepEqual([f1.data, f2.data], [1, 2]);
  s2.push({ type: "ack", id: f1.id, topic: "t", pos: "1" }, { type: "ack", id: f2.id, topic: "t", pos: "2" });
  await Promise.all([a, b]);
  await client.close();
});

test("a publish answered unavailable is sent again with the same id; conflict and other errors reject", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server));
  const s = await server.accept();
  const p = client.publish("t", "x");
  const f = await s.frame("publish");
  s.push({ type: "error", id: f.id, code: "unavailable", message: "the log is unavailable; retry" });
  const again = await s.frame("publish");
  assert.equal(again.id, f.id);
  s.push({ type: "ack", id: f.id, topic: "t", pos: "9" });
  assert.equal((await p).pos, "9");

  const q = client.publish("t", "y");
  const g = await s.frame("publish");
  s.push({ type: "error", id: g.id, code: "rate_limited", message: "slow down", retry_after_ms: 20 });
  const started = Date.now();
  assert.equal((await s.frame("publish")).id, g.id);
  assert.ok(Date.now() - started >= 15, "waited retry_after_ms");
  s.push({ type: "error", id: g.id, code: "conflict", message: "id reused with other data" });
  await assert.rejects(q, (e) => e.code === "conflict" && e.topic === "t");
  await client.close();
});

test("subscribe delivers in order and resubscribes after every reconnect with since = the last pos received", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server));
  const got = [];
  const infos = [];
  const s1 = await server.accept();
  const subscribing = client.subscribe("room", (m) => got.push(m.data.n), { key: "k1", headers: true, onSubscribed: (i) => infos.push(i) });
  const req = await answerSubscribe(s1, "H0");
  assert.deepEqual({ from: req.from, since: req.since, key: req.key, headers: req.headers }, { from: undefined, since: undefined, key: "k1", headers: true });
  const sub = await subscribing;
  s1.push(message("room", 1), message("room", 2));
  assert.equal(sub.lastPos, "p2");
  s1.drop(1013, "slow_consumer");

  const s2 = await server.accept();
  const again = await s2.frame("subscribe");
  assert.deepEqual({ since: again.since, key: again.key, headers: again.headers, from: again.from }, { since: "p2", key: "k1", headers: true, from: undefined });
  s2.push({ type: "subscribed", id: again.id, topic: "room", pos: "H1", recovered: false });
  s2.push(message("room", 3));
  s2.drop(1001, "server shutting down");

  const s3 = await server.accept();
  assert.equal((await s3.frame("subscribe")).since, "p3");
  assert.deepEqual(got, [1, 2, 3]);
  assert.deepEqual(infos.map((i) => [i.pos, i.recovered, i.resumed]), [["H0", undefined, false], ["H1", false, true]]);
  assert.equal(sub.recovered, false);
  await client.close();
});

test("before any message: latest resumes from the head it started at, earliest and since start again as asked", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server));
  const s1 = await server.accept();
  void client.subscribe("a", () => {});
  void client.subscribe("b", () => {}, { from: "earliest" });
  void client.subscribe("c", () => {}, { since: "C5" });
  void client.subscribe("d", () => {}, { last: 10 });
  for (let i = 0; i < 4; i++) await answerSubscribe(s1, `H-${i}`);
  s1.drop(1006);
  const s2 = await server.accept();
  const byTopic = {};
  for (let i = 0; i < 4; i++) { const f = await s2.frame("subscribe"); byTopic[f.topic] = f; }
  assert.equal(byTopic.a.since, "H-0");
  assert.equal(byTopic.b.from, "earliest");
  assert.equal(byTopic.b.since, undefined);
  assert.equal(byTopic.c.since, "C5");
  assert.equal(byTopic.d.since, "H-3");
  assert.equal(byTopic.d.last, undefined);
  await client.close();
});

test("an async handler gets the next message of its topic only after its promise settled", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server));
  const s = await server.accept();
  const log = [];
  let release;
  void client.subscribe("t", async (m) => {
    log.push(`start ${m.data.n}`);
    if (m.data.n === 1) await new Promise((r) => (release = r));
    log.push(`end ${m.data.n}`);
  });
  await answerSubscribe(s);
  s.push(message("t", 1), message("t", 2));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(log, ["start 1"]);
  release();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(log, ["start 1", "end 1", "start 2", "end 2"]);
  await client.close();
});

test("a handler that throws is reported and the next message is still delivered", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server));
  const s = await server.accept();
  const got = [];
  const errors = [];
  client.on("error", (e) => errors.push(e.message));
  void client.subscribe("t", (m) => { got.push(m.data.n); if (m.data.n === 1) throw new Error("boom"); });
  await answerSubscribe(s);
  s.push(message("t", 1), message("t", 2));
  assert.deepEqual(got, [1, 2]);
  assert.deepEqual(errors, ["boom"]);
  await client.close();
});

test("frames that are arrays (batch=1) are dispatched in order", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server, { batch: true }));
  const s = await server.accept();
  const got = [];
  void client.subscribe("t", (m) => got.push(m.data.n));
  const req = await s.frame("subscribe");
  const p = client.publish("t", "x");
  const pub = await s.frame("publish");
  s.push("  " + JSON.stringify([{ type: "subscribed", id: req.id, topic: "t", pos: "0" }, message("t", 1), { type: "ack", id: pub.id, topic: "t", pos: "p2" }, message("t", 2)]));
  s.push(message("t", 3));
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal((await p).pos, "p2");
  await client.close();
});

test("reconnects after 1001, 1006, 1011 and 1013; stops on 1008 and 1009 and says why", T, async () => {
  const server = new FakeServer();
  for (const code of [1001, 1006, 1011, 1013]) {
    const client = connect("ws://b/ws", fast(server));
    const s = await server.accept();
    const disconnected = nextEvent(client, "disconnected");
    s.drop(code, "r");
    const d = await disconnected;
    assert.deepEqual([d.code, d.willReconnect, d.wasConnected], [code, true, true]);
    await server.accept();
    assert.equal(client.state, "connected");
    await client.close();
  }
  for (const [code, reason] of [[1008, "session_taken_over"], [1009, "frame larger than 65536 bytes"]]) {
    const client = connect("ws://b/ws", fast(server));
    const s = await server.accept();
    const pending = client.publish("t", 1);
    const disconnected = nextEvent(client, "disconnected");
    s.drop(code, reason);
    const d = await disconnected;
    assert.deepEqual([d.code, d.reason, d.willReconnect], [code, reason, false]);
    assert.equal(client.state, "closed");
    await assert.rejects(pending, (e) => e.code === "closed" && e.closeCode === code && e.message.includes(reason));
    // It does not come back by itself; reconnect() does.
    client.reconnect();
    await server.accept();
    assert.equal(client.state, "connected");
    await client.close();
  }
});

test("failed attempts back off exponentially with jitter, bounded; maxAttempts stops", T, async () => {
  assert.equal(backoffDelay(1, { initialDelayMs: 100, jitter: 0 }), 100);
  assert.equal(backoffDelay(4, { initialDelayMs: 100, jitter: 0 }), 800);
  assert.equal(backoffDelay(30, { initialDelayMs: 100, maxDelayMs: 5000, jitter: 0 }), 5000);
  assert.equal(backoffDelay(3, { initialDelayMs: 100, jitter: 0.5 }, () => 1), 200);
  assert.equal(backoffDelay(3, { initialDelayMs: 100, jitter: 0.5 }, () => 0), 400);
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(5, { initialDelayMs: 10, maxDelayMs: 100 });
    assert.ok(d >= 50 && d <= 100, String(d));
  }

  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server, { reconnect: { initialDelayMs: 1, maxDelayMs: 4, maxAttempts: 3 } }));
  const delays = [];
  client.on("disconnected", (d) => delays.push(d));
  for (let i = 0; i < 3; i++) (await server.next()).refuse();
  assert.equal(delays.length, 3);
  assert.deepEqual(delays.map((d) => d.willReconnect), [true, true, false]);
  assert.ok(delays.every((d) => d.wasConnected === false));
  assert.equal(client.state, "closed");
});

test("several URLs: each reconnect tries the next one", T, async () => {
  const server = new FakeServer();
  const client = connect(["ws://n1/ws", "ws://n2/ws"], fast(server));
  const s1 = await server.accept();
  assert.equal(s1.url.host, "n1");
  s1.drop(1001, "server shutting down");
  const s2 = await server.next();
  assert.equal(s2.url.host, "n2");
  s2.refuse();
  const s3 = await server.accept();
  assert.equal(s3.url.host, "n1");
  assert.equal(client.url, "ws://n1/ws");
  await client.close();
});

test("a connection that does not open in time is dropped and retried", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server, { connectTimeoutMs: 20 }));
  const disconnected = nextEvent(client, "disconnected");
  await server.next(); // never accepted
  const d = await disconnected;
  assert.equal(d.reason, "connect timeout");
  await server.accept();
  await client.close();
});

test("keepalive: pings when idle, drops a silent connection and reconnects", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server, { pingIntervalMs: 20, pingTimeoutMs: 200 }));
  const disconnects = [];
  client.on("disconnected", (x) => disconnects.push(x));
  const disconnected = nextEvent(client, "disconnected");
  const s1 = await server.accept();
  for (let i = 0; i < 3; i++) {
    const ping = await s1.frame("ping"); // idle: a ping, answered
    s1.push({ type: "pong", id: ping.id });
  }
  assert.deepEqual(disconnects, []);
  await s1.frame("ping"); // not answered
  const d = await disconnected;
  assert.equal(d.reason, "keepalive timeout");
  await server.accept();
  await client.close();
});

test("unsubscribe: no delivery afterwards; not resubscribed after a reconnect", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server));
  const s1 = await server.accept();
  const got = [];
  const sub = await (async () => { const p = client.subscribe("t", (m) => got.push(m.data.n)); await answerSubscribe(s1); return p; })();
  s1.push(message("t", 1));
  const done = sub.unsubscribe();
  const u = await s1.frame("unsubscribe");
  s1.push(message("t", 2)); // in flight before the broker handled the unsubscribe
  s1.push({ type: "unsubscribed", id: u.id, topic: "t" });
  await done;
  assert.deepEqual(got, [1]);
  void client.subscribe("u", () => {});
  await answerSubscribe(s1);
  s1.drop(1006);
  const s2 = await server.accept();
  const again = await s2.frame("subscribe");
  assert.equal(again.topic, "u");
  assert.equal(s2.framesOf("subscribe").length, 1);
  await assert.rejects(client.subscribe("u", () => {}), (e) => e.code === "already_subscribed");
  await client.close();
});

test("an unsubscribe waits for the subscribe in flight (the broker handles requests concurrently)", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server));
  const s = await server.accept();
  const subscribing = client.subscribe("t", () => {});
  const req = await s.frame("subscribe");
  const done = client.unsubscribe("t");
  await assert.rejects(subscribing, (e) => e.code === "unsubscribed");
  assert.equal(s.framesOf("unsubscribe").length, 0);
  s.push({ type: "subscribed", id: req.id, topic: "t", pos: "0" });
  const u = await s.frame("unsubscribe");
  s.push({ type: "unsubscribed", id: u.id, topic: "t" });
  await done;
  await client.close();
});

test("a subscribe refused with not_found rejects; with unavailable it is retried", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server));
  const s = await server.accept();
  const refused = client.subscribe("nope", () => {});
  const r = await s.frame("subscribe");
  s.push({ type: "error", id: r.id, code: "not_found", message: "topic nope is in no namespace" });
  await assert.rejects(refused, (e) => e.code === "not_found" && e.topic === "nope");

  const later = client.subscribe("t", () => {});
  const first = await s.frame("subscribe");
  s.push({ type: "error", id: first.id, code: "unavailable", message: "the log is unavailable" });
  const second = await s.frame("subscribe");
  assert.equal(second.topic, "t");
  s.push({ type: "subscribed", id: second.id, topic: "t", pos: "0" });
  await later;
  await client.close();
});

test("sessions: restored subscriptions reach the registered handler, what was delivered is not delivered again, commits follow handlers", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server, { session: "sess", commitIntervalMs: 0 }));
  const got = [];
  const infos = [];
  const s1 = await server.accept();
  void client.subscribe("t", (m) => got.push(m.data.n), { onSubscribed: (i) => infos.push(i) });
  await answerSubscribe(s1);
  s1.push(message("t", 1), message("t", 2), message("t", 3));
  const c1 = await s1.frame("commit");
  assert.deepEqual([c1.topic, c1.pos], ["t", "p1"]);
  s1.drop(1006); // commits of p2 and p3 were lost with the connection

  const s2 = await server.accept();
  // The broker restores the session before it reads anything: resumes after the stored commit (p1).
  s2.push({ type: "subscribed", topic: "t", pos: "H", recovered: true }, message("t", 2), message("t", 3), message("t", 4));
  const dup = await s2.frame("subscribe"); // the client's own resubscribe: idempotent on the broker
  s2.push({ type: "subscribed", id: dup.id, topic: "t", pos: "H" });
  s2.push(message("t", 5));
  assert.deepEqual(got, [1, 2, 3, 4, 5]);
  assert.deepEqual(infos.map((i) => [i.restored, i.resumed, i.recovered]), [[false, false, undefined], [true, true, true]]);
  const last = (await Promise.all([s2.frame("commit"), s2.frame("commit")]))[1];
  assert.equal(last.pos, "p5");
  await client.close();
});

test("sessions: a topic restored before the app subscribed is kept for its handler; explicit commit; autoCommit off", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server, { session: "s2", autoCommit: false }));
  const s = await server.accept();
  s.push({ type: "subscribed", topic: "old", pos: "H", recovered: true }, message("old", 7), message("old", 8));
  const got = [];
  const sub = await client.subscribe("old", (m) => got.push(m.data.n));
  assert.deepEqual(got, [7, 8]);
  assert.equal(sub.lastPos, "p8");
  assert.equal(s.framesOf("subscribe").length, 0);
  assert.equal(s.framesOf("commit").length, 0);
  client.commit("old", "p8");
  const c = await s.frame("commit");
  assert.deepEqual([c.topic, c.pos], ["old", "p8"]);
  await client.close();
  const plain = connect("ws://b/ws", fast(server));
  await server.accept();
  assert.throws(() => plain.commit("t", "p"), (e) => e.code === "bad_request");
  await plain.close();
});

test("sessions: a topic unsubscribed while disconnected is unsubscribed when the broker restores it", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server, { session: "s3" }));
  const s1 = await server.accept();
  const sub = client.subscribe("t", () => {});
  await answerSubscribe(s1);
  await sub;
  s1.drop(1006);
  await client.unsubscribe("t");
  const s2 = await server.accept();
  s2.push({ type: "subscribed", topic: "t", pos: "H", recovered: true });
  const u = await s2.frame("unsubscribe");
  assert.equal(u.topic, "t");
  await client.close();
});

test("close sends pending commits first and waits for the broker to have read them", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server, { session: "s4", commitIntervalMs: 60000 }));
  const s = await server.accept();
  void client.subscribe("t", () => {});
  await answerSubscribe(s);
  s.push(message("t", 1));
  const closing = client.close();
  const c = await s.frame("commit");
  assert.equal(c.pos, "p1");
  const ping = await s.frame("ping");
  s.push({ type: "pong", id: ping.id });
  await closing;
  assert.equal(client.state, "closed");
});

test("token: sent as the first auth frame, requests only after authed; refreshed on token_expiring", T, async () => {
  const server = new FakeServer();
  let n = 0;
  const client = connect("ws://b/ws", fast(server, { getToken: async () => `jwt-${++n}` }));
  const authed = [];
  client.on("authed", (a) => authed.push(a));
  const published = client.publish("t", 1);
  const s = await server.accept();
  assert.equal(s.url.searchParams.has("token"), false);
  const auth = await s.frame();
  assert.deepEqual([auth.type, auth.token], ["auth", "jwt-1"]);
  assert.equal(s.sent.length, 1, "nothing before authed");
  assert.equal(client.state, "connecting");
  s.push({ type: "authed", id: auth.id, sub: "alice", exp: 2000000000 });
  const pub = await s.frame("publish");
  assert.equal(pub.data, 1);
  assert.equal(client.state, "connected");
  s.push({ type: "ack", id: pub.id, topic: "t", pos: "1" });
  await published;

  s.push({ type: "token_expiring", exp: 2000000000 });
  const refresh = await s.frame("auth");
  assert.equal(refresh.token, "jwt-2");
  s.push({ type: "authed", id: refresh.id, sub: "alice", exp: 2000003600 });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(authed.map((a) => a.exp), [2000000000, 2000003600]);

  // A reconnect asks for a token again.
  s.drop(1001);
  const s2 = await server.accept();
  assert.equal((await s2.frame("auth")).token, "jwt-3");
  await client.close();
});

test("token: a refused token stops the client with the broker's reason; query transport uses ?token=", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server, { getToken: () => "bad" }));
  const errors = [];
  client.on("error", (e) => errors.push(e));
  const s = await server.accept();
  const auth = await s.frame("auth");
  const disconnected = nextEvent(client, "disconnected");
  s.push({ type: "error", id: auth.id, code: "unauthorized", message: "invalid signature" });
  s.drop(1008, "unauthorized");
  const d = await disconnected;
  assert.deepEqual([d.code, d.reason, d.willReconnect], [1008, "unauthorized", false]);
  assert.equal(errors[0].code, "unauthorized");

  const q = connect("ws://b/ws", fast(server, { getToken: () => "jwt", tokenTransport: "query" }));
  const s2 = await server.accept();
  assert.equal(s2.url.searchParams.get("token"), "jwt");
  assert.equal(s2.sent.length, 0);
  assert.equal(q.state, "connected");
  await q.close();
});

test("token: no authed reply in time drops the connection and retries", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server, { getToken: () => "jwt", authTimeoutMs: 20 }));
  const disconnected = nextEvent(client, "disconnected");
  await server.accept();
  const d = await disconnected;
  assert.equal(d.reason, "no authed reply");
  const s2 = await server.accept();
  const auth = await s2.frame("auth");
  s2.push({ type: "authed", id: auth.id, sub: "x" });
  assert.equal(client.state, "connected");
  await client.close();
});

test("flow control: the socket is paused while too many messages wait for slow handlers, resumed when they caught up", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server, { pauseAt: 4 }));
  const s = await server.accept();
  const releases = [];
  void client.subscribe("t", () => new Promise((r) => releases.push(r)));
  await answerSubscribe(s);
  for (let i = 1; i <= 6; i++) s.push(message("t", i));
  assert.equal(s.paused, true);
  while (s.paused) {
    releases.shift()();
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(releases.length <= 2, `resumed with ${releases.length} waiting`);
  await client.close();
});

test("close rejects what waits for an ack; the client does not reconnect", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server));
  const s = await server.accept();
  const p = client.publish("t", 1);
  await s.frame("publish");
  await client.close();
  await assert.rejects(p, (e) => e.code === "closed");
  await assert.rejects(client.publish("t", 2), (e) => e.code === "closed");
  assert.equal(server.sockets.length, 1);
});

test("publish with timeoutMs fails with timeout when no ack comes", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server));
  await server.accept();
  await assert.rejects(client.publish("t", 1, { timeoutMs: 10 }), (e) => e.code === "timeout");
  assert.equal(client.pendingPublishes, 0);
  await client.close();
});

test("bad arguments are refused before anything is sent", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server));
  await assert.rejects(client.publish("bad topic", 1), TypeError);
  await assert.rejects(client.publish("t", undefined), TypeError);
  await assert.rejects(client.subscribe("t", null), TypeError);
  await assert.rejects(client.subscribe("t", () => {}, { last: -1 }), TypeError);
  await client.close();
});

test("token: a broker without auth answers the auth frame with bad_request; the client carries on without it", T, async () => {
  const server = new FakeServer();
  const client = connect("ws://b/ws", fast(server, { getToken: () => "jwt" }));
  const errors = [];
  client.on("error", (e) => errors.push(e.code));
  const s = await server.accept();
  const auth = await s.frame("auth");
  const published = client.publish("t", 1);
  s.push({ type: "error", id: auth.id, code: "bad_request", message: "unknown type 'auth'" });
  const pub = await s.frame("publish");
  s.push({ type: "ack", id: pub.id, topic: "t", pos: "1" });
  await published;
  assert.equal(client.state, "connected");
  assert.deepEqual(errors, ["bad_request"]);
  await client.close();
});
