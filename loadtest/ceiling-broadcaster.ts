import { randomBytes } from "node:crypto";
import { WebSocketServer } from "ws";
import type { RawData, WebSocket } from "ws";
import { CloseCode } from "../proto/close-codes.js";
import { decodeClientMessage, encodeMessage } from "../proto/codec.js";
import { ProtoError, ProtoErrorCode } from "../proto/errors.js";
import { VIEW_NAMES } from "../proto/messages.js";
import type { ViewName } from "../proto/messages.js";
import { FEATURES, PROTOCOL_VERSION_MAX, negotiateVersion } from "../proto/version.js";
import { KEY_POOL, frameTemplate, stampFrame } from "./ceiling-frames.js";
import type { FrameTemplate } from "./ceiling-frames.js";
import { plainChunks } from "./ceiling-snapshot.js";
import type { CeilingSnapshot } from "./ceiling-snapshot.js";
import type { CeilingSnapshotInfo, CeilingStats, ReplayFrame } from "./protocol.js";

const SEND_OPTIONS = { binary: true } as const;
/** The revision of the (empty) snapshot every session starts from, unless `snapshot` recorded one. */
const BASE_REVISION = 1;

export interface BroadcasterOptions {
  /** A session whose socket has more than this queued in user space is closed (counted). Default 256 MiB. */
  readonly maxBufferedBytes?: number;
  /** A `ping` message to every session this often, so that idle agents' read watchdogs stay calm. */
  readonly pingIntervalMs?: number;
  /** Timer precision: frames due within this many ms are sent together. Default 1. */
  readonly tickMs?: number;
}

/**
 * The load test's ceiling: a WebSocket server that speaks just enough of the tabby protocol for
 * TabbyClient (hello → welcome, a snapshot, in-sync status, then `deltas` frames) and broadcasts
 * pre-encoded frames of given sizes at a given rate, with no store, no views and no per-session work but
 * the write. Every session gets the same Buffer. What the agents receive from it is what this machine can
 * carry with tabby's frame sizes, in the same run.
 */
export class CeilingBroadcaster {
  readonly serverId = `ceiling-${randomBytes(6).toString("hex")}`;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Set<WebSocket>();
  readonly #maxBuffered: number;
  readonly #tickMs: number;
  readonly #templates = new Map<string, FrameTemplate>();
  readonly #pingTimer: NodeJS.Timeout;
  #replayTimer: NodeJS.Timeout | undefined;
  #snapshot: CeilingSnapshot | undefined;
  #plainChunks: Buffer[] | undefined;
  #isReplaying = false;
  #head = BASE_REVISION;
  #nextKey = 0;
  #framesSent = 0;
  #changesSent = 0;
  #payloadBytesSent = 0;
  #framesOverSize = 0;
  #sessionsDropped = 0;
  #firstSentAtMs = 0;
  #lastSentAtMs = 0;

