// Client for the broker's WebSocket protocol (docs/protocol.md): reconnects with backoff, resumes
// every subscription with `since` so each message reaches its handler once and in order across
// disconnects, resends unacknowledged publishes with the same `client` + `id` (written once),
// durable sessions, tokens, frame batching. One file with no imports: it is also the browser
// bundle the broker's dashboard loads (dist/broker-client.js, embedded in Broker.Server).
/** An error from the broker (`code` as in docs/protocol.md) or from the client (`queue_full`, `closed`, `timeout`, …). */
export class BrokerError extends Error {
    code;
    topic;
    retryAfterMs;
    /** The close code, for `closed`. */
    closeCode;
    constructor(code, message, extra = {}) {
        super(message);
        this.name = "BrokerError";
        this.code = code;
        this.topic = extra.topic;
        this.retryAfterMs = extra.retryAfterMs;
        this.closeCode = extra.closeCode;
    }
}
/** Identities and session ids: 1–128 characters of `A-Z a-z 0-9 . _ -`. */
const IDENTITY = /^[A-Za-z0-9._-]{1,128}$/;
const TOPIC = /^[A-Za-z0-9._-]{1,200}$/;
/** Errors after which a request is sent again with the same id. */
const TRANSIENT = new Set(["unavailable", "overloaded", "rate_limited"]);
/** Close codes after which the client stops instead of reconnecting. */
const TERMINAL_CLOSE = new Set([1008, 1009]);
const OPEN = 1;
/** Positions remembered per topic (sessions) to drop what a restore delivers again. */
const RECENT_POSITIONS = 1000;
/** Messages kept for a session topic that has no handler yet. */
const ORPHAN_BUFFER = 1000;
/** An in-memory identity storage (the default): the identity lives as long as the client. */
export function memoryStorage() {
    const values = new Map();
    return {
        getItem: (key) => values.get(key) ?? null,
        setItem: (key, value) => {
            values.set(key, value);
        },
    };
}
function randomHex(bytes) {
    const out = new Uint8Array(bytes);
    const c = globalThis.crypto;
    if (c?.getRandomValues)
        c.getRandomValues(out);
    else
        for (let i = 0; i < bytes; i++)
            out[i] = Math.floor(Math.random() * 256);
    return Array.from(out, (b) => b.toString(16).padStart(2, "0")).join("");
}
/**
 * The delay before reconnect attempt `attempt` (1 = the first after a drop): exponential, bounded
 * by `maxDelayMs`, and jittered so that clients dropped together do not return together.
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
    const initial = options.initialDelayMs ?? 500;
    const max = options.maxDelayMs ?? 15000;
    const multiplier = options.multiplier ?? 2;
    const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
    const base = Math.min(max, initial * Math.pow(multiplier, Math.max(0, attempt - 1)));
    return Math.round(base * (1 - jitter * random()));
}
/** A connection to the broker that keeps itself connected. Create it with {@link connect}. */
export class BrokerClient {
    urls;
    urlIndex = 0;
    options;
    WS;
    prefix = randomHex(4);
    sequence = 0;
    identity;
    conn;
    connState = "connecting";
    stopped = false;
    attempt = 0;
    reconnectTimer;
    commitTimer;
    publishTimer;
    subs = new Map();
    pending = new Map();
    requests = new Map();
    commits = new Map();
    /** Session topics unsubscribed while disconnected: unsubscribed again if the broker restores them. */
    unsubscribeOnRestore = new Set();
    unsubscribing = new Map();
    buffered = 0;
    listeners = new Map();
    constructor(url, options = {}) {
        this.urls = Array.isArray(url) ? [...url] : [url];
        if (this.urls.length === 0)
            throw new TypeError("connect needs at least one URL");
        this.options = options;
        const WS = options.WebSocket ?? globalThis.WebSocket;
        if (!WS)
            throw new TypeError("no WebSocket implementation: pass options.WebSocket (in Node < 22: `import WebSocket from \"ws\"`)");
        this.WS = WS;
        if (options.clientId !== undefined && !IDENTITY.test(options.clientId))
            throw new TypeError("clientId must be 1-128 characters of A-Z a-z 0-9 . _ -");
        if (options.session !== undefined && !IDENTITY.test(options.session))
            throw new TypeError("session must be 1-128 characters of A-Z a-z 0-9 . _ -");
        this.identity = options.clientId;
        void this.open();
    }
    /** Current state: `connecting`, `connected`, `reconnecting` (waiting to retry) or `closed`. */
    get state() {
        return this.connState;
    }
    /** The identity sent as `?client=` (undefined until the first connection attempt read it). */
    get clientId() {
        return this.identity;
    }
    /** The URL of the current connection. */
    get url() {
        return this.conn?.url;
    }
    /** Publishes waiting for their ack. */
    get pendingPublishes() {
        return this.pending.size;
    }
    on(event, listener) {
        let set = this.listeners.get(event);
        if (!set)
            this.listeners.set(event, (set = new Set()));
        set.add(listener);
        return () => this.off(event, listener);
    }
    off(event, listener) {
        this.listeners.get(event)?.delete(listener);
    }
    /**
     * Subscribes `handler` to `topic`. The promise resolves at the first `subscribed`; from then on
     * the client resubscribes after every reconnect with `since` = the last `pos` it received, so the
     * handler sees each message once and in order. A handler that returns a promise gets the topic's
     * next message once it settles.
     */
    subscribe(topic, handler, options = {}) {
        if (!TOPIC.test(topic) || topic === "." || topic === "..")
            return Promise.reject(new TypeError(`invalid topic name '${topic}'`));
        if (typeof handler !== "function")
            return Promise.reject(new TypeError("subscribe needs a handler function"));
        if (options.last !== undefined && !(Number.isInteger(options.last) && options.last >= 0))
            return Promise.reject(new TypeError("last must be a non-negative integer"));
        if (this.stopped)
            return Promise.reject(new BrokerError("closed", "the client is closed", { topic }));
        const existing = this.subs.get(topic);
        if (existing && existing.handler) {
            return Promise.reject(new BrokerError("already_subscribed", `already subscribed to ${topic}: unsubscribe first`, { topic }));
        }
        if (existing) {
            // A topic the session restored before the app subscribed: adopt it.
            existing.handler = handler;
            existing.options = options;
            this.buffered += existing.queue.length;
            this.drain(existing);
            return Promise.resolve(existing.handle);
        }
        const sub = this.newSub(topic, handler, options);
        this.subs.set(topic, sub);
        this.unsubscribeOnRestore.delete(topic);
        const ready = new Promise((resolve, reject) => (sub.ready = { resolve, reject }));
        if (this.conn?.ready)
            this.sendSubscribe(this.conn, sub);
        return ready;
    }
    /** Stops delivering `topic` (no handler call after this returns) and unsubscribes on the broker. */
    unsubscribe(topic) {
        const sub = this.subs.get(topic);
        this.commits.delete(topic);
        if (!sub)
            return Promise.resolve();
        this.removeSub(sub, new BrokerError("unsubscribed", `unsubscribed from ${topic} before it was subscribed`, { topic }));
        const conn = this.conn;
        if (!conn?.ready) {
            if (this.options.session !== undefined)
                this.unsubscribeOnRestore.add(topic);
            return Promise.resolve();
        }
        if (!sub.active && sub.requestId === undefined)
            return Promise.resolve();
        const done = new Promise((resolve, reject) => {
            // The broker handles requests concurrently: an unsubscribe must not overtake the subscribe.
            if (!sub.active)
                sub.unsubscribeAfter = { resolve, reject };
            else
                this.sendUnsubscribe(conn, topic, resolve, reject);
        });
        const tracked = done.finally(() => {
            if (this.unsubscribing.get(topic) === tracked)
                this.unsubscribing.delete(topic);
        });
        this.unsubscribing.set(topic, tracked.catch(() => undefined));
        return tracked;
    }
    /**
     * Publishes `data` (any JSON value) to `topic`; resolves with the broker's ack once the message is
     * in the log. Unacknowledged publishes are resent with the same id after a reconnect (the broker
     * writes each once); while disconnected they wait in a queue of at most `maxPending`.
     */
    publish(topic, data, options = {}) {
        if (!TOPIC.test(topic) || topic === "." || topic === "..")
            return Promise.reject(new TypeError(`invalid topic name '${topic}'`));
        if (data === undefined)
            return Promise.reject(new TypeError("publish needs data (any JSON value; undefined is not one)"));
        if (this.stopped)
            return Promise.reject(new BrokerError("closed", "the client is closed", { topic }));
        const max = this.options.maxPending ?? 1000;
        if (this.pending.size >= max) {
            return Promise.reject(new BrokerError("queue_full", `${this.pending.size} publishes are waiting for their ack (maxPending = ${max})` +
                (this.conn?.ready ? "" : " while the client is disconnected") + ": wait for acks, or raise maxPending", { topic }));
        }
        const id = this.nextId();
        const frame = { type: "publish", id, topic, data };
        if (options.key !== undefined)
            frame.key = options.key;
        return new Promise((resolve, reject) => {
            const p = { id, frame: JSON.stringify(frame), topic, sent: false, retries: 0, retryAt: 0, resolve, reject, timer: undefined };
            this.pending.set(id, p);
            if (options.timeoutMs !== undefined) {
                p.timer = setTimeout(() => {
                    if (this.pending.delete(id))
                        reject(new BrokerError("timeout", `no ack for publish ${id} to ${topic} within ${options.timeoutMs} ms (it may still be written)`, { topic }));
                }, options.timeoutMs);
            }
            if (this.conn?.ready)
                this.sendPublish(this.conn, p);
        });
    }
    /**
     * Durable sessions: records that everything of `topic` up to `pos` is processed. Sent at once
     * when connected and subscribed, else after the next (re)subscription. With `autoCommit` the
     * client does this itself after each handler.
     */
    commit(topic, pos) {
        if (this.options.session === undefined)
            throw new BrokerError("bad_request", "commit needs a durable session (the session option)", { topic });
        this.commits.set(topic, pos);
        this.flushCommits();
    }
    /** Closes the connection and stops reconnecting; pending commits are sent first. Pending publishes fail with `closed`. */
    async close() {
        if (this.stopped)
            return;
        this.stopped = true;
        clearTimeout(this.reconnectTimer);
        clearTimeout(this.commitTimer);
        const conn = this.conn;
        if (conn?.ready && this.commits.size > 0) {
            this.flushCommits(true);
            await this.barrier(conn, 2000);
        }
        if (this.conn) {
            try {
                this.conn.ws.close(1000, "client closed");
            }
            catch { /* already closing */ }
            this.closed(this.conn, 1000, "client closed");
        }
        else {
            this.stop(1000, "client closed", false);
        }
    }
    /** Connects again after the client stopped (closed, or 1008/1009), or at once while waiting to retry. */
    reconnect() {
        if (this.conn)
            return;
        clearTimeout(this.reconnectTimer);
        this.stopped = false;
        this.attempt = 0;
        void this.open();
    }
    // ---- connection -------------------------------------------------------------------------
    async open() {
        if (this.stopped || this.conn)
            return;
        this.attempt++;
        const url = this.urls[this.urlIndex % this.urls.length];
        this.setState("connecting");
        this.emit("connecting", { url, attempt: this.attempt });
        let token;
        try {
            this.identity ??= await this.loadIdentity();
            if (this.options.getToken)
                token = await this.options.getToken();
        }
        catch (e) {
            this.emit("error", toError(e, "getToken failed"));
            this.retry(1006, "getToken failed", false);
            return;
        }
        if (this.stopped || this.conn)
            return;
        const params = { client: this.identity };
        if (this.options.session !== undefined)
            params.session = this.options.session;
        if (this.options.batch)
            params.batch = "1";
        const inQuery = this.options.tokenTransport === "query";
        if (token && inQuery)
            params.token = token;
        let ws;
        let full;
        try {
            full = withParams(url, params);
            ws = new this.WS(full);
        }
        catch (e) {
            this.emit("error", toError(e, `cannot open ${url}`));
            this.retry(1006, "cannot open the WebSocket", false);
            return;
        }
        const conn = {
            ws, url, open: false, ready: false, paused: false, authId: undefined,
            restored: new Set(), lastInbound: Date.now(), timers: new Set(), keepalive: undefined,
        };
        this.conn = conn;
        this.timer(conn, this.options.connectTimeoutMs ?? 10000, () => {
            if (!conn.open)
                this.drop(conn, "connect timeout");
        });
        ws.onopen = () => {
            if (this.conn !== conn)
                return;
            conn.open = true;
            conn.lastInbound = Date.now();
            if (token && !inQuery) {
                conn.authId = this.nextId();
                this.requests.set(conn.authId, { kind: "auth" });
                this.send(conn, { type: "auth", id: conn.authId, token });
                this.timer(conn, this.options.authTimeoutMs ?? 10000, () => {
                    if (!conn.ready)
                        this.drop(conn, "no authed reply");
                });
            }
            else {
                this.ready(conn);
            }
        };
        ws.onmessage = (event) => this.received(conn, event.data);
        ws.onerror = (event) => {
            if (this.conn !== conn)
                return;
            const message = event?.message;
            this.emit("error", new BrokerError("transport", `WebSocket error on ${url}${message ? ": " + message : ""}`));
        };
        ws.onclose = (event) => this.closed(conn, event.code, event.reason ?? "");
    }
    /** The connection is usable (opened, and authenticated when a token is sent as a frame). */
    ready(conn) {
        conn.ready = true;
        this.attempt = 0;
        this.setState("connected");
        this.emit("connected", { url: conn.url });
        const interval = this.options.pingIntervalMs ?? 25000;
        if (interval > 0) {
            const timeout = this.options.pingTimeoutMs ?? 10000;
            let pinged = 0;
            conn.keepalive = setInterval(() => {
                if (this.conn !== conn)
                    return;
                const now = Date.now();
                if (conn.paused) {
                    conn.lastInbound = now;
                    return;
                }
                if (pinged > conn.lastInbound) {
                    // A ping is out and nothing came since: the connection is dead once it waited long enough.
                    if (now - pinged >= timeout)
                        this.drop(conn, "keepalive timeout");
                }
                else if (now - conn.lastInbound >= interval) {
                    pinged = now;
                    this.send(conn, { type: "ping", id: this.nextId() });
                }
            }, Math.max(50, Math.min(interval, timeout) / 2));
        }
        for (const sub of this.subs.values())
            this.sendSubscribe(conn, sub);
        this.flushPublishes();
    }
    closed(conn, code, reason) {
        if (this.conn !== conn)
            return;
        this.conn = undefined;
        for (const t of conn.timers)
            clearTimeout(t);
        clearInterval(conn.keepalive);
        for (const [id, r] of this.requests) {
            if (r.kind === "unsubscribe" || (r.kind === "subscribe" && r.sub.unsubscribeAfter)) {
                // A new connection starts without it, unless the session restores it.
                if (this.options.session !== undefined)
                    this.unsubscribeOnRestore.add(r.kind === "unsubscribe" ? r.topic : r.sub.topic);
                if (r.kind === "unsubscribe")
                    r.resolve();
                else
                    r.sub.unsubscribeAfter.resolve();
            }
            if (r.kind === "ping")
                r.resolve();
            this.requests.delete(id);
        }
        for (const sub of this.subs.values()) {
            sub.active = false;
            sub.requestId = undefined;
        }
        for (const p of this.pending.values())
            p.sent = false;
        const wasConnected = conn.ready;
        if (this.stopped)
            this.stop(code, reason, wasConnected);
        else if (TERMINAL_CLOSE.has(code)) {
            this.stopped = true;
            this.stop(code, reason, wasConnected);
        }
        else
            this.retry(code, reason, wasConnected);
    }
    retry(code, reason, wasConnected) {
        const max = this.options.reconnect?.maxAttempts;
        if (max !== undefined && this.attempt >= max) {
            this.stopped = true;
            this.stop(code, reason, wasConnected);
            return;
        }
        this.urlIndex++;
        const delayMs = backoffDelay(this.attempt + 1, this.options.reconnect);
        this.setState("reconnecting");
        this.emit("disconnected", { code, reason, willReconnect: true, delayMs, wasConnected });
        clearTimeout(this.reconnectTimer);
        this.reconnectTimer = setTimeout(() => void this.open(), delayMs);
    }
    stop(code, reason, wasConnected) {
        this.setState("closed");
        clearTimeout(this.commitTimer);
        clearTimeout(this.publishTimer);
        const error = new BrokerError("closed", `the connection closed (${code}${reason ? " " + reason : ""}) and the client stopped`, { closeCode: code });
        for (const p of this.pending.values()) {
            clearTimeout(p.timer);
            p.reject(error);
        }
        this.pending.clear();
        for (const sub of this.subs.values()) {
            if (sub.ready) {
                sub.ready.reject(error);
                sub.ready = undefined;
            }
        }
        this.emit("disconnected", { code, reason, willReconnect: false, wasConnected });
    }
    /** Gives up on a connection that does not answer (it is not waited for). */
    drop(conn, reason) {
        try {
            if (conn.ws.terminate)
                conn.ws.terminate();
            else
                conn.ws.close(4000, reason);
        }
        catch { /* closing anyway */ }
        this.closed(conn, 1006, reason);
    }
    // ---- inbound ------------------------------------------------------------------------------
    received(conn, data) {
        if (this.conn !== conn)
            return;
        conn.lastInbound = Date.now();
        if (typeof data !== "string") {
            this.emit("error", new BrokerError("bad_frame", "the broker sent a non-text frame"));
            return;
        }
        let parsed;
        try {
            parsed = JSON.parse(data);
        }
        catch {
            this.emit("error", new BrokerError("bad_frame", `unreadable frame: ${data.slice(0, 200)}`));
            return;
        }
        // Batched connections (?batch=1) may get an array of server objects in one frame.
        const frames = Array.isArray(parsed) ? parsed : [parsed];
        for (const f of frames) {
            if (this.conn !== conn)
                return;
            if (f && typeof f === "object")
                this.dispatch(conn, f);
        }
    }
    dispatch(conn, f) {
        switch (f.type) {
            case "message": return this.onMessage(f);
            case "subscribed": return this.onSubscribed(conn, f);
            case "unsubscribed": return this.onUnsubscribed(f);
            case "ack": return this.onAck(f);
            case "pong": return this.onPong(f);
            case "error": return this.onError(conn, f);
            case "authed": return this.onAuthed(conn, f);
            case "token_expiring": return void this.refreshToken(conn);
            default: return; // newer servers may send more
        }
    }
    onMessage(f) {
        const topic = f.topic;
        const sub = this.subs.get(topic);
        if (!sub || sub.removed)
            return;
        const pos = f.pos;
        if (sub.dedupe) {
            if (sub.dedupe.has(pos))
                return; // delivered before the session restore
            sub.dedupe = undefined;
        }
        sub.lastPos = pos;
        if (this.options.session !== undefined) {
            sub.recent.push(pos);
            if (sub.recent.length > RECENT_POSITIONS)
                sub.recent.splice(0, sub.recent.length - RECENT_POSITIONS);
        }
        const message = { topic, pos, ts: f.ts, data: f.data };
        if (f.key !== undefined)
            message.key = f.key;
        if (f.encoding !== undefined)
            message.encoding = f.encoding;
        if (f.headers !== undefined)
            message.headers = f.headers;
        if (f.headers_base64 !== undefined)
            message.headers_base64 = f.headers_base64;
        if (!sub.handler) {
            // Restored by the session before the app subscribed: kept (bounded) for its handler.
            if (sub.queue.length >= ORPHAN_BUFFER) {
                if (!sub.orphanOverflowReported) {
                    sub.orphanOverflowReported = true;
                    this.emit("error", new BrokerError("no_handler", `the session restored ${topic} but nothing subscribed to it: messages beyond ${ORPHAN_BUFFER} are dropped; call subscribe("${topic}", handler)`, { topic }));
                }
                return;
            }
            sub.queue.push(message);
            return;
        }
        sub.queue.push(message);
        this.buffered++;
        this.flowControl();
        this.drain(sub);
    }
    onSubscribed(conn, f) {
        const topic = f.topic;
        const pos = f.pos;
        const recovered = typeof f.recovered === "boolean" ? f.recovered : undefined;
        if (f.id === undefined || f.id === null) {
            // Restored from the durable session: the broker resumes after the last commit.
            conn.restored.add(topic);
            let sub = this.subs.get(topic);
            if (!sub) {
                if (this.unsubscribeOnRestore.delete(topic)) {
                    this.sendUnsubscribe(conn, topic, () => undefined, (e) => this.emit("error", e));
                    return;
                }
                sub = this.newSub(topic, null, {});
                this.subs.set(topic, sub);
            }
            sub.active = true;
            // What this client already received may come again (commits trail deliveries): drop it.
            sub.dedupe = sub.recent.length > 0 ? new Set(sub.recent) : undefined;
            this.subscribedNow(sub, { topic, pos, recovered, resumed: sub.lastPos !== undefined, restored: true });
            return;
        }
        const request = this.requests.get(f.id);
        if (!request || request.kind !== "subscribe")
            return;
        this.requests.delete(f.id);
        const sub = request.sub;
        sub.requestId = undefined;
        if (sub.unsubscribeAfter) {
            const { resolve, reject } = sub.unsubscribeAfter;
            sub.unsubscribeAfter = undefined;
            this.sendUnsubscribe(conn, topic, resolve, reject);
            return;
        }
        if (sub.removed || this.subs.get(topic) !== sub)
            return;
        if (conn.restored.has(topic))
            return; // the session's restored subscription answered first; this is the idempotent reply
        sub.active = true;
        sub.headPos = pos;
        this.subscribedNow(sub, { topic, pos, recovered, resumed: request.resumed, restored: false });
    }
    subscribedNow(sub, info) {
        sub.recovered = info.recovered;
        if (sub.ready) {
            sub.ready.resolve(sub.handle);
            sub.ready = undefined;
        }
        try {
            sub.options.onSubscribed?.(info);
        }
        catch (e) {
            this.emit("error", toError(e, "onSubscribed failed"));
        }
        this.emit("subscribed", info);
        this.flushCommits();
    }
    onUnsubscribed(f) {
        const request = this.requests.get(f.id);
        if (request?.kind !== "unsubscribe")
            return;
        this.requests.delete(f.id);
        request.resolve();
    }
    onAck(f) {
        const id = f.id;
        const p = this.pending.get(id);
        if (!p)
            return;
        this.pending.delete(id);
        clearTimeout(p.timer);
        p.resolve({ id, topic: f.topic, pos: f.pos });
    }
    onPong(f) {
        const request = this.requests.get(f.id);
        if (request?.kind !== "ping")
            return;
        this.requests.delete(f.id);
        request.resolve();
    }
    onAuthed(conn, f) {
        this.requests.delete(f.id);
        const info = {};
        if (typeof f.sub === "string")
            info.sub = f.sub;
        if (typeof f.exp === "number")
            info.exp = f.exp;
        this.emit("authed", info);
        if (!conn.ready && f.id === conn.authId)
            this.ready(conn);
    }
    async refreshToken(conn) {
        if (!this.options.getToken)
            return;
        let token;
        try {
            token = await this.options.getToken();
        }
        catch (e) {
            this.emit("error", toError(e, "getToken failed on token_expiring"));
            return;
        }
        if (!token || this.conn !== conn)
            return;
        const id = this.nextId();
        this.requests.set(id, { kind: "auth" });
        this.send(conn, { type: "auth", id, token });
    }
    onError(conn, f) {
        const code = String(f.code ?? "internal");
        const text = String(f.message ?? code);
        const retryAfterMs = typeof f.retry_after_ms === "number" ? f.retry_after_ms : undefined;
        const id = typeof f.id === "string" ? f.id : undefined;
        const p = id !== undefined ? this.pending.get(id) : undefined;
        if (p) {
            if (TRANSIENT.has(code)) {
                // Not written: sent again with the same id (written once however often it is sent).
                p.sent = false;
                p.retries++;
                p.retryAt = Date.now() + (retryAfterMs ?? backoffDelay(p.retries, this.options.reconnect));
                this.schedulePublishes();
                return;
            }
            this.pending.delete(p.id);
            clearTimeout(p.timer);
            p.reject(new BrokerError(code, text, { topic: p.topic, retryAfterMs }));
            return;
        }
        const request = id !== undefined ? this.requests.get(id) : undefined;
        if (id !== undefined)
            this.requests.delete(id);
        switch (request?.kind) {
            case "subscribe": {
                const sub = request.sub;
                sub.requestId = undefined;
                if (sub.unsubscribeAfter) {
                    sub.unsubscribeAfter.resolve(); // never subscribed
                    sub.unsubscribeAfter = undefined;
                    return;
                }
                if (sub.removed || this.subs.get(sub.topic) !== sub)
                    return;
                if (TRANSIENT.has(code)) {
                    this.timer(conn, retryAfterMs ?? backoffDelay(1, this.options.reconnect), () => {
                        if (this.conn === conn && !sub.removed && !sub.active && sub.requestId === undefined)
                            this.sendSubscribe(conn, sub);
                    });
                    return;
                }
                const error = new BrokerError(code, text, { topic: sub.topic });
                const wasReady = sub.ready;
                this.removeSub(sub, error);
                if (!wasReady)
                    this.emit("error", error);
                return;
            }
            case "unsubscribe":
                if (code === "not_found")
                    request.resolve();
                else
                    request.reject(new BrokerError(code, text, { topic: request.topic }));
                return;
            case "ping":
                request.resolve();
                return;
            case "auth":
                if (!conn.ready && id === conn.authId && code !== "unauthorized") {
                    // A broker without auth does not know the frame (bad_request): carry on without it.
                    this.emit("error", new BrokerError(code, `the broker did not take the auth frame (${text}); continuing without auth`));
                    this.ready(conn);
                    return;
                }
                this.emit("error", new BrokerError(code, text)); // unauthorized: the broker closes with 1008
                return;
            default:
                this.emit("error", new BrokerError(code, text, { topic: typeof f.topic === "string" ? f.topic : undefined, retryAfterMs }));
        }
    }
    // ---- delivery -----------------------------------------------------------------------------
    /** Runs the topic's handler over its queue, one message at a time (awaiting a returned promise). */
    drain(sub) {
        if (sub.running || !sub.handler)
            return;
        sub.running = true;
        const step = () => {
            while (sub.queue.length > 0 && !sub.removed && sub.handler) {
                const message = sub.queue.shift();
                this.buffered--;
                if (this.conn?.paused)
                    this.flowControl();
                let result;
                try {
                    result = sub.handler(message);
                }
                catch (e) {
                    this.emit("error", toError(e, `the handler of ${sub.topic} failed`));
                }
                if (result && typeof result.then === "function") {
                    result.then(() => { this.handled(sub, message); step(); }, (e) => { this.emit("error", toError(e, `the handler of ${sub.topic} failed`)); this.handled(sub, message); step(); });
                    return;
                }
                this.handled(sub, message);
            }
            sub.running = false;
            this.flowControl();
        };
        step();
    }
    handled(sub, message) {
        if (this.options.session === undefined || this.options.autoCommit === false || sub.removed)
            return;
        this.commits.set(sub.topic, message.pos);
        const interval = this.options.commitIntervalMs ?? 100;
        if (interval <= 0)
            this.flushCommits();
        else if (this.commitTimer === undefined) {
            this.commitTimer = setTimeout(() => {
                this.commitTimer = undefined;
                this.flushCommits();
            }, interval);
        }
    }
    /** Pauses the socket (where it can be paused) while too many messages wait for their handlers. */
    flowControl() {
        const conn = this.conn;
        if (!conn || !conn.open || !conn.ws.pause || !conn.ws.resume)
            return;
        const high = this.options.pauseAt ?? 1000;
        if (!conn.paused && this.buffered > high) {
            conn.paused = true;
            conn.ws.pause();
        }
        else if (conn.paused && this.buffered <= Math.floor(high / 2)) {
            conn.paused = false;
            conn.ws.resume();
        }
    }
    // ---- outbound -----------------------------------------------------------------------------
    sendSubscribe(conn, sub) {
        if (sub.removed || sub.active || sub.requestId !== undefined || !sub.handler)
            return;
        if (conn.restored.has(sub.topic))
            return;
        const unsubscribing = this.unsubscribing.get(sub.topic);
        if (unsubscribing) {
            // The broker handles requests concurrently: subscribe only once the unsubscribe is done.
            void unsubscribing.then(() => {
                if (this.conn === conn && conn.ready)
                    this.sendSubscribe(conn, sub);
            });
            return;
        }
        const id = this.nextId();
        const frame = { type: "subscribe", id, topic: sub.topic };
        const o = sub.options;
        let resumed = false;
        if (sub.lastPos !== undefined) {
            frame.since = sub.lastPos;
            resumed = true;
        }
        else if (sub.headPos !== undefined && o.from !== "earliest" && o.since === undefined) {
            // Subscribed before but nothing arrived yet: resume from the head it started at.
            frame.since = sub.headPos;
        }
        else {
            if (o.since !== undefined)
                frame.since = o.since;
            if (o.from !== undefined)
                frame.from = o.from;
            if (o.last !== undefined)
                frame.last = o.last;
        }
        if (o.key !== undefined)
            frame.key = o.key;
        if (o.headers)
            frame.headers = true;
        sub.requestId = id;
        this.requests.set(id, { kind: "subscribe", sub, resumed });
        this.send(conn, frame);
    }
    sendUnsubscribe(conn, topic, resolve, reject) {
        const id = this.nextId();
        this.requests.set(id, { kind: "unsubscribe", topic, resolve, reject });
        if (!this.send(conn, { type: "unsubscribe", id, topic })) {
            this.requests.delete(id);
            resolve();
        }
    }
    sendPublish(conn, p) {
        if (p.sent)
            return;
        if (this.sendRaw(conn, p.frame))
            p.sent = true;
    }
    /** Sends every publish that is not on the wire and due, in the order they were made. */
    flushPublishes() {
        const conn = this.conn;
        if (!conn?.ready)
            return;
        const now = Date.now();
        for (const p of this.pending.values()) {
            if (!p.sent && p.retryAt <= now)
                this.sendPublish(conn, p);
        }
        this.schedulePublishes();
    }
    schedulePublishes() {
        clearTimeout(this.publishTimer);
        this.publishTimer = undefined;
        let next = Infinity;
        for (const p of this.pending.values())
            if (!p.sent)
                next = Math.min(next, p.retryAt);
        if (next === Infinity || !this.conn?.ready)
            return;
        this.publishTimer = setTimeout(() => this.flushPublishes(), Math.max(0, next - Date.now()));
    }
    flushCommits(force = false) {
        const conn = this.conn;
        if (!conn?.ready)
            return;
        if (!force && this.commitTimer !== undefined)
            return; // the timer sends them
        for (const [topic, pos] of this.commits) {
            const sub = this.subs.get(topic);
            if (!sub) {
                this.commits.delete(topic);
                continue;
            }
            if (!sub.active)
                continue; // after its (re)subscription
            // Not tracked: a stored commit gets no reply (an error names the topic in its message).
            this.send(conn, { type: "commit", id: this.nextId(), topic, pos });
            this.commits.delete(topic);
        }
    }
    /** Resolves when the broker answered a ping sent after everything sent so far (or after `timeoutMs`). */
    barrier(conn, timeoutMs) {
        return new Promise((resolve) => {
            const id = this.nextId();
            const timer = setTimeout(resolve, timeoutMs);
            this.requests.set(id, { kind: "ping", resolve: () => { clearTimeout(timer); resolve(); } });
            if (!this.send(conn, { type: "ping", id })) {
                clearTimeout(timer);
                resolve();
            }
        });
    }
    send(conn, frame) {
        return this.sendRaw(conn, JSON.stringify(frame));
    }
    sendRaw(conn, text) {
        if (this.conn !== conn || conn.ws.readyState !== OPEN)
            return false;
        try {
            conn.ws.send(text);
            return true;
        }
        catch (e) {
            this.emit("error", toError(e, "send failed"));
            return false;
        }
    }
    // ---- helpers ------------------------------------------------------------------------------
    newSub(topic, handler, options) {
        const sub = {
            topic, handler, options, lastPos: undefined, headPos: undefined, recovered: undefined,
            active: false, requestId: undefined, queue: [], running: false, removed: false, ready: undefined,
            recent: [], dedupe: undefined, orphanOverflowReported: false, unsubscribeAfter: undefined,
            handle: undefined,
        };
        sub.handle = {
            topic,
            get lastPos() { return sub.lastPos; },
            get recovered() { return sub.recovered; },
            unsubscribe: () => (this.subs.get(topic) === sub ? this.unsubscribe(topic) : Promise.resolve()),
        };
        return sub;
    }
    removeSub(sub, error) {
        sub.removed = true;
        if (sub.handler)
            this.buffered -= sub.queue.length;
        sub.queue.length = 0;
        if (this.subs.get(sub.topic) === sub)
            this.subs.delete(sub.topic);
        if (sub.ready) {
            sub.ready.reject(error);
            sub.ready = undefined;
        }
        this.flowControl();
    }
    async loadIdentity() {
        const storage = this.options.storage;
        const key = this.options.storageKey ?? "broker.client-id";
        if (storage) {
            try {
                const stored = await storage.getItem(key);
                if (typeof stored === "string" && IDENTITY.test(stored))
                    return stored;
                const fresh = "c" + randomHex(16);
                await storage.setItem(key, fresh);
                return fresh;
            }
            catch (e) {
                this.emit("error", toError(e, "the identity storage failed; using an identity for this client only"));
            }
        }
        return "c" + randomHex(16);
    }
    /**
     * Request ids: a random prefix of this client object and a counter. The identity may be shared
     * (tabs with one localStorage, page reloads), so ids must never repeat under it: a repeated id
     * would be taken for a retry of an earlier publish and not written.
     */
    nextId() {
        return `${this.prefix}.${(++this.sequence).toString(36)}`;
    }
    timer(conn, ms, fn) {
        const t = setTimeout(() => {
            conn.timers.delete(t);
            fn();
        }, ms);
        conn.timers.add(t);
    }
    setState(state) {
        this.connState = state;
    }
    emit(event, value) {
        const set = this.listeners.get(event);
        if (!set || set.size === 0)
            return;
        for (const listener of [...set]) {
            try {
                listener(value);
            }
            catch (e) {
                if (event !== "error")
                    this.emit("error", toError(e, `a ${event} listener failed`));
            }
        }
    }
}
function toError(e, context) {
    if (e instanceof Error)
        return e;
    return new Error(`${context}: ${String(e)}`);
}
/** `url` (absolute, or relative to the page) as a ws:/wss: URL with `params` in its query. */
function withParams(url, params) {
    const base = globalThis.location?.href;
    const u = base ? new URL(url, base) : new URL(url);
    if (u.protocol === "http:")
        u.protocol = "ws:";
    else if (u.protocol === "https:")
        u.protocol = "wss:";
    for (const [k, v] of Object.entries(params))
        u.searchParams.set(k, v);
    return u.toString();
}
/**
 * Connects to the broker at `url` (`ws://host:port/ws`; in a page also `/ws`), or to the first
 * of several URLs that answers (each reconnect tries the next). The client keeps itself connected
 * until {@link BrokerClient.close}.
 */
export function connect(url, options = {}) {
    return new BrokerClient(url, options);
}
