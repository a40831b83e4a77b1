import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Server as HttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { TLSSocket } from "node:tls";
import type { SecureContextOptions } from "node:tls";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { WebSocketServer } from "ws";
import type { RawData, WebSocket } from "ws";
import { CloseCode } from "../../../proto/close-codes.js";
import { encodeMessage } from "../../../proto/codec.js";
import { VIEW_NAMES } from "../../../proto/messages.js";
import type { HelloMessage, ResourceValue, ViewName } from "../../../proto/messages.js";
import { FEATURES } from "../../../proto/version.js";
import { deltaEncodingOf } from "../../snapshot/delta-frames.js";
import type { Hub } from "../../snapshot/hub.js";
import type { PreparedValue } from "../../snapshot/prepared.js";
import type { UpstreamSink } from "../../snapshot/sink.js";
import type { KindState } from "../../snapshot/sync-state.js";
import { FanoutError, FanoutErrorCode, FanoutOptionError, INTERNAL_ERROR_CLOSE_CODE } from "./errors.js";
import { FanoutQueue } from "./fanout-queue.js";
import { authorizeView } from "../auth/authenticator.js";
import { AuthMetrics } from "../auth/metrics.js";
import { ANONYMOUS } from "../auth/types.js";
import type { AuthResult, Authenticator } from "../auth/types.js";
import { Admission, connectionKey } from "./admission.js";
import { evaluateHello, readClientFrame } from "./handshake.js";
import type { HelloAccepted } from "./handshake.js";
import { Ingest } from "./ingest.js";
import { LiveStream } from "./live-stream.js";
import { FanoutMetrics } from "./metrics.js";
import type { DropReason } from "./metrics.js";
import { DEFAULT_FANOUT_PORT, resolveFanoutOptions } from "./options.js";
import type { FanoutOptions, ResolvedFanoutOptions } from "./options.js";
import type { PeerCredentials, Session } from "./session.js";
import { SessionRegistry } from "./session-registry.js";
import { SessionStarter } from "./session-start.js";
import { SnapshotSender } from "./snapshot-sender.js";
import { buildStatusReport, laggingCount, viewEntryCount } from "./status-report.js";
import type { StatusReport } from "./status-report.js";
import { ViewStatusBoard } from "./view-status.js";
import type { PeerDirectory } from "../replicas/peers.js";
import { ALONE, Balancer } from "../replicas/balancer.js";
import { readyOthers } from "../replicas/balancer-policy.js";
import type { BalancerOptions } from "../replicas/balancer.js";
import { BalancerMetrics } from "../replicas/balancer-metrics.js";

export interface FanoutServerDeps {
  readonly hub: Hub;
  readonly logger: Logger;
  /** Metrics are registered here (once: one FanoutServer per registry). */
  readonly registry: Registry;
  readonly options?: FanoutOptions;
  /** Epoch ms; used for pings, keepalive and lag ages. Default Date.now. */
  readonly clock?: () => number;
  /** TLS on the listener (`wss://`). Default: plain `ws://`. */
  readonly tls?: FanoutTls;
  /** Decides who may connect, after the hello. Default: everyone (anonymous). */
  readonly authenticator?: Authenticator;
  /**
   * The other replicas of this server's Service (src/server/replicas/). The balancer reads it for the fair
   * share and move hints. Default: this server alone.
   */
  readonly peers?: PeerDirectory;
  /** Fair share and move hints (src/server/replicas/balancer.ts). Defaults there. */
  readonly balancer?: BalancerOptions;
}

export interface FanoutTls {
  /** Certificate, key and (for client certificates) the CA they must chain to. */
  readonly context: SecureContextOptions;
  /** Ask clients for a certificate (mTLS). One that does not chain to `context.ca` is refused at the hello (4004). */
  readonly isClientCertRequested: boolean;
}

const ALLOW_ALL: Authenticator = {
  authenticate: () => Promise.resolve({ ok: true, identity: ANONYMOUS }),
};

/** The client certificate of a TLS socket, as the TLS layer judged it. */
function peerOf(req: IncomingMessage): PeerCredentials {
  const socket = req.socket;
  if (!(socket instanceof TLSSocket)) {
    return { certificate: undefined, isCertificateTrusted: false, certificateError: undefined };
  }
  const cert = socket.getPeerCertificate();
  const hasCert = cert !== null && typeof cert === "object" && Object.keys(cert).length > 0;
  const error = socket.authorizationError as Error | string | null | undefined;
  return {
    certificate: hasCert ? cert : undefined,
    isCertificateTrusted: socket.authorized,
    certificateError: error === null || error === undefined ? undefined : String(error),
  };
}

