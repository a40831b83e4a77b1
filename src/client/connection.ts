import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import WebSocket from "ws";
import type { ClientOptions, RawData } from "ws";
import { CloseCode, FATAL_CLOSE_CODES, truncateCloseReason } from "../../proto/close-codes.js";
import { decodeDeltaEntries, decodeServerMessage, encodeMessage } from "../../proto/codec.js";
import { inflateDeltas } from "../../proto/delta-compression.js";
import { ProtoError, ProtoErrorCode } from "../../proto/errors.js";
import { FEATURES } from "../../proto/version.js";
import type {
  ClientMessage,
  DeltasMessage,
  HelloMessage,
  LeftMessage,
  MoveMessage,
  ServerMessage,
  SnapshotBeginMessage,
  SnapshotChunkMessage,
  StatusMessage,
  WelcomeMessage,
} from "../../proto/messages.js";
import {
  ClientConnectError,
  ClientProtocolError,
  ClientRejectedError,
  ClientTimeoutError,
  TabbyClientError,
} from "./errors.js";
import { skimDeltas } from "./delta-skimmer.js";
import { CLIENT_TLS_FIELDS } from "./options.js";
import type { ClientLogger, ClientTlsOptions } from "./options.js";
import { SnapshotAssembler, SnapshotAssemblyError } from "./snapshot-assembler.js";
import type { HeldValues, SnapshotResult } from "./snapshot-assembler.js";

/** How a session ended. */
export interface SessionEnd {
  /** The address of the server. */
  readonly server: string;
  /** The server id from the welcome, if one came. */
  readonly serverId: string | undefined;
  /** The close code (the server's, or the one the client sent; 1006 when the socket just dropped). */
  readonly closeCode: number;
  readonly reason: string;
  /** True when the client ended the session (timeout, bad frame, close()). */
  readonly isLocal: boolean;
  /** Why, when it was not a plain close; ClientRejectedError for a fatal close code. */
  readonly error: TabbyClientError | undefined;
  /** The move hint that came before the close, if any, and when it came (ms, connection clock). */
  readonly move: { readonly message: MoveMessage; readonly receivedAtMs: number } | undefined;
  /** True when the session got its baseline (a complete snapshot, or a resume welcome). */
  readonly hadBaseline: boolean;
}

/** What a session reports to its owner, in protocol order. */
export interface ConnectionEvents {
  frame(bytes: number): void;
  /**
   * Bytes read from the socket since the last call: the HTTP upgrade response, WebSocket frame headers,
   * control frames (ping, close) and payloads.
   */
  wire(bytes: number): void;
  welcome(message: WelcomeMessage): void;
  snapshotBegin(message: SnapshotBeginMessage): void;
  snapshot(result: SnapshotResult): void;
  deltas(message: DeltasMessage): void;
  status(message: StatusMessage): void;
  move(message: MoveMessage): void;
  /**
   * The answer to the `leave` the session sent after a move (feature "leave"): the view as the server last
   * sent it; the session ends right after.
   */
  left?(message: LeftMessage): void;
  /** The payload bytes of a snapshot frame (snap-begin, snap-chunk, snap-end) and its type, as it arrives. */
  snapshotFrame?(bytes: number, type: "snap-begin" | "snap-chunk" | "snap-end"): void;
  end(end: SessionEnd): void;
}

export interface ConnectionOptions {
  readonly url: string;
  readonly hello: HelloMessage;
  readonly isMirror: boolean;
  /** The mirror, for snapshots to skip decoding the values it holds byte for byte (SnapshotAssembler). */
  readonly held?: HeldValues | undefined;
  /** False: delta frames are skimmed for their revisions, their changes not decoded (default true). */
  readonly isDecodingDeltas?: boolean;
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly closeTimeoutMs: number;
  readonly tls: ClientTlsOptions | undefined;
  readonly logger: ClientLogger;
  readonly events: ConnectionEvents;
  readonly now?: () => number;
}

type Phase = "opening" | "welcome" | "snapshot" | "streaming" | "ending";

/** Frames queued behind a chunk being inflated before the socket is paused. */
const QUEUE_HIGH_WATER = 64;
/** How long a moving session waits for `left` after its `leave` before it ends anyway (below the server's 5 s grace). */
const LEAVE_TIMEOUT_MS = 4000;

