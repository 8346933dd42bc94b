// Two broker nodes in one cluster; the node the clients use is drained through the admin API
// (POST /admin/nodes/drain): its WebSockets close with 1001 and it refuses new ones, so every
// client moves to the other node (the next URL) and resumes there with no gap and no duplicate;
// the publisher's unacknowledged publishes are written once; the session follows to the new node.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startDevKafka, BrokerNode, tempDb } from "../support/processes.js";
import { client, closeClients, recorder, publishRange, END, untilEnd, assertExactly, assertWrittenOnce, unique } from "../support/scenario.js";

let kafka;
let a;
let b;

before(async () => {
  kafka = await startDevKafka();
  const dbPath = tempDb("drain"); // one session store for the cluster (SQLite, shared by both processes)
  a = await BrokerNode.create("drain-a", { kafka, dbPath });
  b = await BrokerNode.create("drain-b", { kafka, dbPath, seeds: [a.address] });
  a.start();
  b.start();
  await Promise.all([a.ready(), b.ready()]);
}, { timeout: 120000 });

after(async () => {
  await closeClients();
  await Promise.all([a?.kill(), b?.kill()]);
  await kafka?.stop();
});

test("drain (1001): clients move to the other node and resume; retried publishes written once", { timeout: 120000 }, async (t) => {
  const started = Date.now();
  const cluster = await a.admin("GET", "/admin/cluster");
  assert.equal(cluster.members.filter((m) => m.status === "Up").length, 2);

  const topic = unique("e2e.drain");
  const session = unique("sess");
  const N = 400;
  const urls = [a.wsUrl, b.wsUrl];
  const plain = client(urls);
  const durable = client(urls, { session, commitIntervalMs: 20 });
  const publisher = client(urls);
  const p = await recorder(plain, topic);
  const d = await recorder(durable, topic);
  for (const c of [plain, durable, publisher]) assert.equal(c.url, a.wsUrl);

  let drained;
  await publishRange(publisher, topic, 0, N, {
    onPublished: (n) => {
      if (n === 200) drained = a.admin("POST", "/admin/nodes/drain", { address: a.address });
    },
  });
  const publishedAt = Date.now();
  const result = await drained;
  const drainedAt = Date.now();
  assert.equal(result.remaining, 0);
  await publisher.publish(topic, END);
  await untilEnd(p.seen, 30000, "the plain subscriber");
  await untilEnd(d.seen, 30000, "the session subscriber");
  const endAt = Date.now();

  assertExactly(p.seen, 0, N, "plain subscriber");
  assertExactly(d.seen, 0, N, "session subscriber");
  await assertWrittenOnce(b.wsUrl, topic, 0, N);
  const readAt = Date.now();
  for (const c of [plain, durable, publisher]) {
    const first = c.disconnects[0];
    assert.deepEqual([first.code, first.willReconnect], [1001, true]); // reason: "node draining"
    assert.equal(c.url, b.wsUrl, "reconnected to the other node");
    assert.equal(c.state, "connected");
  }
  assert.ok(d.infos.some((i) => i.restored), "the session was restored on the other node");
  t.diagnostic(`published ${N} in ${publishedAt - started} ms across the drain (answered after ${drainedAt - started} ms), all delivered after ${endAt - started} ms, read back after ${readAt - started} ms; clients moved with ${plain.disconnects.length + durable.disconnects.length + publisher.disconnects.length} disconnects`);
});
