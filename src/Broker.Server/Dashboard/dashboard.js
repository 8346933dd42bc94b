// The broker dashboard: polls /api/cluster and /api/topics, and a live console over the public
// WebSocket protocol through the TypeScript client. An ES module (strict, scoped), no build step.
import { connect } from "/broker-client.js";

const $ = (id) => document.getElementById(id);
const text = (tag, value, cls) => {
  const e = document.createElement(tag);
  e.textContent = value;
  if (cls) e.className = cls;
  return e;
};

async function refreshCluster() {
  try {
    const r = await fetch("/api/cluster", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const c = await r.json();
    $("self").textContent = c.self;
    $("leader").textContent = c.leader || "none";
    $("connections").textContent = c.connections;
    const rows = c.members.map((m) => {
      const tr = document.createElement("tr");
      tr.className = "member";
      tr.dataset.status = m.status;
      tr.append(text("td", m.address), text("td", m.status, m.status),
        text("td", m.reachable ? "yes" : "no", m.reachable ? "" : "unreachable"), text("td", m.roles.join(", ")));
      return tr;
    });
    $("members").replaceChildren(...rows);
    $("cluster-error").textContent = "";
  } catch (e) {
    $("cluster-error").textContent = "cluster state unavailable: " + e.message;
  }
}

// Topics this node reads, with their local subscribers; the rate is the change of the feed's
// position (Kafka offset) between two polls.
let lastTopics = new Map();
let lastPoll = 0;
async function refreshTopics() {
  try {
    const r = await fetch("/api/topics", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const body = await r.json();
    const now = performance.now();
    const seconds = lastPoll ? (now - lastPoll) / 1000 : 0;
    const rows = body.topics.map((t) => {
      const before = lastTopics.get(t.topic);
      const rate = seconds > 0 && before !== undefined ? Math.max(0, (t.position - before) / seconds) : 0;
      const tr = document.createElement("tr");
      tr.className = "topic";
      tr.dataset.topic = t.topic;
      tr.append(text("td", t.topic), text("td", t.kafkaTopic), text("td", String(t.subscribers), "subscribers"), text("td", rate.toFixed(1)));
      return tr;
    });
    lastTopics = new Map(body.topics.map((t) => [t.topic, t.position]));
    lastPoll = now;
    if (rows.length) $("topics").replaceChildren(...rows);
  } catch (e) {
    $("cluster-error").textContent = "topics unavailable: " + e.message;
  }
}

// Console: the TypeScript client (/broker-client.js) on this node's /ws. It reconnects by itself,
// resumes each subscription after the last message shown, and resends unacknowledged publishes.
function log(line, cls) {
  const div = text("div", new Date().toLocaleTimeString() + "  " + line, cls);
  const box = $("log");
  box.append(div);
  while (box.childElementCount > 500) box.firstElementChild.remove();
  box.scrollTop = box.scrollHeight;
}

const client = connect("/ws");
client.on("connecting", () => { $("ws-state").textContent = "connecting"; });
client.on("connected", () => {
  $("ws-state").textContent = "open";
  document.body.dataset.ws = "open";
});
client.on("disconnected", (d) => {
  const state = "closed (" + d.code + (d.reason ? " " + d.reason : "") + ")" + (d.willReconnect ? ", reconnecting" : "");
  $("ws-state").textContent = state;
  document.body.dataset.ws = "closed";
  if (d.wasConnected) log("connection " + state, "closed");
});
// Failed attempts while reconnecting show in the state line; other errors in the log.
client.on("error", (e) => { if (e.code !== "transport") log("error: " + (e.code ? e.code + " " : "") + e.message, "error"); });

$("subscribe-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const topic = $("subscribe-topic").value.trim();
  const from = $("subscribe-from").value;
  log("→ subscribe " + topic + " from " + from, "request");
  client.subscribe(topic, (m) => log(m.topic + " @" + m.pos + "  " + JSON.stringify(m.data), "message"), {
    from,
    onSubscribed: (i) => log("← subscribed " + i.topic + " @" + i.pos + (i.recovered === false ? " (messages were lost to retention)" : ""), "subscribed"),
  }).catch((err) => log("← " + (err.code || "error") + " " + err.message, "error"));
});

$("publish-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const raw = $("publish-data").value;
  let data;
  try { data = JSON.parse(raw); } catch { data = raw; }
  const topic = $("publish-topic").value.trim();
  log("→ publish " + topic + "  " + JSON.stringify(data), "request");
  client.publish(topic, data).then(
    (ack) => log("← ack " + ack.topic + " @" + ack.pos, "ack"),
    (err) => log("← " + (err.code || "error") + " " + err.message, "error"));
});

refreshCluster();
refreshTopics();
setInterval(refreshCluster, 2000);
setInterval(refreshTopics, 2000);
