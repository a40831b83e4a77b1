import { performance } from "node:perf_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";
import { promisify } from "node:util";
import { deflateRaw } from "node:zlib";
import type { Logger } from "pino";
import { encodeMessage } from "../../../proto/codec.js";
import { assembleEntryArray } from "../../../proto/frame-builder.js";
import type { ViewName } from "../../../proto/messages.js";
import type { EncodedSnapshot, SessionSnapshotFrames } from "../../snapshot/hub.js";
import type { FanoutMetrics } from "./metrics.js";
import type { Session } from "./session.js";

const deflateRawAsync = promisify(deflateRaw);

/** A chunk's compressed entry array, and the store revisions of its entries (which say what it holds). */
interface CompressedChunk {
  readonly revisions: readonly number[];
  readonly z: Promise<Buffer>;
}

function sameRevisions(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface SnapshotSenderDeps {
  readonly logger: Logger;
  readonly metrics: FanoutMetrics;
  /** Wait for the socket to drain whenever more than this many bytes are queued in user space. */
  readonly highWaterBytes: number;
  /** The hub's flushed head revision (snap-end names it when the snapshot is older: PROTOCOL.md §6.2). */
  readonly head: () => number;
  /**
   * Snapshots streamed at once (FanoutOptions.snapshotSendConcurrency); the sessions beyond wait their
   * turn in arrival order. 0 (the default): no limit.
   */
  readonly maxConcurrent?: number;
  /**
   * A session whose socket has not drained for this many ms gives its turn up to the next one and goes on
   * without a turn (a slow or stalled client cannot hold up the queue). Default 1000.
   */
  readonly stallMs?: number;
  /**
   * How long the senders may go on writing chunks (in microtasks, while sockets take every write at once)
   * before they all give the event loop a turn (ms). Default 50: a socket then takes its data in bursts,
   * which its reader takes in fewer, larger reads (5 ms made the storms slower: docs/BENCHMARKS.md);
   * 0: a turn after a chunk or two.
   */
  readonly sliceMs?: number;
  /** The clock for sliceMs (ms). Default performance.now. */
  readonly now?: () => number;
}

/**
 * Turns to stream a snapshot: at most `limit` at once (0: no limit), the others wait in arrival order. With
 * a limit, the sessions of a storm finish group after group instead of all together at the end.
 */
class SendTurns {
  readonly #limit: number;
  readonly #queue: (() => void)[] = [];
  #active = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  get isLimited(): boolean {
    return this.#limit > 0;
  }

  /** Resolves once this caller holds a turn; give it back exactly once with `release`. */
  acquire(): Promise<void> {
    if (this.#limit === 0 || this.#active < this.#limit) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#queue.push(resolve));
  }

  /** Gives a turn back: to the first waiting caller if any (#active stays), else to the pool. */
  release(): void {
    const next = this.#queue.shift();
    if (next === undefined) this.#active--;
    else next();
  }
}

/**
 * Streams a shared encoded snapshot to one session (optionally a bounded number of sessions at a time),
 * never queueing more than about one chunk above the high-water mark in the socket's user-space buffer.
 * With "deflate-snapshot", the chunk frames carry `z` (raw deflate of the chunk's entry array), compressed
 * once per snapshot on the zlib thread pool and shared by every session that takes the same snapshot.
 */
export class SnapshotSender {
  readonly #deps: SnapshotSenderDeps;
  readonly #compressed = new WeakMap<EncodedSnapshot, readonly Promise<Buffer>[]>();
  /**
   * Per view, the compressed chunks of its last compressed snapshot by the revision of their first entry:
   * what the next build's unchanged chunks take. Holds only compressed bytes and revisions (about 6 MB for
   * felix at 1000 nodes), never the entries, so that it pins no old values.
   */
  readonly #lastChunks = new Map<ViewName, Map<number, CompressedChunk>>();
  /** Sessions each snapshot is being sent to right now. */
  readonly #sending = new WeakMap<EncodedSnapshot, number>();
  readonly #turns: SendTurns;
  readonly #stallMs: number;
  readonly #sliceMs: number;
  readonly #now: () => number;
  /** When the current slice of writing began (undefined: none); the turn every sender waits for once it is over. */
  #sliceStart: number | undefined;
  #turn: Promise<void> | undefined;

  constructor(deps: SnapshotSenderDeps) {
    this.#deps = deps;
    this.#turns = new SendTurns(deps.maxConcurrent ?? 0);
    this.#stallMs = deps.stallMs ?? 1000;
    this.#sliceMs = deps.sliceMs ?? 50;
    this.#now = deps.now ?? (() => performance.now());
  }

  /**
   * Resolves at once while the current slice lasts; past it, with the next turn of the event loop (one
   * shared setImmediate), after which a new slice begins. A socket that takes every write at once leaves
   * the senders nothing to wait for, and without this they went on in microtasks: a storm's 1000 senders
   * kept the event loop from I/O and timers for seconds (no accepts, no pongs, no upstream reads, no
   * /metrics; docs/BENCHMARKS.md, session 32).
   */
  #nextSlice(): Promise<void> | undefined {
    if (this.#turn !== undefined) return this.#turn;
    const now = this.#now();
    if (this.#sliceStart === undefined) {
      // A new slice; once the event loop has had a turn (this fires), the next write begins another.
      this.#sliceStart = now;
      setImmediate(() => (this.#sliceStart = undefined));
      return undefined;
    }
    if (now - this.#sliceStart < this.#sliceMs) return undefined;
    this.#turn = nextTurn().then(() => {
      this.#turn = undefined;
      this.#sliceStart = undefined;
    });
    return this.#turn;
  }

  /** Snapshots being streamed now (with a turn). */
  get streamingCount(): number {
    return this.#turns.active;
  }

  /** Sessions waiting for a turn to stream their snapshot. */
  get waitingCount(): number {
    return this.#turns.waiting;
  }

  /**
   * Once the session has a turn, takes the snapshot `pick` gives (chosen then, not on arrival: a session
   * that waited gets a snapshot as fresh as the reuse rules allow, so its catch-up stays short), sends
   * begin, the shared chunks, the node's chunk and end, and waits until all of it is written to the
   * kernel. Resolves the snapshot sent, or undefined if the session closed on the way.
   */
  async send(
    session: Session,
    pick: () => { readonly snapshot: EncodedSnapshot; readonly frames: SessionSnapshotFrames },
    isCompressed: boolean,
  ): Promise<EncodedSnapshot | undefined> {
    const turn = { held: false };
    try {
      await this.#turns.acquire();
      turn.held = true;
      if (session.isClosed) return undefined;
      const { snapshot, frames } = pick();
      this.#sending.set(snapshot, (this.#sending.get(snapshot) ?? 0) + 1);
      try {
        const isSent = await this.#send(session, snapshot, frames, isCompressed, turn);
        return isSent ? snapshot : undefined;
      } finally {
        this.#sending.set(snapshot, (this.#sending.get(snapshot) ?? 1) - 1);
      }
    } finally {
      if (turn.held) this.#turns.release();
    }
  }

  /** True while `snapshot` is being sent to at least one session. */
  isSending(snapshot: EncodedSnapshot): boolean {
    return (this.#sending.get(snapshot) ?? 0) > 0;
  }

  /** Waits for the session's socket to drain; past stallMs, the session's turn goes to the next one. */
  async #drained(session: Session, view: ViewName, turn: { held: boolean }): Promise<void> {
    if (!turn.held || !this.#turns.isLimited) return session.whenDrained();
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<"stalled">((resolve) => {
      timer = setTimeout(() => resolve("stalled"), this.#stallMs);
    });
    const drained = session.whenDrained();
    try {
      if ((await Promise.race([drained, stalled])) !== "stalled") return;
    } finally {
      clearTimeout(timer);
    }
    turn.held = false;
    this.#turns.release();
    this.#deps.metrics.snapshotSendStalled(view);
    await drained;
  }

  async #send(
    session: Session,
    snapshot: EncodedSnapshot,
    frames: SessionSnapshotFrames,
    isCompressed: boolean,
    turn: { held: boolean },
  ): Promise<boolean> {
    const compressed = isCompressed ? this.compressedChunks(snapshot) : undefined;
    session.send(frames.begin);
    const chunks = compressed === undefined ? snapshot.chunks : undefined;
    for (let i = 0; i < snapshot.chunkCount; i++) {
      const frame = chunks === undefined ? await compressed?.[i] : chunks[i];
      if (session.isClosed || frame === undefined) return false;
      session.send(frame);
      if (session.bufferedAmount > this.#deps.highWaterBytes)
        await this.#drained(session, snapshot.view, turn);
      const slice = this.#nextSlice();
      if (slice !== undefined) await slice;
    }
    if (session.isClosed) return false;
    if (frames.nodeChunk !== null) session.send(frames.nodeChunk);
    // A reused (older) snapshot: snap-end names the head the catch-up will reach, so that a client diffing
    // its mirror waits for it instead of showing its agent the snapshot's older values first.
    const head = this.#deps.head();
    session.send(
      head > snapshot.revision
        ? encodeMessage({ t: "snap-end", revision: snapshot.revision, head })
        : frames.end,
    );
    await session.whenDrained();
    return !session.isClosed;
  }

  /**
   * The snapshot's chunk frames with `z`, compressed once (in the background) and cached with it. A chunk
   * with the same entries as one of the view's previous build (the same store revisions in the same
   * order: the same bytes) takes that chunk's compressed bytes instead of being compressed again.
   */
  compressedChunks(snapshot: EncodedSnapshot): readonly Promise<Buffer>[] {
    const cached = this.#compressed.get(snapshot);
    if (cached !== undefined) return cached;
    const previous = this.#lastChunks.get(snapshot.view);
    const chunks = new Map<number, CompressedChunk>();
    let reused = 0;
    const frames = snapshot.chunkEntries.map((entries, index) => {
      const revisions = snapshot.chunkRevisions[index] ?? [];
      const first = revisions[0] ?? -1;
      const before = previous?.get(first);
      let z: Promise<Buffer>;
      if (before !== undefined && sameRevisions(before.revisions, revisions)) {
        z = before.z;
        reused++;
      } else {
        z = deflateRawAsync(assembleEntryArray(entries));
        // A chunk that failed to compress is sent uncompressed (below) and is compressed again next time.
        z.catch(() => chunks.delete(first));
      }
      chunks.set(first, { revisions, z });
      return z.then(
        (bytes) => encodeMessage({ t: "snap-chunk", index, z: bytes }),
        (err: unknown) => {
          this.#deps.logger.warn(
            { err, view: snapshot.view, index },
            "snapshot chunk compression failed; sending it uncompressed",
          );
          return snapshot.chunks[index] as Buffer;
        },
      );
    });
    this.#lastChunks.set(snapshot.view, chunks);
    this.#deps.metrics.snapshotChunks(snapshot.view, frames.length - reused, reused);
    this.#compressed.set(snapshot, frames);
    void Promise.all(frames).then((done) =>
      this.#deps.metrics.snapshotCompressed(
        snapshot.view,
        done.reduce((n, f) => n + f.byteLength, 0),
      ),
    );
    return frames;
  }
}
