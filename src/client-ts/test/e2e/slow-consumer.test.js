// A subscriber whose handler stops returning: the client pauses its socket (flow control), the
// socket buffers between the processes fill, then the broker's outbound buffer (256 KiB here), and
// the broker closes the connection as a slow consumer (1013 slow_consumer, counted in
// broker_slow_consumer_closes_total). Once the handler returns again the client reconnects and
// resumes with since: each message once, in order.
//
// Sizes: the Kafka-protocol log (librdkafka's mock) keeps only about the last 5 MB of a partition,
// and loopback socket buffers hold a few MB, so the publisher stops as soon as the broker gave up
// on the subscriber (8 KB messages, a small window): what it resumes from must still be retained.
// The outbound buffer is set in bytes so that the bursts in which the node's feed hands a batch of
// records to a healthy subscriber still fit.
import { test, before, after } from "node:test";
import WebSocket from "ws";
import assert from "node:assert/strict";
import { startDevKafka, BrokerNode, tempDb, waitFor } from "../support/processes.js";
import { client, closeClients, recorder, publishRange, END, untilEnd, assertExactly, unique } from "../support/scenario.js";

let kafka;
let node;

before(async () => {
  kafka = await startDevKafka();
  node = await BrokerNode.create("slow", { kafka, dbPath: tempDb("slow"), config: ["broker.websocket.outbound-buffer-bytes = 256 KiB"] });
  await node.start().ready();
}, { timeout: 120000 });

after(async () => {
  await closeClients();
  await node?.kill();
  await kafka?.stop();
});

test("slow consumer (1013): the paused subscriber is closed by the broker, reconnects and resumes with no gap and no duplicate", { timeout: 120000 }, async (t) => {
  const topic = unique("e2e.slow");
  const closesBefore = await node.metric("broker_slow_consumer_closes_total");
  let release;
  const blocked = new Promise((r) => (release = r));
  // The ws package's WebSocket can stop reading (Node's global one, from 22 on, cannot).
  const slow = client(node.wsUrl, { pauseAt: 2, WebSocket });
  const publisher = client(node.wsUrl);
  // The handler blocks on the first numbered message until the broker has given up on the connection.
  const s = await recorder(slow, topic, {}, (m) => (m.data.warm ? undefined : blocked));
  // Warm-up: the node's feed of the topic is reading at the head before the load (a new feed's
  // first fetch can hand over a burst bigger than this small buffer, closing even a healthy reader).
  await publisher.publish(topic, { warm: true });
  await waitFor(() => s.seen.length === 1, 30000, "the warm-up message");

  let closed = false;
  const watching = waitFor(async () => (closed = (await node.metric("broker_slow_consumer_closes_total")) > closesBefore), 60000, "a slow_consumer close");
  const filler = "x".repeat(8000);
  let n = 0;
  while (!closed && n < 3000) {
    const batch = [];
    for (let i = 0; i < 8; i++) batch.push(publisher.publish(topic, { n: n++, filler }));
    await Promise.all(batch);
  }
  await watching;
  assert.equal(s.seen.length, 2, `the handler was blocked the whole time (seen ${s.seen.length}, published ${n}, disconnects ${JSON.stringify(slow.disconnects)})`);
  release();
  await publisher.publish(topic, END);
  await untilEnd(s.seen, 60000, "the slow subscriber");

  assertExactly(s.seen.slice(1).map((d) => (d.end ? d : { n: d.n })), 0, n, "slow subscriber");
  assert.ok(slow.disconnects.length >= 1 && slow.disconnects.every((x) => x.willReconnect), "it lost its connection and reconnected");
  assert.ok(s.infos.slice(1).every((i) => i.resumed && i.recovered === true), "resumed from its last pos, nothing lost to retention");
  assert.equal(slow.state, "connected");
  t.diagnostic(`${n} messages (${(n * 8) / 1000} MB) published until the broker closed the paused subscriber; its disconnects: ${slow.disconnects.map((x) => `${x.code} ${x.reason}`).join(", ")}`);
});
