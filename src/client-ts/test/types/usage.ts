// Compile-time check of the published types as applications use them (tsc --noEmit, never run):
// both WebSocket classes fit the WebSocket option, handlers and promises are typed.
import WebSocket from "ws";
import { connect, BrokerError, type Ack, type Message, type SubscribedInfo, type DisconnectInfo, type Subscription } from "../../build/node.js";
import { connect as connectInPage, memoryStorage } from "../../build/broker-client.js";

interface Chat { text: string }

export async function usage(): Promise<void> {
  const client = connect(["ws://127.0.0.1:8080/ws", "ws://127.0.0.1:8081/ws"], {
    WebSocket,
    storage: memoryStorage(),
    session: "s-1",
    autoCommit: true,
    batch: true,
    getToken: async () => "jwt",
    reconnect: { initialDelayMs: 200, maxDelayMs: 5000, jitter: 0.5 },
  });
  const page = connectInPage("/ws", { WebSocket: globalThis.WebSocket, storage: globalThis.localStorage });
  const sub: Subscription = await client.subscribe<Chat>("chat", async (m: Message<Chat>) => {
    const text: string = m.data.text;
    void text;
  }, { last: 20, onSubscribed: (i: SubscribedInfo) => void i.recovered });
  const ack: Ack = await client.publish("chat", { text: "hi" } satisfies Chat, { key: "room-1" });
  client.commit("chat", ack.pos);
  const off = client.on("disconnected", (d: DisconnectInfo) => void d.willReconnect);
  off();
  client.on("error", (e) => { if (e instanceof BrokerError && e.code === "queue_full") void e.message; });
  await sub.unsubscribe();
  await Promise.all([client.close(), page.close()]);
}