/**
 * One WebSocket session with one server: hello, welcome, snapshot or resume, then deltas. It checks the
 * order of the server's messages, answers pings, enforces the connect timeout and the read watchdog, and
 * reports what it received; the owner (TabbyClient) keeps the mirror and decides what to do after the end.
 * It never reconnects by itself. `end` is reported exactly once, after the socket is closed.
 */
export class Connection {
  readonly #o: ConnectionOptions;
  readonly #ws: WebSocket;
  readonly #now: () => number;
  #phase: Phase = "opening";
  #serverId: string | undefined;
  /** Revision of the state this session has brought the client to (resume token, snapshot, deltas). */
  #revision: number;
  #hadBaseline = false;
  #snapshot: SnapshotAssembler | undefined;
  #move: { message: MoveMessage; receivedAtMs: number } | undefined;
  /** The welcome listed "leave": after a move, ask for the view's digests before leaving. */
  #canLeave = false;
  #hasSentLeave = false;
  #serverError: { code: number; reason: string } | undefined;
  #endError: TabbyClientError | undefined;
  #isLocalEnd = false;
  #localCode: number | undefined;
  #lastFrameAtMs = 0;
  /** The socket under the WebSocket (from the upgrade), and how much of its bytesRead was reported. */
  #socket: Socket | undefined;
  #wireReported = 0;
  #connectTimer: NodeJS.Timeout | undefined;
  #readTimer: NodeJS.Timeout | undefined;
  #moveTimer: NodeJS.Timeout | undefined;
  readonly #queue: ServerMessage[] = [];
  #isDraining = false;
  #isPaused = false;
  readonly #ended: Promise<SessionEnd>;
  #resolveEnded!: (end: SessionEnd) => void;

