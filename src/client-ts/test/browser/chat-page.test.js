// The README's browser example, as a newcomer would use it, in a real headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core; no browser download): the page is served on
// 127.0.0.1 by this test, imports the client bundle from the broker (/broker-client.js, which must
// be the committed dist/broker-client.js) and chats through the topic. The broker process is
// killed (-9) and restarted mid-stream while a Node publisher and the page itself publish: the page
// shows every message once and in order, and the log holds each once.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { join, dirname } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startDevKafka, BrokerNode, tempDb, repoRoot, readAll } from "../support/processes.js";
import { client, closeClients, publishRange } from "../support/scenario.js";

const CHROMIUM = "/usr/bin/chromium";
const here = dirname(fileURLToPath(import.meta.url));

/** The first ```html block of the README's "TypeScript / browser client" section. */
function readmeExample() {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## TypeScript / browser client"));
  const match = /```html\n([\s\S]*?)```/.exec(section);
  assert.ok(match, "the README has the browser example");
  return match[1];
}

let kafka;
let node;
let web;
let browser;
let profile;

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  kafka = await startDevKafka();
  node = await BrokerNode.create("browser", { kafka, dbPath: tempDb("browser") });
  node.start();
  profile = mkdtempSync(join(tmpdir(), "broker-chromium-"));
  [browser] = await Promise.all([
    chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 60000,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    }),
    node.ready(),
  ]);
  // The example page, pointed at this broker (the README's three cluster URLs all become this node).
  const page = `<!doctype html><meta charset="utf-8"><title>chat</title>\n${readmeExample().replaceAll(/127\.0\.0\.1:808[0-2]/g, `127.0.0.1:${node.httpPort}`)}`;
  web = createServer((req, res) => {
    if (req.url === "/chat.html") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(page);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => web.listen(0, "127.0.0.1", r));
}, { timeout: 120000 });

after(async () => {
  await closeClients();
  await browser?.close();
  await new Promise((r) => (web ? web.close(r) : r()));
  await node?.kill();
  await kafka?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test("the README chat page survives kill -9 and restart of its broker: every message once, in order", { timeout: 120000 }, async () => {
  // The bundle the broker serves is the one built from these sources.
  const served = Buffer.from(await (await fetch(`${node.httpUrl}/broker-client.js`)).arrayBuffer());
  assert.ok(served.equals(readFileSync(join(here, "../../dist/broker-client.js"))), "the broker serves dist/broker-client.js (rebuild the solution)");

  const page = await browser.newPage();
  page.setDefaultTimeout(30000);
  const problems = [];
  const consoleLines = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("console", (m) => consoleLines.push(m.text()));
  await page.goto(`http://127.0.0.1:${web.address().port}/chat.html`);
  const items = () => page.locator("#log li").allInnerTexts();
  const say = async (text) => {
    await page.fill("#text", text);
    await page.click("#send button");
  };
  await say("hello from the page");
  await page.locator("#log li", { hasText: "hello from the page" }).waitFor();

  const N = 200;
  const publisher = client(node.wsUrl);
  let restarted;
  await publishRange(publisher, "chat", 0, N, {
    window: 10,
    data: (n) => ({ text: `m${n}` }),
    onPublished: (n) => {
      if (n === 100) {
        restarted = (async () => {
          await node.kill();
          await say("typed while the broker was down"); // waits in the page's queue
          await node.start().ready();
        })();
      }
    },
  });
  await restarted;
  await say("after the restart");
  await page.locator("#log li", { hasText: "after the restart" }).waitFor();

  const shown = await items();
  assert.deepEqual(problems, []);
  assert.ok(consoleLines.some((l) => /^closed 1006 .*reconnecting: true$/.test(l)), `the page saw its connection drop: ${consoleLines.join(" | ")}`);
  // The page subscribed with last: 20 before anything was published: it shows exactly the chat.
  const expected = ["hello from the page", ...Array.from({ length: N }, (_, n) => `m${n}`)];
  const numbered = shown.filter((t) => /^m\d+$/.test(t));
  assert.deepEqual(numbered, expected.slice(1), "each published message once, in order");
  assert.equal(shown.filter((t) => t === "typed while the broker was down").length, 1);
  assert.equal(shown.filter((t) => t === "hello from the page").length, 1);
  assert.equal(shown[shown.length - 1], "after the restart");

  // The log holds each message once (the page's queued publish and the publisher's retries included).
  const all = await readAll(node.wsUrl, "chat", (m) => m.data.text === "after the restart");
  assert.deepEqual(all.map((m) => m.data.text), shown);
});
