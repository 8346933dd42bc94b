// Real broker processes for the end-to-end tests: the standalone Kafka-protocol log
// (Broker.DevKafka, so history survives broker restarts) and broker nodes (Broker.Server), from the
// Release build of the repository (`dotnet build Broker.sln -c Release` must have run). 127.0.0.1
// and free ports only; every process started here is killed by stopAll() (and on exit).
import { spawn } from "node:child_process";
import { createServer, connect as tcpConnect } from "node:net";
import { mkdtempSync, rmSync, writeFileSync, createWriteStream, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const serverDir = join(repoRoot, "src/Broker.Server/bin/Release/net10.0");
const serverDll = join(serverDir, "Broker.Server.dll");
const devKafkaDll = join(repoRoot, "src/Broker.DevKafka/bin/Release/net10.0/Broker.DevKafka.dll");

const started = new Set();
function killStarted() {
  for (const child of started) try { child.kill("SIGKILL"); } catch { /* gone */ }
}
process.on("exit", killStarted);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    killStarted();
    process.exit(1);
  });
}

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** Distinct free ports (asked together so that none is handed out twice). */
export async function freePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** Polls `probe` (async, truthy = done) until it succeeds or `timeoutMs` passes. */
export async function waitFor(probe, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ": " + last.message : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function portOpen(port) {
  return new Promise((resolveOpen) => {
    const socket = tcpConnect({ host: "127.0.0.1", port });
    socket.once("connect", () => { socket.destroy(); resolveOpen(true); });
    socket.once("error", () => resolveOpen(false));
  });
}

export const workDir = mkdtempSync(join(tmpdir(), "broker-client-ts-"));

function spawnLogged(name, args, env, cwd) {
  const log = createWriteStream(join(workDir, `${name}.log`), { flags: "a" });
  const child = spawn("dotnet", args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  started.add(child);
  child.once("exit", () => started.delete(child));
  child.logPath = join(workDir, `${name}.log`);
  return child;
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child, timeoutMs) {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolveExit, reject) => {
    const timer = setTimeout(() => reject(new Error(`pid ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once("exit", () => { clearTimeout(timer); resolveExit(); });
  });
}

export function checkBuilt() {
  for (const f of [serverDll, devKafkaDll]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: build the solution first (dotnet build Broker.sln -c Release)`);
  }
}

/** The standalone in-memory Kafka-protocol log. */
export async function startDevKafka() {
  checkBuilt();
  const [port, adminPort] = await freePorts(2);
  const child = spawnLogged("devkafka", [devKafkaDll, "--port", String(port), "--admin-port", String(adminPort)], {}, dirname(devKafkaDll));
  await waitFor(async () => {
    if (exited(child)) throw new Error(`Broker.DevKafka exited (${child.logPath})`);
    return (await portOpen(port)) && (await portOpen(adminPort));
  }, 60000, "Broker.DevKafka to listen");
  return {
    bootstrap: `127.0.0.1:${port}`,
    admin: `127.0.0.1:${adminPort}`,
    async stop() { child.kill("SIGKILL"); await waitExit(child, 10000); },
  };
}

/**
 * A broker node process. `seeds` are Akka addresses (default: itself, a cluster of one); `config`
 * extra HOCON lines; `env` extra environment. The node keeps its ports and database across
 * kill() + start(), so clients reconnect to the same URL.
 */
export class BrokerNode {
  constructor(name, { kafka, ports, seeds, dbPath, config = [], env = {} }) {
    this.name = name;
    this.kafka = kafka;
    [this.httpPort, this.adminPort, this.clusterPort] = ports;
    this.address = `akka.tcp://broker@127.0.0.1:${this.clusterPort}`;
    this.seeds = seeds ?? [this.address];
    this.dbPath = dbPath;
    this.configFile = join(workDir, `${name}.conf`);
    writeFileSync(this.configFile, ["broker.shutdown-deadline = 5s", "broker.cluster.split-brain-resolver.stable-after = 3s", "akka.loglevel = WARNING", ...config].join("\n") + "\n");
    this.env = env;
    this.wsUrl = `ws://127.0.0.1:${this.httpPort}/ws`;
    this.httpUrl = `http://127.0.0.1:${this.httpPort}`;
    this.adminUrl = `http://127.0.0.1:${this.adminPort}`;
    this.child = undefined;
    this.starts = 0;
  }

  static async create(name, options) {
    const ports = await freePorts(3);
    return new BrokerNode(name, { ...options, ports });
  }

  start() {
    this.starts++;
    this.child = spawnLogged(this.name, [serverDll], {
      BROKER_HTTP_HOST: "127.0.0.1",
      BROKER_HTTP_PORT: String(this.httpPort),
      BROKER_ADMIN_PORT: String(this.adminPort),
      BROKER_CLUSTER_HOST: "127.0.0.1",
      BROKER_CLUSTER_PORT: String(this.clusterPort),
      BROKER_SEEDS: this.seeds.join(","),
      BROKER_KAFKA_BOOTSTRAP: this.kafka.bootstrap,
      BROKER_KAFKA_EMBEDDED: "off",
      BROKER_TOPIC_CREATION: "devkafka",
      BROKER_DEVKAFKA_ADMIN: this.kafka.admin,
      BROKER_DB_PATH: this.dbPath,
      BROKER_CONFIG: this.configFile,
      ASPNETCORE_ENVIRONMENT: "Production",
      DOTNET_gcServer: "0",
      DOTNET_TieredPGO: "0",
      Logging__LogLevel__Microsoft: "Warning",
      ...this.env,
    }, serverDir);
    return this;
  }

  /** Waits until /healthz answers and a publish through this node is acknowledged. */
  async ready(timeoutMs = 90000) {
    const child = this.child;
    await waitFor(async () => {
      if (exited(child)) throw new Error(`${this.name} exited (log: ${child.logPath})`);
      const r = await fetch(`${this.httpUrl}/healthz`).catch(() => undefined);
      return r?.ok;
    }, timeoutMs, `${this.name} /healthz`);
    let attempt = 0;
    await waitFor(async () => {
      if (exited(child)) throw new Error(`${this.name} exited (log: ${child.logPath})`);
      return publishOnce(this.wsUrl, `ready.${this.name}`, { attempt: ++attempt }, 10000);
    }, timeoutMs, `${this.name} to acknowledge a publish`);
    return this;
  }

  /** kill -9. */
  async kill() {
    const child = this.child;
    if (!child || exited(child)) return;
    child.kill("SIGKILL");
    await waitExit(child, 10000);
  }

  /** SIGTERM (graceful: clients get 1001), bounded. */
  async stop() {
    const child = this.child;
    if (!child || exited(child)) return;
    child.kill("SIGTERM");
    try { await waitExit(child, 20000); } catch { await this.kill(); }
  }

  async admin(method, path, body) {
    const r = await fetch(this.adminUrl + path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status} ${text}`);
    return JSON.parse(text);
  }

  /** Prometheus text of /metrics, as name{labels} → value. */
  async metric(name) {
    const text = await (await fetch(`${this.httpUrl}/metrics`)).text();
    let total = 0;
    for (const line of text.split("\n")) {
      if (line.startsWith(name + " ") || line.startsWith(name + "{")) total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
    return total;
  }
}

/** One publish on a fresh raw connection; resolves true on its ack, false on anything else. */
function publishOnce(url, topic, data, timeoutMs) {
  return new Promise((resolveAck) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => { ws.terminate(); resolveAck(false); }, timeoutMs);
    const done = (ok) => { clearTimeout(timer); ws.terminate(); resolveAck(ok); };
    ws.on("open", () => ws.send(JSON.stringify({ type: "publish", id: "ready", topic, data })));
    ws.on("message", (raw) => {
      const f = JSON.parse(raw.toString());
      if (f.id === "ready") done(f.type === "ack");
    });
    ws.on("error", () => done(false));
    ws.on("close", () => done(false));
  });
}

/**
 * Reads `topic` from its earliest retained message with a raw connection up to and including the
 * first message for which `isLast(message)` is true (publish a sentinel after the data: anything
 * written twice shows up before it).
 */
export function readAll(url, topic, isLast, timeoutMs = 30000) {
  return new Promise((resolveAll, reject) => {
    const ws = new WebSocket(url);
    const messages = [];
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`read ${messages.length} messages of ${topic}, not the last one`)); }, timeoutMs);
    ws.on("open", () => ws.send(JSON.stringify({ type: "subscribe", id: "all", topic, from: "earliest" })));
    ws.on("message", (raw) => {
      const f = JSON.parse(raw.toString());
      if (f.type === "error") { clearTimeout(timer); ws.terminate(); reject(new Error(JSON.stringify(f))); return; }
      if (f.type !== "message") return;
      messages.push(f);
      if (isLast(f)) { clearTimeout(timer); ws.terminate(); resolveAll(messages); }
    });
    ws.on("error", (e) => { clearTimeout(timer); reject(e); });
  });
}

export function tempDb(name) {
  const dir = join(workDir, `db-${name}`);
  return join(dir, "broker.db");
}

export function cleanup() {
  try { rmSync(workDir, { recursive: true, force: true }); } catch { /* best effort */ }
}
