// The published type declarations fit how applications use the client (test/types/usage.ts):
// `ws` and the DOM WebSocket both fit the WebSocket option, handlers and promises are typed.
import { test } from "node:test";
import { execFileSync } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

test("the type declarations compile against typical application code", { timeout: 60000 }, () => {
  execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "test/types/tsconfig.json")], { stdio: "pipe" });
});
