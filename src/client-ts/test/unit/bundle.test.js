// dist/broker-client.js is committed (Broker.Server embeds it and serves it at /broker-client.js,
// so building the broker needs no Node). It must never go stale: compiling the sources again
// must reproduce it byte for byte (`npm run bundle` refreshes it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

test("dist/broker-client.js is exactly what the sources compile to", { timeout: 60000 }, () => {
  const out = mkdtempSync(join(tmpdir(), "broker-client-bundle-"));
  try {
    execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.json"), "--outDir", out], { stdio: "pipe" });
    const fresh = readFileSync(join(out, "broker-client.js"));
    const committed = readFileSync(join(root, "dist/broker-client.js"));
    assert.ok(fresh.equals(committed), "dist/broker-client.js is stale: run `npm run bundle` in src/client-ts and commit it");
    // A browser module with no imports (one file, nothing to resolve).
    assert.doesNotMatch(fresh.toString("utf8"), /^\s*import\s/m);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