/**
 * The WebSocket fan-out server: the datastore writes into it (UpstreamSink), it batches changes into one
 * frame per view per flush window (encoded once, the same Buffer for every session) and serves sessions:
 * handshake, snapshot or resume, live deltas, status, keepalive, lag handling. Stops as undici does:
 * `close({drainMs})` is graceful (a gradual drain, with a deadline), `destroy(err?)` is now.
 */
export class FanoutServer implements UpstreamSink {
  readonly serverId: string;
  readonly #hub: Hub;
  readonly #logger: Logger;
  readonly #options: ResolvedFanoutOptions;
  readonly #clock: () => number;
  readonly #metrics: FanoutMetrics;
  readonly #board = new ViewStatusBoard();
  readonly #queue: FanoutQueue;
  readonly #sessions: SessionRegistry;
  readonly #live: LiveStream;
  readonly #ingest: Ingest;
  readonly #starter: SessionStarter;
  readonly #snapshots: SnapshotSender;
  readonly #wss: WebSocketServer;
  readonly #tls: FanoutTls | undefined;
  readonly #authenticator: Authenticator;
  /** Authentication outcomes and TLS reloads (registered on the server's registry). */
  readonly authMetrics: AuthMetrics;
  readonly #admission: Admission;
  readonly #balancer: Balancer;
  readonly #balancerMetrics: BalancerMetrics;
  #http: Server | HttpsServer | undefined;
  #httpClosed: Promise<void> | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #destroying: Promise<void> | undefined;
  /** Resolves when destroy() begins: a graceful close stops waiting for its drain then. */
  readonly #destroyStarted: Promise<void>;
  #onDestroyStarted: () => void = () => undefined;
  #isDraining = false;
  #isClosed = false;

