/**
 * A small but real tabby server for the client's e2e tests: a `ws` server on 127.0.0.1:0 that plays the
 * protocol with proto's encoders over a snapshot Hub (welcome, snapshot chunks with entries or with `z`,
 * resume catch-up, deltas, status), and lets a test misbehave on purpose (reject, move, send raw bytes).
 */
import { deflateRawSync } from "node:zlib";
import { WebSocketServer } from "ws";
import type { WebSocket } from "ws";
import { decodeClientMessage, encodeMessage } from "../../proto/codec.js";
import { assembleEntryArray } from "../../proto/frame-builder.js";
import type {
  HelloMessage,
  ResourceValue,
  ServerMessage,
  SyncState,
  ViewName,
} from "../../proto/messages.js";
import { DeltaEncoding, deltaEncodingOf } from "../../src/snapshot/delta-frames.js";
import type { DeltaEncodingBits } from "../../src/snapshot/delta-frames.js";
import { framesFor, Hub } from "../../src/snapshot/hub.js";

export interface TestServerOptions {
  /** Server id sent in the welcome. Default random. */
  readonly id?: string;
  /** The state to serve. Default an empty Hub with 512-byte snapshot chunks (so snapshots have several). */
  readonly hub?: Hub;
  /** Send snapshot chunks as `z` (raw deflate) when the client lists "deflate-snapshot". Default false. */
  readonly compress?: boolean;
  /** Use "deflate-deltas" and "patch-deltas" when the client lists them. Default true. */
  readonly deltaFeatures?: boolean;
  /** Status sent after the baseline; null sends none. Default "in-sync". */
  readonly status?: SyncState | null;
  /** Close the first `count` sessions right after their hello with `code` (an error message first). */
  readonly reject?: { readonly code: number; readonly count?: number };
  /** Replaces the default session start (welcome, snapshot or resume, status). */
  readonly onHello?: (session: TestSession, hello: HelloMessage) => void;
}

export class TestSession {
  readonly pongs: number[] = [];
  /** `leave` messages received. */
  leaves = 0;
  hello: HelloMessage | undefined;
  /** The delta encoding negotiated in the welcome (DeltaEncoding bits). */
  deltaEncoding: DeltaEncodingBits = DeltaEncoding.plain;
  closeCode: number | undefined;
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.once("close", (code: number) => resolve(code)));
    ws.on("close", (code: number) => (this.closeCode = code));
  }

  send(message: ServerMessage | Buffer): void {
    this.ws.send(Buffer.isBuffer(message) ? message : encodeMessage(message));
  }

  close(code: number, reason = ""): void {
    this.ws.close(code, reason);
  }
}

export class TestServer {
  readonly id: string;
  readonly hub: Hub;
  readonly hellos: HelloMessage[] = [];
  readonly sessions = new Set<TestSession>();
  connections = 0;
  readonly #wss: WebSocketServer;
  readonly #o: TestServerOptions;

