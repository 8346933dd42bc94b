// The broker dashboard: polls /api/cluster, and a live console over the public WebSocket protocol.
"use strict";
(function () {
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

  // Console: one WebSocket to this node's /ws, reconnecting after a close.
  let ws = null;
  let nextId = 1;
  const subscribed = new Set();

  function log(line, cls) {
    const div = text("div", new Date().toLocaleTimeString() + "  " + line, cls);
    const box = $("log");
    box.append(div);
    while (box.childElementCount > 500) box.firstElementChild.remove();
    box.scrollTop = box.scrollHeight;
  }

  function send(obj) {
    if (!ws || ws.readyState !== WebSocket.OPEN) { log("not connected", "error"); return; }
    ws.send(JSON.stringify(obj));
  }

  function connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    ws = new WebSocket(url);
    $("ws-state").textContent = "connecting";
    ws.onopen = () => {
      $("ws-state").textContent = "open";
      document.body.dataset.ws = "open";
      // After a reconnect, subscribe again to what the console was subscribed to.
      for (const topic of subscribed) send({ type: "subscribe", id: String(nextId++), topic });
    };
    ws.onmessage = (e) => {
      let f;
      try { f = JSON.parse(e.data); } catch { log("unreadable frame: " + e.data, "error"); return; }
      if (f.type === "message") {
        log(f.topic + " @" + f.pos + "  " + JSON.stringify(f.data), "message");
      } else {
        log("← " + e.data, f.type);
      }
    };
    ws.onclose = (e) => {
      $("ws-state").textContent = "closed (" + e.code + (e.reason ? " " + e.reason : "") + "), reconnecting";
      document.body.dataset.ws = "closed";
      setTimeout(connect, 1000);
    };
  }

  $("subscribe-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const topic = $("subscribe-topic").value.trim();
    subscribed.add(topic);
    const req = { type: "subscribe", id: String(nextId++), topic, from: $("subscribe-from").value };
    log("→ " + JSON.stringify(req), "request");
    send(req);
  });

  $("publish-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const raw = $("publish-data").value;
    let data;
    try { data = JSON.parse(raw); } catch { data = raw; }
    const req = { type: "publish", id: String(nextId++), topic: $("publish-topic").value.trim(), data };
    log("→ " + JSON.stringify(req), "request");
    send(req);
  });

  refreshCluster();
  refreshTopics();
  setInterval(refreshCluster, 2000);
  setInterval(refreshTopics, 2000);
  connect();
})();
