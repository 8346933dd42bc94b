// Node entry: the same client, with a WebSocket found for Node. Node 22+ has a global WebSocket;
// on Node 20 the optional peer dependency `ws` is used (or pass options.WebSocket yourself).
import { createRequire } from "node:module";
import { BrokerClient, type ClientOptions, type WebSocketConstructor } from "./broker-client.js";

export * from "./broker-client.js";

let found: WebSocketConstructor | undefined;

/** The WebSocket class for Node: the global one (Node 22+), else the `ws` package. */
export function nodeWebSocket(): WebSocketConstructor {
  if (found) return found;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global) return (found = global);
  try {
    const ws = createRequire(import.meta.url)("ws") as WebSocketConstructor & { WebSocket?: WebSocketConstructor };
    return (found = ws.WebSocket ?? ws);
  } catch {
    throw new TypeError("no WebSocket in this Node (before 22): install the `ws` package or pass options.WebSocket");
  }
}

/** {@link BrokerClient} with Node's WebSocket unless options.WebSocket is given. */
export function connect(url: string | string[], options: ClientOptions = {}): BrokerClient {
  return new BrokerClient(url, { ...options, WebSocket: options.WebSocket ?? nodeWebSocket() });
}
