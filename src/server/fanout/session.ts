import { WebSocket } from "ws";
import { truncateCloseReason } from "../../../proto/close-codes.js";
import { encodeMessage } from "../../../proto/codec.js";
import type { ViewName } from "../../../proto/messages.js";
import type { DeltaEncodingBits } from "../../snapshot/delta-frames.js";
import type { AuthRequest, PeerIdentity } from "../auth/types.js";

/** What the TLS layer said about the client, kept from the upgrade request until the hello. */
export type PeerCredentials = Pick<AuthRequest, "certificate" | "isCertificateTrusted" | "certificateError">;

const NO_PEER: PeerCredentials = {
  certificate: undefined,
  isCertificateTrusted: false,
  certificateError: undefined,
};

/**
 * handshake: waiting for the hello. syncing: welcome sent, snapshot or resume deltas in flight (no live
 * frames). live: receives live frames (unless lagging). closed: the socket is gone.
 */
export type SessionPhase = "handshake" | "syncing" | "live" | "closed";

const SEND_OPTIONS = { binary: true } as const;

/**
 * One client connection: its socket, where it is in the protocol, and how far it has been sent the
 * view (`cursor`). Tracks writes not yet handed to the kernel, so that callers can wait for the socket to
 * drain (the `ws` send callbacks) instead of piling frames into user space.
 */
export class Session {
  readonly id: number;
  readonly ws: WebSocket;
  phase: SessionPhase = "handshake";
  view: ViewName | undefined;
  node: string | undefined;
  features: ReadonlySet<string> = new Set();
  /** How this session's `deltas` frames are encoded (DeltaEncoding bits, from its features). */
  deltaEncoding: DeltaEncodingBits = 0;
  clientName = "";
  /** The TLS client certificate and whether it chains to the client CA. */
  peer: PeerCredentials = NO_PEER;
  /** Remote address and port: the connection's id in Admission. */
  connectionKey = "";
  /** Who the client is, once its hello was authenticated. */
  identity: PeerIdentity | undefined;
  /** True while the hello is being authenticated (a second hello then is out of order). */
  isAuthenticating = false;
  /** Aborted when the socket closes: stops an authentication in progress from waiting. */
  readonly #closedController = new AbortController();
  /** Every change of the view (for this node) up to this revision has been sent. */
  cursor = 0;
  /** Asked to leave (feature "leave") and was sent the view up to `cursor`: gets no more frames of it. */
  hasLeft = false;
  /** Behind: gets no live frames until its socket drains and it is caught up. */
  isLagging = false;
  laggingSinceMs = 0;
  /** Sequence number of the last status frame sent (-1: none yet). */
  statusSeq = -1;
  lastPongAtMs: number;
  /** The close code the server chose, once it began closing this session. */
  closeCode: number | undefined;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;
  #pendingWrites = 0;
  #drainWaiters: (() => void)[] = [];
  #handshakeTimer: NodeJS.Timeout | undefined;
  #lagTimer: NodeJS.Timeout | undefined;
  #closeTimer: NodeJS.Timeout | undefined;
  readonly #onWritten = (): void => {
    this.#pendingWrites--;
    if (this.#pendingWrites === 0) this.#wakeDrainWaiters();
  };

  constructor(id: number, ws: WebSocket, nowMs: number) {
    this.id = id;
    this.ws = ws;
    this.lastPongAtMs = nowMs;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /** Aborted once the socket has closed. */
  get closedSignal(): AbortSignal {
    return this.#closedController.signal;
  }

  /** True once the socket has closed (a getter, so that checks after an await are not narrowed away). */
  get isClosed(): boolean {
    return this.phase === "closed";
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Bytes queued in user space (the `ws` sender and the socket's writable buffer). */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** Frames handed to `ws` whose write callback has not fired yet. */
  get pendingWrites(): number {
    return this.#pendingWrites;
  }

  /** Sends one binary frame (the caller's Buffer, shared, never copied or mutated). No-op once closing. */
  send(frame: Buffer): void {
    if (!this.isOpen) return;
    this.#pendingWrites++;
    this.ws.send(frame, SEND_OPTIONS, this.#onWritten);
  }

  /** Resolves when every frame sent so far has been written to the kernel, or the session closed. */
  whenDrained(): Promise<void> {
    if (this.#pendingWrites === 0 || this.phase === "closed") return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  armHandshakeTimer(ms: number, onTimeout: () => void): void {
    this.clearHandshakeTimer();
    this.#handshakeTimer = setTimeout(onTimeout, ms);
  }

  clearHandshakeTimer(): void {
    if (this.#handshakeTimer !== undefined) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
  }

  armLagTimer(ms: number, onTimeout: () => void): void {
    this.clearLagTimer();
    this.#lagTimer = setTimeout(onTimeout, ms);
  }

  clearLagTimer(): void {
    if (this.#lagTimer !== undefined) clearTimeout(this.#lagTimer);
    this.#lagTimer = undefined;
  }

  /**
   * Sends `{t: "error", code, reason}` and a close frame with `code`; destroys the socket if the peer has
   * not completed the close within `graceMs`. Idempotent: the first code wins.
   */
  close(code: number, reason: string, graceMs: number): void {
    if (this.closeCode !== undefined || this.phase === "closed") return;
    this.closeCode = code;
    if (this.isOpen) {
      this.send(encodeMessage({ t: "error", code, reason }));
      this.ws.close(code, truncateCloseReason(reason));
    }
    this.#closeTimer = setTimeout(() => this.ws.terminate(), graceMs);
  }

  /** Destroys the socket now (no close handshake). */
  terminate(): void {
    this.ws.terminate();
  }

  /** Called once, from the socket's close event: clears every timer and wakes every waiter. */
  markClosed(): void {
    this.phase = "closed";
    this.clearHandshakeTimer();
    this.clearLagTimer();
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    this.#wakeDrainWaiters();
    this.#closedController.abort();
    this.#resolveClosed();
  }

  #wakeDrainWaiters(): void {
    const waiters = this.#drainWaiters;
    if (waiters.length === 0) return;
    this.#drainWaiters = [];
    for (const wake of waiters) wake();
  }
}