  private constructor(wss: WebSocketServer, o: BroadcasterOptions) {
    this.#wss = wss;
    this.#maxBuffered = o.maxBufferedBytes ?? 256 * 1024 * 1024;
    this.#tickMs = o.tickMs ?? 1;
    wss.on("connection", (ws) => this.#onConnection(ws));
    const ping = (): void => {
      const frame = encodeMessage({ t: "ping", ts: Date.now() });
      for (const ws of this.#sessions) ws.send(frame, SEND_OPTIONS);
    };
    this.#pingTimer = setInterval(ping, o.pingIntervalMs ?? 10_000);
  }

  static async start(options: BroadcasterOptions = {}): Promise<CeilingBroadcaster> {
    const wss = new WebSocketServer({
      host: "127.0.0.1",
      port: 0,
      perMessageDeflate: false,
      maxPayload: 65_536,
      // The accept queue tabby's agent port has (--listen-backlog): the agents connect all at once.
      backlog: 4096,
    });
    await new Promise<void>((resolve, reject) => {
      wss.once("listening", resolve);
      wss.once("error", reject);
    });
    return new CeilingBroadcaster(wss, options);
  }

  get port(): number {
    const address = this.#wss.address();
    if (address === null || typeof address === "string") throw new Error("not listening on a port");
    return address.port;
  }

  stats(): CeilingStats {
    return {
      sessions: this.#sessions.size,
      isReplaying: this.#isReplaying,
      revision: this.#head,
      framesSent: this.#framesSent,
      changesSent: this.#changesSent,
      payloadBytesSent: this.#payloadBytesSent,
      framesOverSize: this.#framesOverSize,
      sessionsDropped: this.#sessionsDropped,
      firstSentAtMs: this.#firstSentAtMs,
      lastSentAtMs: this.#lastSentAtMs,
    };
  }

  /**
   * From now on every session that says hello is sent this snapshot (recorded from tabby: recordSnapshot),
   * the same Buffers to every session, all at once; the replay's deltas go on from its revision. Only
   * before any session or replay.
   */
  snapshot(snapshot: CeilingSnapshot): CeilingSnapshotInfo {
    if (this.#head !== BASE_REVISION || this.#isReplaying || this.#sessions.size > 0) {
      throw new Error("a snapshot only before any session or replay");
    }
    // Over IPC (structured clone) the Buffers may arrive as plain Uint8Arrays.
    const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    const s: CeilingSnapshot = {
      ...snapshot,
      begin: asBuffer(snapshot.begin),
      chunks: snapshot.chunks.map(asBuffer),
      end: asBuffer(snapshot.end),
    };
    this.#snapshot = s;
    this.#plainChunks = undefined;
    this.#head = s.revision;
    return { bytes: s.bytes, chunks: s.chunks.length, entries: s.entries, revision: s.revision };
  }

  /**
   * Sends `frames` in order, looping, for `durationSeconds`: frame i when the changes of the frames before
   * it are due at `changesPerSecond` (so the changes go out at that rate, batched as the frames batch them).
   */
  replay(frames: readonly ReplayFrame[], changesPerSecond: number, durationSeconds: number): CeilingStats {
    if (this.#isReplaying) throw new Error("a replay is under way");
    if (frames.length === 0) throw new RangeError("frames: none to replay");
    if (!(changesPerSecond > 0)) throw new RangeError(`changesPerSecond: ${changesPerSecond}`);
    const templates = frames.map((f) => this.#template(f));
    const startMs = Date.now();
    const endMs = startMs + durationSeconds * 1000;
    let index = 0;
    /** Changes up to and including the next frame: it is due when they are. */
    let dueChanges = (templates[0] as FrameTemplate).changes;
    this.#isReplaying = true;
    const tick = (): void => {
      this.#replayTimer = undefined;
      const now = Date.now();
      for (;;) {
        const dueAtMs = startMs + (dueChanges * 1000) / changesPerSecond;
        if (dueAtMs >= endMs) {
          this.#isReplaying = false;
          return;
        }
        if (dueAtMs > now + this.#tickMs) {
          this.#replayTimer = setTimeout(tick, dueAtMs - now);
          return;
        }
        this.#broadcast(templates[index % templates.length] as FrameTemplate, now);
        index++;
        dueChanges += (templates[index % templates.length] as FrameTemplate).changes;
      }
    };
    tick();
    return this.stats();
  }

  async close(): Promise<void> {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#replayTimer);
    this.#isReplaying = false;
    for (const ws of this.#sessions) ws.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }

  #template(f: ReplayFrame): FrameTemplate {
    const id = `${f.bytes}/${f.changes}`;
    let t = this.#templates.get(id);
    if (t === undefined) {
      t = frameTemplate(f.bytes, Math.max(1, Math.min(f.changes, KEY_POOL)));
      this.#templates.set(id, t);
    }
    return t;
  }

  #broadcast(t: FrameTemplate, nowMs: number): void {
    const from = this.#head;
    const to = from + t.changes;
    const frame = stampFrame(t, from, to, this.#nextKey, nowMs);
    this.#head = to;
    this.#nextKey = (this.#nextKey + t.changes) % KEY_POOL;
    for (const ws of this.#sessions) {
      if (ws.bufferedAmount > this.#maxBuffered) {
        this.#sessionsDropped++;
        this.#sessions.delete(ws);
        ws.terminate();
        continue;
      }
      ws.send(frame, SEND_OPTIONS);
    }
    if (this.#firstSentAtMs === 0) this.#firstSentAtMs = nowMs;
    this.#lastSentAtMs = nowMs;
    this.#framesSent++;
    this.#changesSent += t.changes;
    this.#payloadBytesSent += frame.byteLength;
    if (t.isOverSize) this.#framesOverSize++;
  }

  #onConnection(ws: WebSocket): void {
    ws.on("error", () => ws.terminate());
    ws.on("close", () => this.#sessions.delete(ws));
    ws.once("message", (data: RawData) => {
      try {
        const hello = decodeClientMessage(toBuffer(data));
        if (hello.t !== "hello") throw new ProtoError(ProtoErrorCode.badMessage, "want a hello first");
        const version = negotiateVersion(hello.versions);
        if (version === null) {
          ws.close(CloseCode.unsupportedVersion, "unsupported protocol version");
          return;
        }
        if (!(VIEW_NAMES as readonly string[]).includes(hello.view)) {
          ws.close(CloseCode.unknownView, "unknown view");
          return;
        }
        const view = hello.view as ViewName;
        const revision = this.#head;
        const snapshot = this.#snapshot;
        const isCompressed = hello.features?.includes(FEATURES.deflateSnapshot) === true;
        ws.send(
          encodeMessage({
            t: "welcome",
            version: Math.min(version, PROTOCOL_VERSION_MAX),
            server: this.serverId,
            view,
            mode: "snapshot",
            revision,
            features: snapshot !== undefined && isCompressed ? [FEATURES.deflateSnapshot] : [],
          }),
          SEND_OPTIONS,
        );
        if (snapshot === undefined || snapshot.revision !== revision) {
          ws.send(encodeMessage({ t: "snap-begin", revision, count: 0, chunks: 0 }), SEND_OPTIONS);
          ws.send(encodeMessage({ t: "snap-end", revision }), SEND_OPTIONS);
        } else {
          ws.send(snapshot.begin, SEND_OPTIONS);
          for (const chunk of isCompressed
            ? snapshot.chunks
            : (this.#plainChunks ??= plainChunks(snapshot))) {
            ws.send(chunk, SEND_OPTIONS);
          }
          ws.send(snapshot.end, SEND_OPTIONS);
        }
        ws.send(encodeMessage({ t: "status", state: "in-sync", since: Date.now() }), SEND_OPTIONS);
        this.#sessions.add(ws);
      } catch (err) {
        ws.close(CloseCode.badFrame, err instanceof Error ? err.message.slice(0, 100) : "bad hello");
      }
    });
  }
}

function toBuffer(data: RawData): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
}
