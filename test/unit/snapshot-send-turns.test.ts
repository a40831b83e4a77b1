import pino from "pino";
import { describe, expect, it } from "vitest";
import { decodeServerMessage } from "../../proto/codec.js";
import type { ResourceValue } from "../../proto/messages.js";
import { FanoutMetrics } from "../../src/server/fanout/metrics.js";
import type { Session } from "../../src/server/fanout/session.js";
import { SnapshotSender } from "../../src/server/fanout/snapshot-sender.js";
import { Hub } from "../../src/snapshot/hub.js";
import type { EncodedSnapshot } from "../../src/snapshot/hub.js";

/**
 * A session's socket, seen by the sender: every frame stays queued ("buffered") until the test drains it,
 * so the sender must wait for each chunk (the high-water mark is 1 byte).
 */
class FakeSession {
  readonly types: string[] = [];
  isClosed = false;
  #queued = 0;
  #waiters: (() => void)[] = [];

  send(frame: Buffer): void {
    if (this.isClosed) return;
    this.types.push(decodeServerMessage(frame).t);
    this.#queued += frame.byteLength;
  }

  get bufferedAmount(): number {
    return this.#queued;
  }

  whenDrained(): Promise<void> {
    if (this.#queued === 0 || this.isClosed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The kernel took everything queued. */
  drain(): void {
    this.#queued = 0;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  close(): void {
    this.isClosed = true;
    this.drain();
  }

  get started(): boolean {
    return this.types.includes("snap-begin");
  }

  get finished(): boolean {
    return this.types.includes("snap-end");
  }
}

/** A socket whose kernel buffer takes every write at once: nothing ever stays queued. */
class InstantSession extends FakeSession {
  override get bufferedAmount(): number {
    return 0;
  }

  override whenDrained(): Promise<void> {
    return Promise.resolve();
  }
}

const pool = (i: number): ResourceValue => ({
  metadata: { name: `pool-${i}`, resourceVersion: `${i}` },
  spec: { cidr: `10.0.${i}.0/24`, blockSize: 26, pad: "x".repeat(300) },
});

function setup(maxConcurrent: number, stallMs = 60_000, sliceMs?: number, now?: () => number) {
  const hub = new Hub({ snapshotChunkBytes: 1024 });
  for (let i = 0; i < 40; i++) hub.upsert(`IPPool/pool-${i}`, pool(i));
  hub.flush();
  const snapshot = hub.snapshot("felix", 0, 0);
  const sender = new SnapshotSender({
    logger: pino({ level: "silent" }),
    metrics: FanoutMetrics.standalone(),
    highWaterBytes: 1,
    maxConcurrent,
    stallMs,
    ...(sliceMs !== undefined && { sliceMs }),
    ...(now !== undefined && { now }),
    head: () => hub.revision,
  });
  const send = async (s: FakeSession, snap: EncodedSnapshot = snapshot): Promise<boolean> =>
    (await sender.send(
      s as unknown as Session,
      () => ({ snapshot: snap, frames: hub.sessionFrames(snap, undefined) }),
      false,
    )) === snap;
  return { sender, snapshot, send, hub };
}

/** Lets the promise chains run (several rounds: each chunk is one await). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** Drains `s` until its send resolves. */
async function pump(s: FakeSession, sent: Promise<boolean>): Promise<boolean> {
  let done = false;
  void sent.then(() => (done = true));
  for (let i = 0; i < 10_000 && !done; i++) {
    s.drain();
    await settle();
  }
  return sent;
}

describe("snapshot send turns", () => {
  it("streams at most maxConcurrent snapshots; the next waiting session starts when one finishes, in arrival order", async () => {
    const { sender, snapshot, send } = setup(2);
    expect(snapshot.chunkCount).toBeGreaterThan(3);
    const sessions = Array.from({ length: 4 }, () => new FakeSession());
    const sends = sessions.map((s) => send(s));
    await settle();
    expect(sessions.map((s) => s.started)).toEqual([true, true, false, false]);
    expect(sender.streamingCount).toBe(2);
    expect(sender.waitingCount).toBe(2);
    // The second finishes first: its turn goes to the third, not the fourth.
    expect(await pump(sessions[1] as FakeSession, sends[1] as Promise<boolean>)).toBe(true);
    await settle();
    expect(sessions.map((s) => s.started)).toEqual([true, true, true, false]);
    expect(sessions[1]?.finished).toBe(true);
    expect(sessions[0]?.finished).toBe(false);
    expect(await pump(sessions[0] as FakeSession, sends[0] as Promise<boolean>)).toBe(true);
    await settle();
    expect(sessions[3]?.started).toBe(true);
    expect(await pump(sessions[2] as FakeSession, sends[2] as Promise<boolean>)).toBe(true);
    expect(await pump(sessions[3] as FakeSession, sends[3] as Promise<boolean>)).toBe(true);
    expect(sender.streamingCount).toBe(0);
    expect(sender.waitingCount).toBe(0);
    // Every session got the whole snapshot: begin, every chunk, end.
    for (const s of sessions) {
      expect(s.types).toEqual(["snap-begin", ...Array(snapshot.chunkCount).fill("snap-chunk"), "snap-end"]);
    }
  });

  it("a session whose socket does not drain gives its turn up and still gets its whole snapshot later", async () => {
    const { sender, snapshot, send } = setup(1, 200);
    const stalled = new FakeSession();
    const next = new FakeSession();
    const stalledSend = send(stalled);
    const nextSend = send(next);
    await settle();
    expect([stalled.started, next.started]).toEqual([true, false]);
    // Nothing drains the stalled socket: after stallMs its turn passes on.
    const startedAt = Date.now();
    while (!next.started && Date.now() - startedAt < 5000) await new Promise((r) => setTimeout(r, 5));
    expect(next.started).toBe(true);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(150);
    expect(stalled.finished).toBe(false);
    // The turn moved: one streaming (the next one), none waiting.
    expect(sender.streamingCount).toBe(1);
    expect(sender.waitingCount).toBe(0);
    expect(await pump(next, nextSend)).toBe(true);
    expect(sender.streamingCount).toBe(0);
    // The stalled one goes on without a turn once it drains, and is not counted as streaming again.
    expect(await pump(stalled, stalledSend)).toBe(true);
    expect(stalled.types.filter((t) => t === "snap-chunk")).toHaveLength(snapshot.chunkCount);
    expect(sender.streamingCount).toBe(0);
  });

  it("a session that closes while waiting for its turn gets nothing, and takes no turn from the others", async () => {
    const { sender, send } = setup(1);
    const first = new FakeSession();
    const gone = new FakeSession();
    const last = new FakeSession();
    const sends = [send(first), send(gone), send(last)];
    await settle();
    gone.close();
    expect(await pump(first, sends[0] as Promise<boolean>)).toBe(true);
    expect(await sends[1]).toBe(false);
    expect(gone.types).toEqual([]);
    await settle();
    expect(last.started).toBe(true);
    expect(await pump(last, sends[2] as Promise<boolean>)).toBe(true);
    expect(sender.streamingCount).toBe(0);
    expect(sender.waitingCount).toBe(0);
  });

  it("a waiting session's snapshot is chosen when its turn comes, not when it arrived", async () => {
    const { sender, hub } = setup(1);
    const picked: string[] = [];
    const pick = (name: string) => () => {
      picked.push(name);
      // Each pick at a later time, with no reuse: a build of the view as it is then.
      const snapshot = hub.snapshot("felix", picked.length * 10_000, 0);
      return { snapshot, frames: hub.sessionFrames(snapshot, undefined) };
    };
    const first = new FakeSession();
    const second = new FakeSession();
    const firstSend = sender.send(first as unknown as Session, pick("first"), false);
    const secondSend = sender.send(second as unknown as Session, pick("second"), false);
    await settle();
    expect(picked).toEqual(["first"]);
    // The view changes while the second waits: its snapshot, built at its turn, holds the change.
    hub.upsert("IPPool/pool-new", pool(99));
    hub.flush();
    await pump(
      first,
      firstSend.then((x) => x !== undefined),
    );
    await settle();
    expect(picked).toEqual(["first", "second"]);
    const got = await pump(
      second,
      secondSend.then((x) => x !== undefined),
    );
    expect(got).toBe(true);
    expect((await secondSend)?.revision).toBe(hub.revision);
    expect((await firstSend)?.revision).toBeLessThan(hub.revision);
  });

  it("0 means no limit: every session streams at once", async () => {
    const { sender, send } = setup(0);
    const sessions = Array.from({ length: 5 }, () => new FakeSession());
    const sends = sessions.map((s) => send(s));
    await settle();
    expect(sessions.every((s) => s.started)).toBe(true);
    expect(sender.waitingCount).toBe(0);
    for (const [i, s] of sessions.entries()) expect(await pump(s, sends[i] as Promise<boolean>)).toBe(true);
  });

  it("gives the event loop a turn after every slice of writing (0 ms here), also when every write goes through at once", async () => {
    const { snapshot, send } = setup(0, 60_000, 0);
    expect(snapshot.chunkCount).toBeGreaterThan(3);
    const sessions = Array.from({ length: 3 }, () => new InstantSession());
    const chunks = (): number =>
      sessions.reduce((n, s) => n + s.types.filter((t) => t === "snap-chunk").length, 0);
    // What a timer and I/O see while the snapshots stream: they must not wait for all of it.
    const atTurns: number[] = [];
    const watch = setInterval(() => atTurns.push(chunks()), 0);
    const sends = sessions.map((s) => send(s));
    let firstTurn: number | undefined;
    setImmediate(() => (firstTurn = chunks()));
    expect(await Promise.all(sends)).toEqual([true, true, true]);
    clearInterval(watch);
    const total = 3 * snapshot.chunkCount;
    // The first turn comes after a chunk or two per session (a 0 ms slice), not after the whole snapshots.
    expect(firstTurn).toBeGreaterThanOrEqual(3);
    expect(firstTurn).toBeLessThanOrEqual(6);
    expect(atTurns.some((n) => n > 0 && n < total)).toBe(true);
    for (const s of sessions) {
      expect(s.types).toEqual(["snap-begin", ...Array(snapshot.chunkCount).fill("snap-chunk"), "snap-end"]);
    }
  });

  it("gives the event loop a turn once a slice of writing is over, and not before", async () => {
    // A clock that moves 1 ms each time the sender reads it: a 5 ms slice is over after 5 or 6 chunks.
    let ms = 0;
    const { snapshot, send } = setup(0, 60_000, 5, () => ms++);
    expect(snapshot.chunkCount).toBeGreaterThan(8);
    const session = new InstantSession();
    const sent = send(session);
    let firstTurn: number | undefined;
    setImmediate(() => (firstTurn = session.types.filter((t) => t === "snap-chunk").length));
    expect(await sent).toBe(true);
    expect(firstTurn).toBeGreaterThanOrEqual(5);
    expect(firstTurn).toBeLessThanOrEqual(7);
  });
});
