import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL("../support/lean-imports-child.ts", import.meta.url));

async function child(env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, ["--import", "tsx", CHILD], {
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe("lean imports (src/cli/lean-imports.ts)", () => {
  it("loads a real KubeConfig without client-node's generated API clients", async () => {
    const out = await child();
    expect(out.server).toBe("https://127.0.0.1:6443");
    expect(out.headers).toEqual({ Authorization: "Bearer secret-token" });
    // makeApiClient, the one user of the generated clients, meets the stand-in.
    expect(out.makeApiClient).toMatch(/does not load client-node's generated API clients/);
  });

  it("is off with TABBY_FULL_CLIENT_NODE=1 (the generated clients load as usual)", async () => {
    const out = await child({ TABBY_FULL_CLIENT_NODE: "1" });
    expect(out.headers).toEqual({ Authorization: "Bearer secret-token" });
    expect(out.makeApiClient).not.toMatch(/does not load/);
  });
});