  constructor(deps: FanoutServerDeps) {
    this.#destroyStarted = new Promise((resolve) => (this.#onDestroyStarted = resolve));
    this.#options = resolveFanoutOptions(deps.options);
    this.serverId = this.#options.serverId;
    this.#hub = deps.hub;
    this.#logger = deps.logger;
    this.#clock = deps.clock ?? Date.now;
    this.#tls = deps.tls;
    this.#authenticator = deps.authenticator ?? ALLOW_ALL;
    this.authMetrics = new AuthMetrics(deps.registry);
    this.#admission = new Admission(
      {
        maxPending: this.#options.maxHandshakingConnections,
        maxPendingPerSource: this.#options.maxHandshakingPerSource,
      },
      {
        refusedPerSource: () => this.authMetrics.admissionRefused("per-source"),
        evicted: () => this.authMetrics.admissionRefused("evicted"),
      },
    );
    this.#metrics = new FanoutMetrics(deps.registry, {
      activeConnections: () => this.#sessions.size,
      streaming: (view) => this.#sessions.sessionsOf(view).size,
      lagging: (view) => laggingCount(this.#sessions.sessionsOf(view)),
      cacheSize: (view) => viewEntryCount(this.#hub, view),
      revision: () => this.#hub.revision,
      snapshotSends: () => ({
        streaming: this.#snapshots.streamingCount,
        waiting: this.#snapshots.waitingCount,
      }),
    });
    this.#balancerMetrics = new BalancerMetrics(deps.registry, {
      fairShare: () => this.#balancer.share?.share,
      fairShareLimit: () => this.#balancer.share?.limit,
    });
    this.#sessions = new SessionRegistry({
      metrics: this.#metrics,
      logger: this.#logger,
      closeGraceMs: this.#options.closeGraceMs,
      moves: this.#balancerMetrics,
    });
    this.#balancer = new Balancer({
      sessions: this.#sessions,
      peers: deps.peers ?? ALONE,
      nodeCount: () => this.#hub.store.countOfKind("Node"),
      isActive: () => this.isReady(),
      logger: this.#logger,
      clock: this.#clock,
      ...(deps.balancer !== undefined && { options: deps.balancer }),
    });
    this.#queue = new FanoutQueue(this.#options.fanoutSliceSessions, (err) =>
      this.#logger.error({ err }, "fan-out job failed"),
    );
    this.#live = new LiveStream({
      hub: this.#hub,
      queue: this.#queue,
      metrics: this.#metrics,
      board: this.#board,
      clock: this.#clock,
      sessions: this.#sessions,
      logger: this.#logger,
      softBufferedBytes: this.#options.softBufferedBytes,
      maxLagMs: this.#options.maxLagMs,
      pongTimeoutMs: this.#options.pongTimeoutMs,
    });
    this.#ingest = new Ingest({
      hub: this.#hub,
      live: this.#live,
      queue: this.#queue,
      metrics: this.#metrics,
      board: this.#board,
      flushWindowMs: this.#options.flushWindowMs,
      flushWindowMaxMs: this.#options.flushWindowMaxMs,
    });
    this.#snapshots = new SnapshotSender({
      logger: this.#logger,
      metrics: this.#metrics,
      highWaterBytes: this.#options.snapshotHighWaterBytes,
      maxConcurrent: this.#options.snapshotSendConcurrency,
      head: () => this.#hub.revision,
    });
    this.#starter = new SessionStarter({
      hub: this.#hub,
      live: this.#live,
      snapshots: this.#snapshots,
      metrics: this.#metrics,
      logger: this.#logger,
      clock: this.#clock,
      serverId: this.serverId,
      snapshotReuseMs: this.#options.snapshotReuseMs,
      snapshotReuseMaxMs: this.#options.snapshotReuseMaxMs,
      resumeStateWaitMs: this.#options.resumeStateWaitMs,
      initialSyncWaitMs: this.#options.initialSyncWaitMs,
      viewState: (view) => this.#board.current(view).status.state,
      hasReadyPeer: () => readyOthers((deps.peers ?? ALONE).peers()).length > 0,
      ingest: this.#ingest,
      sessions: this.#sessions,
    });
    this.#wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: this.#options.maxInboundFrameBytes,
      clientTracking: false,
    });
  }

  /**
   * Opens the WebSocket listener on its own HTTP(S) server (plain HTTP requests get 426). The time a
   * connection may take before its upgrade (TLS handshake, request headers) is bounded by the handshake
   * timeout, as the hello is.
   */
  async listen(port: number = DEFAULT_FANOUT_PORT, host?: string): Promise<AddressInfo> {
    if (this.#isClosed || this.#isDraining) throw new FanoutError(FanoutErrorCode.closed, "server is closed");
    if (this.#http !== undefined)
      throw new FanoutError(FanoutErrorCode.alreadyListening, "already listening");
    const onRequest = (_req: IncomingMessage, res: ServerResponse): void => {
      res.writeHead(426, { "content-type": "text/plain", upgrade: "websocket" });
      res.end("tabby speaks WebSocket here\n");
    };
    const preUpgradeMs = this.#options.handshakeTimeoutMs;
    const httpOptions = {
      headersTimeout: preUpgradeMs,
      requestTimeout: preUpgradeMs,
      keepAliveTimeout: Math.min(5000, preUpgradeMs),
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(preUpgradeMs / 4))),
    };
    const tls = this.#tls;
    const server: Server | HttpsServer =
      tls === undefined
        ? createServer(httpOptions, onRequest)
        : createHttpsServer(
            {
              ...httpOptions,
              ...tls.context,
              requestCert: tls.isClientCertRequested,
              // Checked at the hello instead: a refusal is a counted 4004, not a TLS alert.
              rejectUnauthorized: false,
              handshakeTimeout: preUpgradeMs,
              minVersion: "TLSv1.2",
            },
            onRequest,
          );
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.handleUpgrade(req, socket, head),
    );
    // Counted from the TCP accept, before TLS and the upgrade: what anonymous attempts can hold is bounded.
    server.on("connection", (socket: Socket) => this.#admission.admit(socket));
    server.on("tlsClientError", (err: Error) =>
      this.#logger.debug({ err: err.message }, "TLS handshake failed on the WebSocket port"),
    );
    server.on("clientError", (err, socket) => {
      this.#logger.debug({ err }, "bad HTTP request on the WebSocket port");
      socket.destroy();
    });
    this.#http = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ port, host, backlog: this.#options.listenBacklog }, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      this.#http = undefined;
      throw new FanoutError(FanoutErrorCode.listen, `cannot listen on ${host ?? "*"}:${port}`, {
        cause: err,
      });
    }
    const address = server.address() as AddressInfo;
    this.#logger.info(
      { port: address.port, host: address.address, server: this.serverId },
      "fan-out listening",
    );
    return address;
  }

  /** Takes over an HTTP upgrade (for a caller that runs its own HTTP server). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#isClosed) {
      socket.destroy();
      return;
    }
    const peer = peerOf(req);
    const key = connectionKey(req.socket);
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws, peer, key));
  }

  /**
   * Replaces the listener's certificate, key and CA (a rotated Secret): new connections get them, open
   * sessions keep theirs. Throws when listening without TLS.
   */
  setSecureContext(context: SecureContextOptions): void {
    const server = this.#http;
    if (this.#tls === undefined || server === undefined || !("setSecureContext" in server)) {
      throw new FanoutError(FanoutErrorCode.closed, "not listening with TLS");
    }
    server.setSecureContext(context);
  }

  // ---- UpstreamSink ----

  // (delegated to Ingest: see ingest.ts)

  upsert(key: string, value: ResourceValue): void {
    this.#ingest.upsert(key, value);
  }

  upsertPrepared(key: string, prepared: PreparedValue): void {
    this.#ingest.upsertPrepared(key, prepared);
  }

  delete(key: string): void {
    this.#ingest.delete(key);
  }

  keysOfKind(kind: string): Iterable<string> {
    return this.#ingest.keysOfKind(kind);
  }

  setKindState(kind: string, state: KindState): void {
    this.#ingest.setKindState(kind, state);
  }

  /** Flushes pending changes now: one frame per view, queued to every in-step session. */
  flushNow(): void {
    this.#ingest.flushNow();
  }

  // ---- health ----

  /** Every view in sync, no kind stale, not draining. */
  isReady(): boolean {
    return this.notReadyReason() === undefined;
  }

  /** Why the server is not ready, or undefined when it is. */
  notReadyReason(): string | undefined {
    if (this.#isClosed) return "closed";
    if (this.#isDraining) return "draining";
    return this.#board.notReadyReason();
  }

  /** Sessions past the hello, every view: the load the balancer compares with the fair share. */
  get establishedSessions(): number {
    return this.#sessions.establishedCount;
  }

  /** Sessions held until their view is listed for the first time since this server started. */
  get sessionsAwaitingInitialSync(): number {
    return this.#starter.heldCount;
  }

  /** Resumes waiting for this server to reach the state their digests name (PROTOCOL.md §5.2.1). */
  get resumesWaiting(): number {
    return this.#starter.waitingCount;
  }

  status(): StatusReport {
    const report = buildStatusReport({
      serverId: this.serverId,
      hub: this.#hub,
      nowMs: this.#clock(),
      sessions: this.#sessions.all,
      sessionsOf: (view) => this.#sessions.sessionsOf(view),
      viewStatus: (view) => this.#board.current(view).status,
      kinds: this.#board.kinds,
      counts: this.#metrics.counts,
      notReadyReason: this.notReadyReason(),
      isDraining: this.#isDraining,
      flushWindow: this.#ingest.flushWindow,
    });
    return { ...report, balance: { ...this.#balancer.report(), moves: this.#balancerMetrics.counts } };
  }

  // ---- shutdown ----

  /**
   * Graceful stop: readiness goes false, the listener closes, and the sessions are closed with
   * shuttingDown one at a time, spread evenly over `drainMs` (default 0: all at once), each given
   * closeGraceMs to finish its close handshake; then every timer stops. Resolves when every session has
   * closed: within drainMs + closeGraceMs. Idempotent: a later call returns the first call's promise.
   * A `destroy()` during the drain wins: this promise then resolves when destroy() is done.
   */
  close(options: { readonly drainMs?: number } = {}): Promise<void> {
    const drainMs = options.drainMs ?? 0;
    if (!Number.isFinite(drainMs) || drainMs < 0) {
      return Promise.reject(
        new FanoutOptionError("drainMs", `must be a non-negative number, got ${String(drainMs)}`),
      );
    }
    if (this.#destroying !== undefined) return this.#destroying;
    this.#closing ??= this.#closeGracefully(drainMs);
    return this.#closing;
  }

  async #closeGracefully(drainMs: number): Promise<void> {
    this.#isDraining = true;
    this.#balancer.close();
    void this.#stopListening();
    // Sessions that understand `move` are sent to the other ready replicas first (with hints).
    const mover = this.#balancer.drainMover();
    await Promise.race([this.#sessions.drainGradually(drainMs, mover), this.#destroyStarted]);
    await this.destroy();
  }

  /**
   * Immediate stop: terminates every session and the listener now and stops every timer. Idempotent;
   * wins over a close() in progress (which then resolves with it). `err`, when given, is logged as the
   * reason.
   */
  destroy(err?: Error): Promise<void> {
    if (this.#destroying === undefined) {
      if (err !== undefined) this.#logger.warn({ err }, "fan-out destroyed");
      this.#destroying = this.#destroy();
      this.#onDestroyStarted();
    }
    return this.#destroying;
  }

  async #destroy(): Promise<void> {
    this.#isClosed = true;
    this.#isDraining = true;
    this.#ingest.close();
    this.#starter.close();
    this.#balancer.close();
    if (this.#pingTimer !== undefined) clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
    this.#queue.close();
    const closed = this.#sessions.terminateAll();
    this.#wss.close();
    const httpClosed = this.#stopListening();
    this.#http?.closeAllConnections();
    await Promise.all([closed, httpClosed]);
  }

  #stopListening(): Promise<void> {
    const server = this.#http;
    if (server === undefined) return Promise.resolve();
    this.#httpClosed ??= new Promise<void>((resolve) =>
      server.close((err) => {
        if (err !== undefined) this.#logger.debug({ err }, "fan-out listener was not running");
        resolve();
      }),
    );
    return this.#httpClosed;
  }

  // ---- sessions ----

  #onConnection(ws: WebSocket, peer: PeerCredentials, key: string): void {
    if (this.#isClosed) {
      ws.terminate();
      return;
    }
    this.#metrics.accepted();
    const s = this.#sessions.open(ws, this.#clock());
    s.peer = peer;
    s.connectionKey = key;
    ws.on("message", (data: RawData, isBinary: boolean) => this.#onMessage(s, data, isBinary));
    ws.on("error", (err: Error) => this.#onSocketError(s, err));
    ws.once("close", (code: number) => this.#onClose(s, code));
    this.#pingTimer ??= setInterval(() => this.#live.ping(), this.#options.pingIntervalMs);
    this.#balancer.start();
    if (this.#isDraining) {
      this.#closeSession(s, CloseCode.shuttingDown, "shuttingDown", "server shutting down");
    } else if (this.#isFull()) {
      this.#refuseFull(s);
    } else {
      s.armHandshakeTimer(this.#options.handshakeTimeoutMs, () =>
        this.#closeSession(
          s,
          CloseCode.handshakeTimeout,
          "handshakeTimeout",
          `no hello within ${this.#options.handshakeTimeoutMs} ms`,
        ),
      );
    }
  }

  #onMessage(s: Session, data: RawData, isBinary: boolean): void {
    if (s.closeCode !== undefined || s.phase === "closed") return;
    const read = readClientFrame(data, isBinary);
    if (!read.ok) {
      this.#metrics.badFrame(read.reason);
      this.#closeSession(s, CloseCode.badFrame, "badFrame", read.detail);
      return;
    }
    const message = read.message;
    if (s.phase === "handshake" && message.t === "hello" && !s.isAuthenticating) {
      try {
        this.#onHello(s, message);
      } catch (err) {
        this.#logger.error({ err, session: s.id }, "session start failed");
        this.#closeSession(s, INTERNAL_ERROR_CLOSE_CODE, "internalError", "internal error");
      }
    } else if (s.phase !== "handshake" && message.t === "pong") {
      const nowMs = this.#clock();
      s.lastPongAtMs = nowMs;
      const rttMs = nowMs - message.ts;
      this.#metrics.pong(rttMs >= 0 && rttMs <= this.#options.pongTimeoutMs ? rttMs / 1000 : undefined);
    } else if (
      message.t === "leave" &&
      s.phase === "live" &&
      !s.hasLeft &&
      s.features.has(FEATURES.leave) &&
      this.#sessions.isLeaving(s)
    ) {
      this.#onLeave(s);
    } else {
      this.#metrics.badFrame("out-of-order");
      this.#closeSession(s, CloseCode.badFrame, "badFrame", `unexpected ${message.t} message`);
    }
  }

  /**
   * `leave` after a `move` (PROTOCOL.md §5.5): the session gets the view up to the flushed head and nothing
   * more, then `left` with that view's digests, which the client presents to the next replica.
   */
  #onLeave(s: Session): void {
    this.#ingest.flushNow();
    if (!this.#live.stopAtHead(s)) return;
    const state = s.features.has(FEATURES.replicaResume)
      ? this.#hub.stateOf(s.view as ViewName, s.node)
      : undefined;
    s.send(encodeMessage({ t: "left", revision: this.#hub.revision, ...(state !== undefined && { state }) }));
    this.#metrics.left(state !== undefined);
  }

  #onHello(s: Session, hello: HelloMessage): void {
    if (this.#isDraining) {
      this.#closeSession(s, CloseCode.shuttingDown, "shuttingDown", "server shutting down");
      return;
    }
    const verdict = evaluateHello(hello, this.#options.features);
    if (!verdict.ok) {
      this.#closeSession(s, verdict.code, verdict.reason, verdict.detail);
      return;
    }
    // The handshake timer keeps running while the credentials are checked: a slow review is bounded too.
    s.isAuthenticating = true;
    this.#authenticator.authenticate({ ...s.peer, token: hello.token, signal: s.closedSignal }).then(
      (result) => this.#onAuthenticated(s, verdict, result),
      (err: unknown) => {
        this.#logger.error({ err, session: s.id }, "authentication failed");
        this.#closeSession(s, INTERNAL_ERROR_CLOSE_CODE, "internalError", "internal error");
      },
    );
  }

  #onAuthenticated(s: Session, verdict: HelloAccepted, result: AuthResult): void {
    s.isAuthenticating = false;
    if (s.closeCode !== undefined || s.isClosed) return;
    if (this.#isDraining) {
      this.#closeSession(s, CloseCode.shuttingDown, "shuttingDown", "server shutting down");
      return;
    }
    const decision = result.ok
      ? (authorizeView(result.identity, verdict.view, verdict.node) ?? result)
      : result;
    if (!decision.ok) {
      this.authMetrics.refused(decision.reason);
      this.#logger.debug(
        { session: s.id, reason: decision.reason, detail: decision.detail },
        "client refused",
      );
      if (decision.reason === "review-unavailable") {
        this.#closeSession(s, CloseCode.authUnavailable, "authUnavailable", decision.detail);
      } else {
        this.#closeSession(s, CloseCode.unauthorized, "unauthorized", decision.detail);
      }
      return;
    }
    this.authMetrics.accepted(decision.identity);
    s.identity = decision.identity;
    this.#admission.settle(s.connectionKey);
    if (this.#isFull()) {
      this.#refuseFull(s);
      return;
    }
    try {
      this.#startSession(s, verdict);
    } catch (err) {
      this.#logger.error({ err, session: s.id }, "session start failed");
      this.#closeSession(s, INTERNAL_ERROR_CLOSE_CODE, "internalError", "internal error");
    }
  }

  #startSession(s: Session, verdict: HelloAccepted): void {
    s.clearHandshakeTimer();
    s.view = verdict.view;
    s.node = verdict.node;
    s.features = new Set(verdict.features);
    s.deltaEncoding = deltaEncodingOf(s.features);
    s.clientName = verdict.clientName;
    s.phase = "syncing";
    s.lastPongAtMs = this.#clock();
    this.#sessions.join(s, verdict.view);
    this.#starter.start(s, verdict);
  }

  /** Sessions past the hello fill every slot (handshaking connections are bounded apart: Admission). */
  #isFull(): boolean {
    let established = 0;
    for (const view of VIEW_NAMES) established += this.#sessions.sessionsOf(view).size;
    return established >= this.#options.maxConnections;
  }

  #refuseFull(s: Session): void {
    this.#closeSession(
      s,
      CloseCode.tooManyConnections,
      "tooManyConnections",
      `server at its limit of ${this.#options.maxConnections} sessions`,
    );
  }

  #closeSession(s: Session, code: number, reason: DropReason, detail: string): void {
    this.#sessions.close(s, code, reason, detail);
  }

  #onSocketError(s: Session, err: Error): void {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") {
      this.#metrics.badFrame("too-large");
      if (s.closeCode === undefined) this.#metrics.dropped("messageTooBig");
      s.closeCode ??= CloseCode.messageTooBig;
    } else if (code?.startsWith("WS_ERR_") === true) {
      this.#metrics.badFrame("ws-protocol");
      if (s.closeCode === undefined) this.#metrics.dropped("badFrame");
      s.closeCode ??= CloseCode.badFrame;
    }
    this.#logger.debug({ err, session: s.id }, "session socket error");
  }

  #onClose(s: Session, code: number): void {
    this.#sessions.remove(s);
    this.#logger.debug({ session: s.id, view: s.view, code, client: s.clientName }, "session closed");
  }
}
