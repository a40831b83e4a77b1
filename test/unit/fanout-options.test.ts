import { describe, expect, it } from "vitest";
import { FanoutOptionError, resolveFanoutOptions } from "../../src/server/fanout/index.js";
import type { FanoutOptions } from "../../src/server/fanout/index.js";

describe("fan-out options", () => {
  it("fills in the documented defaults", () => {
    const o = resolveFanoutOptions();
    expect(o).toMatchObject({
      maxInboundFrameBytes: 1024 * 1024,
      handshakeTimeoutMs: 10_000,
      maxConnections: 10_000,
      listenBacklog: 4096,
      flushWindowMs: 10,
      snapshotReuseMs: 1000,
      softBufferedBytes: 1024 * 1024,
      maxLagMs: 30_000,
      pingIntervalMs: 10_000,
      pongTimeoutMs: 60_000,
      fanoutSliceSessions: 500,
      features: [
        "deflate-snapshot",
        "move",
        "deflate-deltas",
        "patch-deltas",
        "json-patch-deltas",
        "replica-resume",
        "leave",
      ],
    });
    expect(o.serverId).toMatch(/^[0-9a-f]{16}$/);
    expect(resolveFanoutOptions().serverId).not.toBe(o.serverId);
  });

  it.each<[FanoutOptions, string]>([
    [{ maxInboundFrameBytes: 10 }, "maxInboundFrameBytes"],
    [{ handshakeTimeoutMs: 0 }, "handshakeTimeoutMs"],
    [{ flushWindowMs: -1 }, "flushWindowMs"],
    [{ maxLagMs: 1.5 }, "maxLagMs"],
    [{ maxConnections: Number.NaN }, "maxConnections"],
    [{ listenBacklog: 0 }, "listenBacklog"],
    [{ pingIntervalMs: 10_000, pongTimeoutMs: 10_000 }, "pongTimeoutMs"],
    [{ serverId: "" }, "serverId"],
    [{ features: ["teleport" as never] }, "features"],
  ])("rejects %o naming the field", (options, field) => {
    let error: unknown;
    try {
      resolveFanoutOptions(options);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FanoutOptionError);
    expect(error).toMatchObject({ code: "ERR_FANOUT_INVALID_OPTION", field });
  });
});
