// A fake WebSocket (the class the client is given) and the server side that drives it: tests
// accept or refuse connections, read what the client sent, answer with server frames and close
// with any code, without a network.
export class FakeServer {
  constructor() {
    this.sockets = [];
    this.waiting = [];
    const server = this;
    this.WebSocket = class FakeWebSocket {
      constructor(url) {
        this.url = new URL(url);
        this.readyState = 0;
        this.onopen = this.onmessage = this.onerror = this.onclose = null;
        this.sent = [];
        this.frameWaiters = [];
        this.paused = false;
        server.register(this);
      }
      send(text) {
        if (this.readyState !== 1) throw new Error("not open");
        const frame = JSON.parse(text);
        this.sent.push(frame);
        this.frameWaiters = this.frameWaiters.filter((w) => !(w.match(frame) && (w.resolve(frame), true)));
      }
      close(code = 1000, reason = "") {
        if (this.readyState === 3) return;
        this.readyState = 3;
        queueMicrotask(() => this.onclose?.({ code, reason }));
      }
      pause() { this.paused = true; }
      resume() { this.paused = false; }
      // ---- server side ----
      accept() { this.readyState = 1; this.onopen?.({}); return this; }
      refuse() { this.readyState = 3; this.onerror?.({ message: "Unexpected server response: 503" }); this.onclose?.({ code: 1006, reason: "" }); }
      push(...frames) { for (const f of frames) this.onmessage?.({ data: typeof f === "string" ? f : JSON.stringify(f) }); }
      drop(code, reason = "") { this.readyState = 3; this.onclose?.({ code, reason }); }
      /** The next frame the client sends (already sent ones first) that matches. */
      frame(match = () => true) {
        const m = typeof match === "string" ? (f) => f.type === match : match;
        const seen = this.sent.find((f) => m(f) && !f.__taken);
        if (seen) { seen.__taken = true; return Promise.resolve(seen); }
        return new Promise((resolve) => this.frameWaiters.push({ match: (f) => m(f) && !f.__taken && (f.__taken = true), resolve }));
      }
      framesOf(type) { return this.sent.filter((f) => f.type === type); }
    };
  }

  register(socket) {
    this.sockets.push(socket);
    const w = this.waiting.shift();
    if (w) w(socket);
  }

  /** The next socket the client opens (or one it opened and nobody took yet). */
  next() {
    const untaken = this.sockets.find((s) => !s.__taken);
    if (untaken) { untaken.__taken = true; return Promise.resolve(untaken); }
    return new Promise((resolve) => this.waiting.push((s) => { s.__taken = true; resolve(s); }));
  }

  /** Accepts the next socket. */
  async accept() {
    return (await this.next()).accept();
  }
}

/** Options that make the client fast and quiet under test. */
export function fast(server, extra = {}) {
  return { WebSocket: server.WebSocket, reconnect: { initialDelayMs: 1, maxDelayMs: 5 }, pingIntervalMs: 0, ...extra };
}

/** Resolves with the next value `client` emits as `event` matching `match`. */
export function nextEvent(client, event, match = () => true) {
  return new Promise((resolve) => {
    const off = client.on(event, (v) => { if (match(v)) { off(); resolve(v); } });
  });
}
