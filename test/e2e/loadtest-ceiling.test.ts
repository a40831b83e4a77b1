import WebSocket from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { CloseCode } from "../../proto/close-codes.js";
import { changeStampOf } from "../../loadtest/agent-pool.js";
import { CeilingBroadcaster } from "../../loadtest/ceiling-broadcaster.js";
import { smallestFrameBytes } from "../../loadtest/ceiling-frames.js";
import type { TabbyClient, Update } from "../../src/client/index.js";
import { makeClient, until } from "./client-test-utils.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function broadcaster(): Promise<CeilingBroadcaster> {
  const b = await CeilingBroadcaster.start();
  cleanups.push(() => b.close());
  return b;
}

function client(b: CeilingBroadcaster, mode: "full" | "decode" | "skim"): TabbyClient {
  const c = makeClient({
    servers: [`ws://127.0.0.1:${b.port}`],
    view: "felix",
    mirror: mode === "full",
    decodeDeltas: mode !== "skim",
  });
  c.start();
  return c;
}

describe("ceiling broadcaster", () => {
  it("gets TabbyClients in sync with an empty snapshot, then replays frames of the sizes asked at the rate asked", async () => {
    const b = await broadcaster();
    const full = client(b, "full");
    const decode = client(b, "decode");
    const skim = client(b, "skim");
    const updates: Update[] = [];
    decode.on("updates", (batch) => updates.push(...batch));
    await Promise.all([full.synced(), decode.synced(), skim.synced()]);
    expect(decode.serverId).toBe(b.serverId);
    expect(full.size).toBe(0);
    const before = decode.stats;

    // 5 changes a frame at 1000/s for 0.2 s: frame i is due at 5(i+1) ms, so 39 frames go out.
    const bytes = smallestFrameBytes(5) + 300;
    const sentAtMs = Date.now();
    b.replay(
      [
        { bytes, changes: 5 },
        { bytes: 10, changes: 5 }, // smaller than possible: sent at the smallest size, counted
      ],
      1000,
      0.2,
    );
    await until(() => !b.stats().isReplaying, 5000, "the replay's end");
    const stats = b.stats();
    expect(stats).toMatchObject({ framesSent: 39, changesSent: 195, revision: 196, framesOverSize: 19 });
    expect(stats.lastSentAtMs - stats.firstSentAtMs).toBeGreaterThanOrEqual(150);
    await until(
      () => [full, decode, skim].every((c) => c.revision === 196),
      5000,
      "every client at the last revision",
    );
    await until(() => updates.length === 195, 5000, "every update");
    expect(decode.stats.bytes - before.bytes).toBe(20 * bytes + 19 * smallestFrameBytes(5));
    expect(decode.stats.deltas - before.deltas).toBe(39);
    const stamps = updates.map((u) => changeStampOf(u.value)).filter((s) => s !== undefined);
    expect(stamps).toHaveLength(39); // one stamp a frame, on its first change
    for (const s of stamps) expect(s).toBeGreaterThanOrEqual(sentAtMs);
    expect(full.size).toBe(195); // distinct keys (C/0000 … C/00c2)
    expect(full.isInSync && decode.isInSync && skim.isInSync).toBe(true);
    expect(() => b.replay([{ bytes, changes: 1 }], 0, 1)).toThrow(RangeError);
  });

  it("closes a session whose first message is not a hello", async () => {
    const b = await broadcaster();
    const ws = new WebSocket(`ws://127.0.0.1:${b.port}`);
    cleanups.push(() => Promise.resolve(ws.terminate()));
    const closed = new Promise<number>((resolve) => ws.once("close", (code: number) => resolve(code)));
    await new Promise((resolve) => ws.once("open", resolve));
    ws.send(Buffer.from([0xc1]));
    expect(await closed).toBe(CloseCode.badFrame);
    expect(b.stats().sessions).toBe(0);
  });
});
