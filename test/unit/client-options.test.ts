import { describe, expect, it } from "vitest";
import { ClientOptionsError, TabbyClient } from "../../src/client/index.js";
import type { TabbyClientOptions } from "../../src/client/index.js";

const good: TabbyClientOptions = { servers: ["ws://127.0.0.1:5473"], view: "felix" };

describe("TabbyClient options", () => {
  it.each<[string, Record<string, unknown>]>([
    ["servers", { servers: [] }],
    ["servers", { servers: "ws://127.0.0.1:1" }],
    ["servers[1]", { servers: ["ws://127.0.0.1:1", "http://127.0.0.1:1"] }],
    ["view", { view: "calico" }],
    ["nodeName", { view: "bgp" }],
    ["nodeName", { nodeName: "" }],
    ["connectTimeoutMs", { connectTimeoutMs: 0 }],
    ["readTimeoutMs", { readTimeoutMs: 1.5 }],
    ["backoffInitialMs", { backoffInitialMs: -1 }],
    ["backoffMaxMs", { backoffInitialMs: 500, backoffMaxMs: 100 }],
    ["logger", { logger: { info: () => undefined } }],
    ["signal", { signal: {} }],
    ["mirror", { mirror: "no" }],
    ["token", { token: 42 }],
    ["maxFrameBytes", { maxFrameBytes: 10 }],
    ["clientName", { clientName: "x".repeat(200) }],
  ])("rejects a bad %s with ERR_CLIENT_OPTIONS naming it", (field, patch) => {
    let error: unknown;
    try {
      new TabbyClient({ ...good, ...patch });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ClientOptionsError);
    expect(error).toMatchObject({ code: "ERR_CLIENT_OPTIONS", field });
  });

  it("accepts a minimal configuration, and a node-scoped view with a node name", async () => {
    const a = new TabbyClient(good);
    const b = new TabbyClient({
      servers: () => Promise.resolve(["ws://127.0.0.1:1"]),
      view: "node-status",
      nodeName: "n1",
    });
    expect(a.status.state).toBe("disconnected");
    expect(a.revision).toBe(0);
    expect(b.serverId).toBeUndefined();
    await Promise.all([a.close(), b.close()]);
  });
});
