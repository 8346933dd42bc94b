// The broker process is killed (-9) mid-stream and started again on the same ports, with the
// standalone Kafka-protocol log keeping the history: a plain subscriber and a durable-session
// subscriber see each message once and in order, the publisher's unacknowledged publishes are
// resent and written once, and a new client with the session id resumes after its last commit.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startDevKafka, BrokerNode, tempDb } from "../support/processes.js";
import { client, closeClients, recorder, publishRange, END, untilEnd, assertExactly, assertWrittenOnce, unique } from "../support/scenario.js";

let kafka;
let node;

before(async () => {
  kafka = await startDevKafka();
  node = await BrokerNode.create("kill", { kafka, dbPath: tempDb("kill") });
  await node.start().ready();
}, { timeout: 120000 });

after(async () => {
  await closeClients();
  await node?.kill();
  await kafka?.stop();
});

test("kill -9 and restart: no gap, no duplicate, retried publishes written once, the session resumes", { timeout: 120000 }, async () => {
  const topic = unique("e2e.kill");
  const session = unique("sess");
  const N = 400;
  const plain = client(node.wsUrl, { batch: true }); // ?batch=1: frames may be arrays
  const durable = client(node.wsUrl, { session, commitIntervalMs: 20 });
  const publisher = client(node.wsUrl);
  const p = await recorder(plain, topic);
  const d = await recorder(durable, topic);

  let pendingAtKill = -1;
  let killed;
  const published = publishRange(publisher, topic, 0, N, {
    onPublished: (n) => {
      if (n === 200) {
        pendingAtKill = publisher.pendingPublishes;
        killed = (async () => {
          await node.kill();
          await node.start().ready();
        })();
      }
    },
  });
  await published;
  await killed;
  await publisher.publish(topic, END);
  await untilEnd(p.seen, 30000, "the plain subscriber");
  await untilEnd(d.seen, 30000, "the session subscriber");

  assertExactly(p.seen, 0, N, "plain subscriber");
  assertExactly(d.seen, 0, N, "session subscriber");
  await assertWrittenOnce(node.wsUrl, topic, 0, N);
  assert.ok(pendingAtKill > 0, "publishes were in flight when the broker died");
  for (const c of [plain, durable, publisher]) {
    assert.ok(c.disconnects.some((x) => x.willReconnect && x.wasConnected), "each client lost its connection");
    assert.equal(c.state, "connected");
  }
  assert.ok(d.infos.some((i) => i.restored), "the broker restored the session's subscription");

  // A new client object with the same session id (a page reload): its handler gets exactly what
  // was published after the last commit.
  await durable.close();
  await publishRange(publisher, topic, N, N + 5);
  await publisher.publish(topic, END);
  const again = client(node.wsUrl, { session });
  const r = await recorder(again, topic);
  await untilEnd(r.seen, 30000, "the resumed session");
  assertExactly(r.seen, N, N + 5, "the resumed session");
  assert.equal(r.infos[0].restored, true);
  assert.equal(r.infos[0].recovered, true);

  await Promise.all([plain.close(), publisher.close(), again.close()]);
  const stray = [plain, publisher, again].flatMap((c) => c.errors).filter((e) => e.code !== "transport");
  assert.deepEqual(stray.map((e) => e.message), []);
});

test("getToken against a broker without auth: the auth frame is refused as unknown and the client works on", { timeout: 60000 }, async () => {
  const topic = unique("e2e.token");
  const c = client(node.wsUrl, { getToken: async () => "not-checked" });
  const r = await recorder(c, topic);
  const ack = await c.publish(topic, END);
  await untilEnd(r.seen, 30000, "the subscriber");
  assert.ok(ack.pos);
  assert.equal(c.errors[0]?.code, "bad_request");
});