  constructor(options: ConnectionOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#revision = options.hello.resume?.revision ?? 0;
    this.#ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    // The TLS fields first, picked one by one: nothing a caller passes as TLS can lift maxPayload.
    const wsOptions: ClientOptions & { closeTimeout: number } = {
      ...pickTls(options.tls),
      perMessageDeflate: false,
      maxPayload: options.maxFrameBytes,
      closeTimeout: options.closeTimeoutMs,
    };
    this.#ws = new WebSocket(options.url, wsOptions); // may throw (bad TLS options): no timer yet
    this.#connectTimer = setTimeout(
      // Timers run before I/O in an event-loop turn: after a stall (a busy node, a long GC) the timer can
      // fire while the server's answer waits unread in the socket. Let that I/O run first.
      () =>
        setImmediate(() => {
          if (this.#phase === "opening")
            this.#fail(new ClientTimeoutError("connect", options.connectTimeoutMs, options.url));
        }),
      options.connectTimeoutMs,
    );
    this.#ws.on("upgrade", (res: IncomingMessage) => (this.#socket = res.socket));
    this.#ws.on("open", () => this.#onOpen());
    this.#ws.on("message", (data: RawData, isBinary: boolean) => this.#onMessage(data, isBinary));
    this.#ws.on("ping", () => {
      this.#lastFrameAtMs = this.#now();
      this.#reportWire();
    });
    this.#ws.on("error", (err: Error) => this.#onError(err));
    this.#ws.on("close", (code: number, reason: Buffer) => this.#onClose(code, reason));
  }

  get server(): string {
    return this.#o.url;
  }

  /** Resolves once the session is over and its socket closed. */
  get ended(): Promise<SessionEnd> {
    return this.#ended;
  }

  /** Ends the session with a normal close. Idempotent; resolves when the socket is closed. */
  close(): Promise<SessionEnd> {
    this.#end(undefined, CloseCode.normal, "client closed");
    return this.#ended;
  }

  /** Drops the socket now, also when a close handshake is under way. Idempotent. */
  destroy(): Promise<SessionEnd> {
    if (this.#phase === "ending") this.#ws.terminate();
    else this.#end(undefined, CloseCode.normal, "client destroyed", true);
    return this.#ended;
  }

  #onOpen(): void {
    if (this.#phase !== "opening") return;
    // The server accepted the connection: from here the read watchdog bounds the wait for the welcome,
    // so a server that is slow to start sessions (a reconnect storm) is waited for, not abandoned.
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#phase = "welcome";
    this.#lastFrameAtMs = this.#now();
    this.#armWatchdog(this.#o.readTimeoutMs);
    this.#send(this.#o.hello);
  }

  #armWatchdog(delayMs: number): void {
    // Checked after the turn's I/O (see the connect timer): frames that arrived during a stall count.
    this.#readTimer = setTimeout(() => setImmediate(() => this.#checkRead()), delayMs);
  }

  #checkRead(): void {
    this.#readTimer = undefined;
    if (this.#phase === "ending") return;
    const idleMs = this.#now() - this.#lastFrameAtMs;
    if (idleMs >= this.#o.readTimeoutMs) {
      // The connection is presumably dead: drop it rather than wait for a close handshake.
      const error = new ClientTimeoutError("read", this.#o.readTimeoutMs, this.#o.url);
      this.#end(error, CloseCode.keepaliveTimeout, error.message, true);
    } else {
      this.#armWatchdog(this.#o.readTimeoutMs - idleMs);
    }
  }

  /** Reports the socket's bytes read since the last report (it keeps its count once closed). */
  #reportWire(): void {
    const read = this.#socket?.bytesRead ?? 0;
    if (read <= this.#wireReported) return;
    this.#o.events.wire(read - this.#wireReported);
    this.#wireReported = read;
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    this.#reportWire();
    if (this.#phase === "ending") return;
    const frame = Array.isArray(data)
      ? Buffer.concat(data)
      : Buffer.isBuffer(data)
        ? data
        : Buffer.from(data);
    this.#lastFrameAtMs = this.#now();
    this.#o.events.frame(frame.byteLength);
    if (!isBinary) return this.#protocolError("a text frame (the protocol uses binary frames)");
    let message: ServerMessage;
    // Skimming: a frame that is not a well-formed deltas map is decoded (and validated) normally.
    const skimmed = this.#o.isDecodingDeltas === false ? skimDeltas(frame) : undefined;
    if (skimmed !== undefined) {
      message = { t: "deltas", from: skimmed.from, to: skimmed.to, changes: [] };
    } else {
      try {
        message = decodeServerMessage(frame);
        if (message.t === "deltas" && message.z !== undefined && this.#o.isDecodingDeltas !== false) {
          const changes = decodeDeltaEntries(inflateDeltas(message.z, this.#o.maxFrameBytes));
          if (message.n !== undefined && message.n !== changes.length) {
            throw new ProtoError(
              ProtoErrorCode.badMessage,
              `deltas: n is ${message.n}, z holds ${changes.length}`,
            );
          }
          message = { t: "deltas", from: message.from, to: message.to, changes };
        }
      } catch (err) {
        if (err instanceof ProtoError && err.code === ProtoErrorCode.unknownType) {
          this.#o.logger.debug({ server: this.#o.url, err }, "ignoring a message of an unknown type");
          return;
        }
        return this.#protocolError("an invalid frame", err);
      }
    }
    if (message.t === "ping") {
      this.#send({ t: "pong", ts: message.ts });
      return;
    }
    if (message.t === "snap-begin" || message.t === "snap-chunk" || message.t === "snap-end") {
      this.#o.events.snapshotFrame?.(frame.byteLength, message.t);
    }
    this.#queue.push(message);
    if (this.#queue.length >= QUEUE_HIGH_WATER && !this.#isPaused) {
      this.#isPaused = true;
      this.#ws.pause();
    }
    if (!this.#isDraining) void this.#drain();
  }

  /** Handles queued messages in order; only a compressed snapshot chunk makes it wait. */
  async #drain(): Promise<void> {
    this.#isDraining = true;
    try {
      while (this.#queue.length > 0 && this.#phase !== "ending") {
        const pending = this.#handle(this.#queue.shift() as ServerMessage);
        if (pending !== undefined) await pending;
      }
    } catch (err) {
      if (this.#phase === "ending") return; // the session ended while a chunk was inflating
      if (err instanceof TabbyClientError) this.#fail(err, CloseCode.badFrame);
      else if (err instanceof SnapshotAssemblyError)
        this.#fail(this.#bad(err.message, err.cause), CloseCode.badFrame);
      else this.#protocolError("a message that could not be applied", err);
    } finally {
      this.#isDraining = false;
      if (this.#isPaused && this.#phase !== "ending") {
        this.#isPaused = false;
        this.#ws.resume();
      }
    }
  }

  #handle(message: ServerMessage): Promise<void> | undefined {
    switch (message.t) {
      case "welcome":
        this.#onWelcome(message);
        return undefined;
      case "snap-begin":
        if (this.#phase !== "snapshot" && this.#phase !== "streaming") throw this.#outOfOrder(message.t);
        if (this.#snapshot !== undefined) throw this.#outOfOrder(message.t);
        this.#phase = "snapshot";
        this.#snapshot = new SnapshotAssembler(message, {
          isDecoding: this.#o.isMirror,
          maxInflatedBytes: this.#o.maxFrameBytes,
          held: this.#o.held,
        });
        this.#o.events.snapshotBegin(message);
        return undefined;
      case "snap-chunk":
        return this.#onChunk(message);
      case "snap-end":
        this.#onSnapshotEnd(message.revision, message.head);
        return undefined;
      case "deltas":
        if (this.#phase !== "streaming") throw this.#outOfOrder(message.t);
        // Gaps are normal (revisions that did not touch this view); going back is a server bug.
        if (message.from < this.#revision) {
          throw this.#bad(`deltas from revision ${message.from}, behind the client's ${this.#revision}`);
        }
        this.#revision = message.to;
        this.#o.events.deltas(message);
        return undefined;
      case "status":
        this.#o.events.status(message);
        return undefined;
      case "move":
        // The server closes the session (rebalance); if it has not within the delay, leave anyway.
        this.#move = { message, receivedAtMs: this.#now() };
        clearTimeout(this.#moveTimer);
        this.#moveTimer = setTimeout(() => {
          this.#moveTimer = undefined;
          this.#leave();
        }, message.delayMs);
        this.#o.events.move(message);
        return undefined;
      case "left":
        if (!this.#hasSentLeave || this.#phase !== "streaming") throw this.#outOfOrder(message.t);
        this.#o.events.left?.(message);
        this.#end(undefined, CloseCode.normal, "moving to another server");
        return undefined;
      case "error":
        this.#serverError = { code: message.code, reason: message.reason };
        this.#o.logger.debug({ server: this.#o.url, ...this.#serverError }, "server sent an error");
        return undefined;
      case "ping":
        return undefined;
    }
  }

  /**
   * The move's delay is over. With "leave" (a streaming session that keeps no mirror), ask the server for
   * the view's digests first (PROTOCOL.md §5.5) and end when `left` comes, or after LEAVE_TIMEOUT_MS.
   */
  #leave(): void {
    if (!this.#canLeave || this.#phase !== "streaming" || this.#hasSentLeave) {
      this.#end(undefined, CloseCode.normal, "moving to another server");
      return;
    }
    this.#hasSentLeave = true;
    this.#send({ t: "leave" });
    this.#moveTimer = setTimeout(() => {
      this.#moveTimer = undefined;
      this.#end(undefined, CloseCode.normal, "moving to another server (no answer to leave)");
    }, LEAVE_TIMEOUT_MS);
  }

  #onWelcome(message: WelcomeMessage): void {
    if (this.#phase !== "welcome") throw this.#outOfOrder(message.t);
    const hello = this.#o.hello;
    if (message.view !== hello.view) throw this.#bad(`welcome for view "${message.view}"`);
    if (message.version < hello.versions[0] || message.version > hello.versions[1]) {
      throw this.#bad(`welcome with protocol version ${message.version}`);
    }
    const isOtherReplica = message.mode === "resume" && hello.resume?.server !== message.server;
    if (
      message.mode === "resume" &&
      (hello.resume === undefined ||
        (isOtherReplica &&
          (hello.resume.state === undefined || !message.features.includes(FEATURES.replicaResume))))
    ) {
      throw this.#bad("welcome resumes a session the client did not ask for");
    }
    // Resumed by another replica from the mirror's state (§5.2): its catch-up counts from revision 0.
    if (isOtherReplica) this.#revision = 0;
    this.#serverId = message.server;
    this.#canLeave = message.features.includes(FEATURES.leave);
    this.#phase = message.mode === "resume" ? "streaming" : "snapshot";
    this.#hadBaseline = message.mode === "resume";
    this.#o.events.welcome(message);
  }

  #onChunk(message: SnapshotChunkMessage): Promise<void> | undefined {
    if (this.#snapshot === undefined) throw this.#outOfOrder(message.t);
    return this.#snapshot.add(message);
  }

  #onSnapshotEnd(revision: number, head: number | undefined): void {
    if (this.#snapshot === undefined) throw this.#outOfOrder("snap-end");
    const result = this.#snapshot.finish(revision, head);
    this.#snapshot = undefined;
    this.#phase = "streaming";
    this.#revision = revision;
    this.#hadBaseline = true;
    this.#o.events.snapshot(result);
  }

  #outOfOrder(type: string): ClientProtocolError {
    return this.#bad(`a "${type}" message out of order (session phase ${this.#phase})`);
  }

  #bad(what: string, cause?: unknown): ClientProtocolError {
    return new ClientProtocolError(`server sent ${what}`, {
      server: this.#o.url,
      ...(cause !== undefined && { cause }),
    });
  }

  #protocolError(what: string, cause?: unknown): void {
    this.#fail(this.#bad(what, cause), CloseCode.badFrame);
  }

  #send(message: ClientMessage): void {
    if (this.#ws.readyState !== WebSocket.OPEN) return;
    this.#ws.send(encodeMessage(message), (err) => {
      if (err) this.#o.logger.debug({ server: this.#o.url, err }, "send failed");
    });
  }

  #onError(err: Error): void {
    this.#o.logger.debug({ server: this.#o.url, err }, "socket error");
    if (this.#phase === "ending") return;
    // ws follows an error with "close"; record why.
    this.#endError = new ClientConnectError(`socket error: ${err.message}`, {
      cause: err,
      server: this.#o.url,
    });
  }

  /** Ends the session because of a local problem: close with `code` when given, else drop the socket. */
  #fail(error: TabbyClientError, code?: number): void {
    this.#end(error, code, error.message);
  }

  /** Ends the session from this side: a close frame with `code`, or a dropped socket (no code, or `drop`). */
  #end(error: TabbyClientError | undefined, code: number | undefined, reason: string, drop = false): void {
    if (this.#phase === "ending") return;
    this.#phase = "ending";
    this.#isLocalEnd = true;
    this.#endError = error;
    this.#localCode = code;
    this.#clearTimers();
    this.#queue.length = 0;
    if (this.#isPaused) {
      // The close handshake needs to read the server's close frame (queued frames are ignored now).
      this.#isPaused = false;
      this.#ws.resume();
    }
    if (code !== undefined && !drop && this.#ws.readyState === WebSocket.OPEN) {
      this.#ws.close(code, truncateCloseReason(reason));
    } else {
      this.#ws.terminate();
    }
  }

  #clearTimers(): void {
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#readTimer);
    clearTimeout(this.#moveTimer);
    this.#connectTimer = undefined;
    this.#readTimer = undefined;
    this.#moveTimer = undefined;
  }

  #onClose(code: number, reasonBuffer: Buffer): void {
    this.#reportWire();
    this.#clearTimers();
    this.#phase = "ending";
    this.#queue.length = 0;
    this.#snapshot = undefined;
    this.#ws.removeAllListeners("message");
    this.#ws.removeAllListeners("open");
    this.#ws.removeAllListeners("ping");
    const closeReason = reasonBuffer.toString();
    let error = this.#endError;
    let closeCode = this.#isLocalEnd ? (this.#localCode ?? code) : code;
    let reason = this.#isLocalEnd ? (error?.message ?? closeReason) : closeReason;
    if (!this.#isLocalEnd) {
      // A server that sent an error message and then dropped the socket still told us why.
      if (closeCode < 4000 && this.#serverError !== undefined) closeCode = this.#serverError.code;
      if (reason === "") reason = this.#serverError?.reason ?? this.#endError?.message ?? "";
      if (FATAL_CLOSE_CODES.has(closeCode)) {
        error = new ClientRejectedError(closeCode, reason, this.#o.url);
      } else if (closeCode === CloseCode.badFrame) {
        error = new ClientProtocolError(`server closed the session for a bad frame: ${reason}`, {
          server: this.#o.url,
        });
      }
    }
    const end: SessionEnd = {
      server: this.#o.url,
      serverId: this.#serverId,
      closeCode,
      reason,
      isLocal: this.#isLocalEnd,
      error,
      move: this.#move,
      hadBaseline: this.#hadBaseline,
    };
    this.#resolveEnded(end);
    this.#o.events.end(end);
  }
}

function pickTls(tls: ClientTlsOptions | undefined): ClientTlsOptions {
  if (tls === undefined) return {};
  const out: Record<string, unknown> = {};
  for (const field of CLIENT_TLS_FIELDS) if (tls[field] !== undefined) out[field] = tls[field];
  return out;
}