  private constructor(wss: WebSocketServer, options: TestServerOptions) {
    this.#wss = wss;
    this.#o = options;
    this.id = options.id ?? `test-${Math.random().toString(36).slice(2, 10)}`;
    this.hub = options.hub ?? new Hub({ snapshotChunkBytes: 512 });
    wss.on("connection", (ws) => this.#onConnection(ws));
  }

  static async start(options: TestServerOptions = {}): Promise<TestServer> {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve, reject) => {
      wss.once("listening", resolve);
      wss.once("error", reject);
    });
    return new TestServer(wss, options);
  }

  get url(): string {
    const address = this.#wss.address();
    if (address === null || typeof address === "string") throw new Error("not listening on a port");
    return `ws://127.0.0.1:${address.port}`;
  }

  /** Applies changes (null deletes) and sends the resulting deltas to every session of each view. */
  apply(changes: Record<string, ResourceValue | null>): void {
    for (const [key, value] of Object.entries(changes)) {
      if (value === null) this.hub.delete(key);
      else this.hub.upsert(key, value);
    }
    for (const batch of this.hub.flush()) {
      for (const s of this.sessions) {
        if (s.hello?.view !== batch.view) continue;
        const frames = framesFor(batch, s.hello.node);
        if (frames !== null) s.send(frames.frame(s.deltaEncoding));
      }
    }
  }

  /** Sends a message or raw bytes to every session that said hello. */
  broadcast(message: ServerMessage | Buffer): void {
    for (const s of this.sessions) if (s.hello !== undefined) s.send(message);
  }

  closeAll(code: number, reason = ""): void {
    for (const s of this.sessions) s.close(code, reason);
  }

  terminateAll(): void {
    for (const s of this.sessions) s.ws.terminate();
  }

  /** The default session start: welcome, then resume catch-up or a snapshot, then a status. */
  startSession(session: TestSession, hello: HelloMessage): void {
    const view = hello.view as ViewName;
    const node = hello.node;
    const resume = hello.resume;
    const isResume =
      resume !== undefined && resume.server === this.id && this.hub.canResume(view, resume.revision);
    const offered = ["deflate-snapshot", "move"];
    if (this.#o.deltaFeatures !== false) offered.push("deflate-deltas", "patch-deltas");
    const features = (hello.features ?? []).filter((f) => offered.includes(f));
    session.deltaEncoding = deltaEncodingOf(new Set(features));
    session.send({
      t: "welcome",
      version: 1,
      server: this.id,
      view,
      mode: isResume ? "resume" : "snapshot",
      revision: this.hub.revision,
      features,
    });
    let from = resume?.revision ?? 0;
    if (!isResume) {
      const snapshot = this.hub.snapshot(view, Date.now(), 0);
      const frames = this.hub.sessionFrames(snapshot, node);
      session.send(frames.begin);
      const isCompressed = this.#o.compress === true && features.includes("deflate-snapshot");
      snapshot.chunks.forEach((chunk, index) => {
        if (!isCompressed) return session.send(chunk);
        const entries = snapshot.chunkEntries[index] ?? [];
        session.send({ t: "snap-chunk", index, z: deflateRawSync(assembleEntryArray(entries)) });
      });
      if (frames.nodeChunk !== null) session.send(frames.nodeChunk);
      session.send(frames.end);
      from = snapshot.revision;
    }
    for (const frames of this.hub.catchUp(view, node, from) ?? [])
      session.send(frames.frame(session.deltaEncoding));
    const state = this.#o.status === undefined ? "in-sync" : this.#o.status;
    if (state !== null) session.send({ t: "status", state, since: Date.now() });
  }

  #onConnection(ws: WebSocket): void {
    this.connections++;
    const session = new TestSession(ws);
    this.sessions.add(session);
    ws.on("close", () => this.sessions.delete(session));
    ws.on("message", (data: Buffer) => {
      const message = decodeClientMessage(data);
      if (message.t === "pong") {
        session.pongs.push(message.ts);
        return;
      }
      if (message.t === "leave") {
        session.leaves++;
        return;
      }
      session.hello = message;
      this.hellos.push(message);
      const reject = this.#o.reject;
      if (reject !== undefined && this.connections <= (reject.count ?? Infinity)) {
        session.send({ t: "error", code: reject.code, reason: "rejected by the test" });
        session.close(reject.code, "rejected by the test");
        return;
      }
      if (this.#o.onHello !== undefined) this.#o.onHello(session, message);
      else this.startSession(session, message);
    });
  }

  /** Terminates every session and stops listening. */
  async close(): Promise<void> {
    this.terminateAll();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}

/** A Hub with `entries` applied and flushed (snapshot chunks of 512 bytes). */
export function hubWith(entries: Record<string, ResourceValue>, options: { churn?: number } = {}): Hub {
  const hub = new Hub({ snapshotChunkBytes: 512 });
  // Churn moves the revision without changing the final state (a replica that saw different history).
  for (let i = 0; i < (options.churn ?? 0); i++) hub.upsert("IPPool/churn", { spec: { i } });
  if ((options.churn ?? 0) > 0) hub.delete("IPPool/churn");
  for (const [key, value] of Object.entries(entries)) hub.upsert(key, value);
  hub.flush();
  return hub;
}
