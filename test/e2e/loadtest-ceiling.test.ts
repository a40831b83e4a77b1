import WebSocket, { WebSocketServer } from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { CloseCode } from "../../proto/close-codes.js";
import { decodeServerMessage, encodeMessage } from "../../proto/codec.js";
import type { HelloMessage, ServerMessage } from "../../proto/messages.js";
import { changeStampOf } from "../../loadtest/agent-pool.js";
import { CeilingBroadcaster } from "../../loadtest/ceiling-broadcaster.js";
import { smallestFrameBytes } from "../../loadtest/ceiling-frames.js";
import type { TabbyClient, Update } from "../../src/client/index.js";
import { hubWith } from "./client-test-server.js";
import { CeilingSnapshotError, recordSnapshot } from "../../loadtest/ceiling-snapshot.js";
import { makeClient, makeServer, pool, refusingAddress, until } from "./client-test-utils.js";

const STATE = Object.fromEntries(
  Array.from({ length: 30 }, (_, i) => [`IPPool/p${i}`, pool(`10.${i}.0.0/16`)]),
);

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

  it("sends every session the snapshot recorded from a tabby server, compressed when the hello lists deflate-snapshot, then replays on top", async () => {
    const tabby = await makeServer({ hub: hubWith(STATE), compress: true });
    const b = await broadcaster();
    const recorded = await recordSnapshot(tabby.url, "felix", 5000);
    const info = b.snapshot(recorded);
    expect(info.bytes).toBe(recorded.bytes);
    expect(info.revision).toBe(tabby.hub.revision);
    expect(info.entries).toBe(Object.keys(STATE).length);
    expect(info.chunks).toBeGreaterThan(1); // the test hub cuts 512-byte chunks
    const full = client(b, "full");
    const skim = client(b, "skim");
    await Promise.all([full.synced(), skim.synced()]);
    expect(full.serverId).toBe(b.serverId);
    expect(full.revision).toBe(info.revision);
    for (const [key, value] of Object.entries(STATE)) expect(full.get(key)).toEqual(value);
    for (const c of [full, skim]) {
      expect(c.stats.snapshotChunks).toBe(info.chunks);
      expect(c.stats.snapshotBytes).toBe(info.bytes);
    }

    // A client that does not list the feature gets the same entries uncompressed.
    const ws = new WebSocket(`ws://127.0.0.1:${b.port}`);
    cleanups.push(() => Promise.resolve(ws.terminate()));
    const messages: ServerMessage[] = [];
    ws.on("message", (data: Buffer) => messages.push(decodeServerMessage(data)));
    await new Promise((resolve) => ws.once("open", resolve));
    const hello: HelloMessage = {
      t: "hello",
      versions: [1, 1],
      view: "felix",
      client: { name: "t", version: "1" },
    };
    ws.send(encodeMessage(hello));
    await until(() => messages.some((m) => m.t === "status"), 5000, "the plain snapshot");
    const welcome = messages[0];
    expect(welcome?.t === "welcome" && welcome.features).toEqual([]);
    const chunks = messages.flatMap((m) => (m.t === "snap-chunk" ? [m] : []));
    expect(chunks).toHaveLength(info.chunks);
    expect(chunks.every((m) => m.z === undefined)).toBe(true);
    expect(Object.fromEntries(chunks.flatMap((m) => m.entries ?? []).map((e) => [e.k, e.v]))).toEqual(STATE);

    // The deltas go on from the snapshot's revision.
    b.replay([{ bytes: smallestFrameBytes(2), changes: 2 }], 1000, 0.05);
    await until(() => !b.stats().isReplaying, 5000, "the replay's end");
    const last = b.stats().revision;
    expect(last).toBeGreaterThan(info.revision);
    await until(() => full.revision === last && skim.revision === last, 5000, "the replay");
    expect(full.size).toBe(info.entries + (last - info.revision));
    expect(() => b.snapshot(recorded)).toThrow(/before any session or replay/);
  });

  it("fails to record a snapshot from a server that closes the session, sends it uncompressed, or sends none in time", async () => {
    const closing = await makeServer({ hub: hubWith(STATE), compress: true, reject: { code: 4003 } });
    await expect(recordSnapshot(closing.url, "felix", 5000)).rejects.toThrow(/closed the session \(4003\)/);
    // Not what a tabby server sends a client that lists "deflate-snapshot".
    const plain = await makeServer({ hub: hubWith(STATE), compress: false });
    await expect(recordSnapshot(plain.url, "felix", 5000)).rejects.toThrow(/a snapshot chunk without z/);
    await expect(recordSnapshot(await refusingAddress(), "felix", 5000)).rejects.toThrow(
      CeilingSnapshotError,
    );
    // A server that takes the hello and never answers.
    const silent = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => new Promise((resolve) => silent.close(resolve)));
    await new Promise((resolve) => silent.once("listening", resolve));
    silent.on("connection", (ws) => cleanups.push(() => Promise.resolve(ws.terminate())));
    const port = (silent.address() as { port: number }).port;
    await expect(recordSnapshot(`ws://127.0.0.1:${port}`, "felix", 200)).rejects.toThrow(
      /no snapshot within 200 ms/,
    );
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
