import { describe, expect, it } from "vitest";
import { planReconnect } from "../../src/client/reconnect-policy.js";
import type { SessionEnd } from "../../src/client/connection.js";
import { ServerPicker } from "../../src/client/server-picker.js";

const servers = ["ws://a", "ws://b", "ws://c"];

function moveEnd(reason: string, hint: string | undefined, delayMs = 100): SessionEnd {
  return {
    server: "ws://a",
    serverId: "A",
    closeCode: 1000,
    reason: "moving to another server",
    isLocal: true,
    error: undefined,
    move: {
      message: { t: "move", reason, delayMs, ...(hint !== undefined && { hint }) },
      receivedAtMs: 1000,
    },
    hadBaseline: true,
  };
}

describe("reconnect after a move", () => {
  it("waits out the delay, without backoff, prefers the hint, leaves the server", () => {
    let backoffs = 0;
    const plan = planReconnect(moveEnd("rebalance", "ws://c"), () => ++backoffs * 1000, 1040);
    expect(plan).toEqual({
      retryInMs: 60,
      hints: { avoid: "ws://a", prefer: "ws://c", isPreferFirm: false },
      hasLeft: true,
    });
    expect(backoffs).toBe(0);
    expect(planReconnect(moveEnd("shutting-down", "ws://b"), () => 1, 2000).hints.isPreferFirm).toBe(true);
  });

  it("a 4007 or 4008 without a move backs off and leaves; a dropped healthy session prefers its server", () => {
    const end = { ...moveEnd("rebalance", undefined), move: undefined, isLocal: false, closeCode: 4008 };
    expect(planReconnect(end, () => 500, 0)).toEqual({
      retryInMs: 500,
      hints: { avoid: "ws://a" },
      hasLeft: true,
    });
    expect(planReconnect({ ...end, closeCode: 1006 }, () => 500, 0)).toEqual({
      retryInMs: 500,
      hints: { prefer: "ws://a" },
      hasLeft: false,
    });
  });
});

describe("ServerPicker: servers recently left", () => {
  it("goes to the hint, and avoids a server it was moved away from (no bounce back) while another exists", () => {
    let now = 0;
    const p = new ServerPicker(
      () => 0,
      () => now,
      60_000,
    );
    p.left("ws://a");
    expect(p.pick(servers, { avoid: "ws://b", prefer: "ws://c" })).toBe("ws://c");
    p.newRound();
    // Random choice (r = 0 would take the first): not the server left a moment ago.
    expect(p.pick(servers, { avoid: "ws://c" })).toBe("ws://b");
    p.newRound();
    // A rebalance hint back to it is ignored; a draining server's (firm) hint is followed.
    expect(p.pick(servers, { avoid: "ws://c", prefer: "ws://a" })).toBe("ws://b");
    p.newRound();
    expect(p.pick(servers, { avoid: "ws://c", prefer: "ws://a", isPreferFirm: true })).toBe("ws://a");
    p.newRound();
    // The only one left: still chosen.
    expect(p.pick(["ws://a"])).toBe("ws://a");
    now = 61_000;
    expect(p.isRecentlyLeft("ws://a")).toBe(false);
    p.newRound();
    expect(p.pick(servers, { avoid: "ws://c", prefer: "ws://a" })).toBe("ws://a");
  });
});
