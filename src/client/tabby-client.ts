import { isPatchEntry } from "../../proto/messages.js";
import type {
  DeltasMessage,
  LeftMessage,
  ResourceValue,
  ResumeState,
  ResumeToken,
  StatusMessage,
  WelcomeMessage,
} from "../../proto/messages.js";
import { kindOfKey } from "../snapshot/keys.js";
import { Backoff } from "./backoff.js";
import { ClientEvents } from "./client-events.js";
import type { ClientEventMap, ClientEventName } from "./client-events.js";
import { Connection } from "./connection.js";
import type { SessionEnd } from "./connection.js";
import { resolveServers } from "./discovery.js";
import { buildHello } from "./hello.js";
import { mirrorState, resumeToken } from "./resume-token.js";
import { resolveToken } from "./token.js";
import {
  ClientClosedError,
  ClientConnectError,
  ClientListenerError,
  ClientProtocolError,
  ClientRejectedError,
  ClientDiscoveryError,
  TabbyClientError,
} from "./errors.js";
import { Mirror, MirrorPatchError } from "./mirror.js";
import type { Update } from "./mirror.js";
import { resolveOptions } from "./options.js";
import type { ClientLogger, ResolvedClientOptions, TabbyClientOptions } from "./options.js";
import { planReconnect } from "./reconnect-policy.js";
import { ServerPicker } from "./server-picker.js";
import type { PickHints } from "./server-picker.js";
import type { SnapshotResult } from "./snapshot-assembler.js";
import { deferred, newClientStats } from "./stats.js";
import type { ClientStats, Deferred } from "./stats.js";
import { isSameStatus, sessionStatus } from "./status.js";
import type { ClientStatus, SessionView } from "./status.js";
import type { CalicoKey, CalicoKindMap, CalicoKindName, TypedUpdate } from "./types/index.js";
import { UpdateStream } from "./update-stream.js";
import type { UpdateStreamOptions } from "./update-stream.js";

interface Session extends SessionView {
  hasBaseline: boolean;
  serverId: string | undefined;
  serverStatus: StatusMessage | undefined;
  /** The welcome's `conversion` (feature "replica-resume"). */
  conversion: string | undefined;
}

/**
 * A mirror of one tabby view, kept current over a WebSocket to one of the servers. Emits `updates` (only
 * real changes, batched), `status` and `error`. Reconnects with jittered backoff across the servers, resumes
 * where it can and otherwise diffs the new snapshot against its mirror, so that failover shows the
 * application no churn. Never reads the environment, never exits the process, logs only to its logger.
 */
export class TabbyClient {
  readonly #o: ResolvedClientOptions;
  readonly #log: ClientLogger;
  readonly #events = new ClientEvents();
  readonly #mirror: Mirror | undefined;
  readonly #backoff: Backoff;
  readonly #picker: ServerPicker;
  readonly #stats = newClientStats();
  /** The revision of the mirror, and the server it belongs to (together: the resume token). */
  #revision = 0;
  #serverId: string | undefined;
  /** False after a protocol error: the next session starts from a snapshot (diffed against the mirror). */
  #hasResumeToken = false;
  /** The view's digests from the last `left` (a client without a mirror), until the next welcome. */
  #leftState: ResumeState | undefined;
  /** The conversion of the server whose state the mirror holds (its welcome's), for the resume state. */
  #conversion: string | undefined;
  /**
   * The session's baseline is older than its server's head (a reused snapshot, PROTOCOL.md §6.2): the
   * revision its catch-up reaches. Until then the session is syncing and the mirror holds its changes back
   * (one net batch at the end), so the agent never sees a value go back to the snapshot's and forward again.
   */
  #settleAt: number | undefined;
  #status: ClientStatus = { state: "disconnected" };
  #isStarted = false;
  #isClosed = false;
  #isSynced = false;
  #attempts = 0;
  #servers: readonly string[] = [];
  #connection: Connection | undefined;
  #session: Session | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #discovery: AbortController | undefined;
  /** The token function's call in progress (aborted on close). */
  #tokenFetch: AbortController | undefined;
  #synced: Deferred<void> | undefined;
  readonly #closed = deferred<TabbyClientError | undefined>();
  #closing: Promise<void> | undefined;
  /** The connection a close() is ending (a destroy() meanwhile drops it). */
  #closingConnection: Connection | undefined;
  #closeReason: TabbyClientError | undefined;
  readonly #onAbort = (): void => void this.close();
  /** Open `updates()` iterators; each leaves the set when it ends. */
  readonly #streams = new Set<UpdateStream>();

  constructor(options: TabbyClientOptions) {
    this.#o = resolveOptions(options);
    this.#log = this.#o.logger;
    this.#mirror = this.#o.isMirror ? new Mirror() : undefined;
    this.#backoff = new Backoff({
      initialMs: this.#o.backoffInitialMs,
      maxMs: this.#o.backoffMaxMs,
      random: this.#o.random,
    });
    this.#picker = new ServerPicker(this.#o.random);
    void this.#closed.promise.then((reason) => {
      for (const stream of [...this.#streams]) stream.end(reason);
    });
    const signal = this.#o.signal;
    if (signal?.aborted === true) void this.close();
    else signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Starts connecting (on the next tick). Idempotent; throws ERR_CLIENT_CLOSED after close(). */
  start(): void {
    if (this.#isClosed) throw new ClientClosedError("start() on a closed client");
    if (this.#isStarted) return;
    this.#isStarted = true;
    this.#schedule(0, {});
  }

  /** `updates`: a batch of real changes; `status`: a new ClientStatus; `error`: a TabbyClientError. */
  on<E extends ClientEventName>(event: E, listener: (arg: ClientEventMap[E]) => void): this {
    this.#events.on(event, listener);
    return this;
  }

  once<E extends ClientEventName>(event: E, listener: (arg: ClientEventMap[E]) => void): this {
    this.#events.once(event, listener);
    return this;
  }

  off<E extends ClientEventName>(event: E, listener: (arg: ClientEventMap[E]) => void): this {
    this.#events.off(event, listener);
    return this;
  }

  /**
   * The `updates` events as an async iterator: `for await (const batch of client.updates({ signal }))`.
   * Bounded: batches a slow consumer has not taken are coalesced past `maxPendingBatches` (see
   * UpdateStreamOptions). Ends on abort, on `break`, or when the client closes (throwing the reason if it
   * stopped on an error). The listeners of the `updates` event are unaffected.
   */
  updates(options: UpdateStreamOptions = {}): UpdateStream {
    const listener = (batch: readonly TypedUpdate[]): void => stream.push(batch);
    const stream: UpdateStream = new UpdateStream(options, () => {
      this.#events.off("updates", listener);
      this.#streams.delete(stream);
    });
    if (this.#isClosed) {
      stream.end(this.#closeReason);
      return stream;
    }
    this.#streams.add(stream);
    this.#events.on("updates", listener);
    return stream;
  }

  /**
   * The mirrored value of a key (`Kind/name` or `Kind/namespace/name`), typed by the key's kind:
   * `get("IPPool/default")` is an `IPPool | undefined`. Always undefined in lite mode.
   */
  get<K extends CalicoKindName>(key: CalicoKey<K>): CalicoKindMap[K] | undefined;
  get(key: string): ResourceValue | undefined;
  get(key: string): ResourceValue | undefined {
    return this.#mirror?.get(key);
  }

  /** The mirrored values of one kind (a fresh array), typed: `list("IPPool")` is an `IPPool[]`. Empty in lite mode. */
  list<K extends CalicoKindName>(kind: K): CalicoKindMap[K][];
  list(kind: string): ResourceValue[];
  list(kind: string): ResourceValue[] {
    return this.#mirror?.list(kind) ?? [];
  }

  /** The mirrored keys of one kind, or all of them; empty in lite mode. */
  keys(kind?: string): string[] {
    return this.#mirror?.keys(kind) ?? [];
  }

  /** Entries in the mirror (0 in lite mode). */
  get size(): number {
    return this.#mirror?.size ?? 0;
  }

  /** The server revision the mirror is at (0 before the first snapshot). */
  get revision(): number {
    return this.#revision;
  }

  /** The id of the server whose revision `revision` is; undefined before the first snapshot. */
  get serverId(): string | undefined {
    return this.#serverId;
  }

  get status(): ClientStatus {
    return this.#status;
  }

  get isInSync(): boolean {
    return this.#status.state === "in-sync";
  }

  get stats(): ClientStats {
    return { ...this.#stats };
  }

  /** Resolves at the first in-sync; rejects with ERR_CLIENT_CLOSED if the client closes first. */
  synced(): Promise<void> {
    if (this.#isSynced) return Promise.resolve();
    if (this.#isClosed) return Promise.reject(this.#closedError());
    this.#synced ??= deferred<void>();
    return this.#synced.promise;
  }

  /** Resolves when the client has stopped for good: undefined after close(), else the reason. */
  closed(): Promise<TabbyClientError | undefined> {
    return this.#closed.promise;
  }

  /**
   * Stops for good, gracefully: ends the session with a close handshake (bounded by closeTimeoutMs),
   * clears every timer. Idempotent; `destroy()` during it wins and both then resolve together.
   */
  close(): Promise<void> {
    return this.#shutdown(undefined, false);
  }

  /**
   * Stops for good, now: drops the socket without a close handshake and clears every timer. `closed()`
   * resolves with `err` (wrapped as ERR_CLIENT_CLOSED unless it is a TabbyClientError). Idempotent; wins
   * over a close() in progress.
   */
  destroy(err?: Error): Promise<void> {
    const reason =
      err === undefined || err instanceof TabbyClientError
        ? err
        : new ClientClosedError(`destroyed: ${err.message}`, { cause: err });
    return this.#shutdown(reason, true);
  }

  /** `await using client = new TabbyClient(...)`: close() at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- connecting ----

  #schedule(delayMs: number, hints: PickHints): void {
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#attempt(hints).catch((err: unknown) => this.#attemptFailed(err));
    }, delayMs);
  }

  /** An attempt that failed before it had a session (discovery, or the socket could not be created). */
  #attemptFailed(err: unknown): void {
    if (this.#isClosed) return;
    this.#connection = undefined;
    this.#session = undefined;
    const error =
      err instanceof TabbyClientError ? err : new ClientConnectError("cannot connect", { cause: err });
    const retryInMs = this.#backoff.next();
    this.#setStatus({ state: "disconnected", reason: error.message, error, retryInMs });
    this.#reportError(error);
    this.#schedule(retryInMs, {});
  }

  async #attempt(hints: PickHints): Promise<void> {
    if (this.#isClosed) return;
    if (this.#attempts++ > 0) this.#stats.reconnects++;
    if (typeof this.#o.servers === "function") {
      const controller = new AbortController();
      this.#discovery = controller;
      try {
        this.#servers = await resolveServers(
          this.#o.servers,
          controller.signal,
          this.#o.connectTimeoutMs,
          this.#log,
        );
      } finally {
        this.#discovery = undefined;
      }
      if (this.#isClosed) return;
    } else {
      this.#servers = this.#o.servers;
    }
    const server = this.#picker.pick(this.#servers, hints);
    if (server === undefined) {
      // Only when every server rejected the client (discovery never returns an empty list).
      const reason = this.#closeReason ?? new ClientDiscoveryError("no usable server address");
      this.#log.error({ servers: this.#servers }, "every server rejected the client");
      void this.#shutdown(reason, false);
      return;
    }
    let token: string | undefined;
    if (typeof this.#o.token === "function") {
      const controller = new AbortController();
      this.#tokenFetch = controller;
      try {
        token = await resolveToken(this.#o.token, controller.signal, this.#o.connectTimeoutMs);
      } finally {
        this.#tokenFetch = undefined;
      }
      if (this.#isClosed) return;
    } else {
      token = this.#o.token;
    }
    this.#connect(server, token);
  }

  #connect(server: string, token: string | undefined): void {
    const session: Session = {
      server,
      serverId: undefined,
      hasBaseline: false,
      serverStatus: undefined,
      conversion: undefined,
    };
    this.#session = session;
    this.#setStatus({ state: "connecting", server });
    const connection: Connection = new Connection({
      url: server,
      hello: buildHello(this.#o, this.#resumeToken(), token),
      isMirror: this.#mirror !== undefined,
      held: this.#mirror,
      isDecodingDeltas: this.#o.isDecodingDeltas,
      connectTimeoutMs: this.#o.connectTimeoutMs,
      readTimeoutMs: this.#o.readTimeoutMs,
      maxFrameBytes: this.#o.maxFrameBytes,
      closeTimeoutMs: this.#o.closeTimeoutMs,
      tls: this.#o.tls,
      logger: this.#log,
      events: {
        frame: (bytes) => {
          this.#stats.frames++;
          this.#stats.bytes += bytes;
        },
        wire: (bytes) => (this.#stats.wireBytes += bytes),
        snapshotFrame: (bytes, type) => {
          this.#stats.snapshotBytes += bytes;
          if (type === "snap-chunk") this.#stats.snapshotChunks++;
        },
        welcome: (m) => this.#onWelcome(session, m),
        snapshotBegin: (m) =>
          this.#log.debug({ server, revision: m.revision, count: m.count }, "snapshot begins"),
        snapshot: (result) => this.#onSnapshot(session, result),
        deltas: (m) => this.#onDeltas(m),
        status: (m) => {
          session.serverStatus = m;
          this.#refreshStatus();
        },
        move: (m) => {
          this.#stats.moves++;
          this.#log.info({ server, ...m }, "server asked the client to move");
        },
        left: (m) => this.#onLeft(m),
        end: (end) => this.#onEnd(connection, end),
      },
    });
    this.#connection = connection;
  }

  /** The token of the next hello: the last complete state, with the mirror's digests when it has them. */
  #resumeToken(): ResumeToken | undefined {
    if (this.#serverId === undefined || !this.#hasResumeToken) return undefined;
    const state =
      this.#mirror !== undefined && this.#conversion !== undefined
        ? mirrorState(this.#mirror, this.#o.view, this.#o.nodeName, this.#conversion)
        : this.#leftState;
    return resumeToken(this.#serverId, this.#revision, state);
  }

  // ---- session events ----

  /**
   * The server this client is leaving stopped the view and sent its digests (feature "leave"): they are
   * what this client holds, and the next hello presents them (PROTOCOL.md §5.5).
   */
  #onLeft(m: LeftMessage): void {
    this.#revision = m.revision;
    this.#leftState = m.state;
  }

  #onWelcome(session: Session, m: WelcomeMessage): void {
    // A new session's frames change the state: the digests of the last `left` no longer describe it.
    this.#leftState = undefined;
    session.serverId = m.server;
    session.conversion = m.conversion;
    if (m.mode === "resume") {
      this.#stats.resumes++;
      session.hasBaseline = true;
      if (m.server !== this.#serverId) {
        // Another replica resumed the mirror from its digests: the state is now that server's, and its
        // catch-up counts from revision 0 (PROTOCOL.md §5.2).
        this.#stats.replicaResumes++;
        this.#serverId = m.server;
        this.#revision = 0;
      }
      this.#conversion = m.conversion;
      // A hold left by a session that ended before it settled: the catch-up reaches the welcome's head.
      if (this.#mirror?.isHolding === true && m.revision > this.#revision) {
        this.#settleAt = m.revision;
        session.hasBaseline = false;
      } else {
        this.#emitUpdates(this.#mirror?.settle() ?? []);
      }
    }
    this.#log.debug({ server: session.server, serverId: m.server, mode: m.mode }, "welcome");
    this.#refreshStatus();
  }

  #onSnapshot(session: Session, result: SnapshotResult): void {
    this.#stats.snapshots++;
    const isBehind = result.head !== undefined && result.head > result.revision;
    if (isBehind) this.#mirror?.hold();
    const updates =
      this.#mirror !== undefined && result.entries !== null
        ? this.#mirror.replace(result.entries, result.hashes)
        : [];
    this.#revision = result.revision;
    this.#serverId = session.serverId;
    this.#conversion = session.conversion;
    this.#hasResumeToken = true;
    if (isBehind) {
      // Older than the server's head: syncing until the catch-up that follows reaches it (#settle).
      this.#settleAt = result.head;
      this.#stats.heldSnapshots++;
      return;
    }
    session.hasBaseline = true;
    // A hold left by an earlier session: the net difference since it began, this snapshot included.
    this.#emitUpdates(this.#mirror?.isHolding === true ? this.#mirror.settle() : updates);
    this.#refreshStatus();
  }

  /** Throws ClientProtocolError for a frame it cannot apply: the session ends and the client resyncs. */
  #onDeltas(m: DeltasMessage): void {
    this.#stats.deltas++;
    let updates: Update[];
    if (this.#mirror !== undefined) {
      try {
        updates = this.#mirror.apply(m.changes);
      } catch (err) {
        if (!(err instanceof MirrorPatchError)) throw err;
        throw new ClientProtocolError(`server sent a delta the mirror cannot apply: ${err.message}`, {
          cause: err,
          server: this.#session?.server ?? "",
        });
      }
    } else {
      updates = m.changes.map((c) => {
        if (isPatchEntry(c)) {
          throw new ClientProtocolError(`server sent a patch for ${c.k} to a client without a mirror`, {
            server: this.#session?.server ?? "",
          });
        }
        return { key: c.k, kind: kindOfKey(c.k), value: c.v };
      });
    }
    this.#revision = m.to;
    if (this.#settleAt !== undefined && m.to >= this.#settleAt) {
      this.#settleAt = undefined;
      if (this.#session !== undefined) this.#session.hasBaseline = true;
      this.#emitUpdates(this.#mirror?.settle() ?? updates);
      this.#refreshStatus();
      return;
    }
    if (this.#mirror?.isHolding !== true) this.#emitUpdates(updates);
  }

  #onEnd(connection: Connection, end: SessionEnd): void {
    if (connection !== this.#connection) return;
    this.#connection = undefined;
    this.#session = undefined;
    // That session's head means nothing to the next one; a hold in progress waits for its baseline.
    this.#settleAt = undefined;
    if (this.#isClosed) return;
    if (end.hadBaseline) {
      this.#backoff.reset();
      this.#picker.newRound();
    }
    // A server that sent an invalid frame (or one the mirror could not apply) may have sent wrong data
    // before it: resync with a snapshot, which the mirror diffs.
    if (end.isLocal && end.error instanceof ClientProtocolError) {
      this.#stats.rejectedFrames++;
      this.#hasResumeToken = false;
    }
    const status = {
      state: "disconnected" as const,
      server: end.server,
      ...(end.serverId !== undefined && { serverId: end.serverId }),
      closeCode: end.closeCode,
      reason: end.reason,
      ...(end.error !== undefined && { error: end.error }),
    };
    if (end.error instanceof ClientRejectedError) {
      this.#picker.reject(end.server);
      this.#closeReason = end.error;
      if (this.#picker.isAllRejected(this.#servers)) {
        this.#log.error({ server: end.server, closeCode: end.closeCode }, "every server rejected the client");
        this.#setStatus(status);
        this.#reportError(end.error);
        void this.#shutdown(end.error, false);
        return;
      }
    }
    const { retryInMs, hints, hasLeft } = planReconnect(end, () => this.#backoff.next(), Date.now());
    if (hasLeft) this.#picker.left(end.server);
    this.#log.info(
      { server: end.server, closeCode: end.closeCode, reason: end.reason, retryInMs },
      "disconnected",
    );
    this.#setStatus({ ...status, retryInMs });
    if (end.error !== undefined) this.#reportError(end.error);
    this.#schedule(retryInMs, hints);
  }

  // ---- state and events ----

  #refreshStatus(): void {
    if (this.#session !== undefined) this.#setStatus(sessionStatus(this.#session));
  }

  #setStatus(next: ClientStatus): void {
    if (isSameStatus(this.#status, next)) return;
    this.#status = next;
    if (next.state === "in-sync" && !this.#isSynced) {
      this.#isSynced = true;
      this.#synced?.resolve();
    }
    this.#emit("status", next);
  }

  #emitUpdates(updates: readonly Update[]): void {
    if (updates.length === 0) return;
    this.#stats.updates += updates.length;
    // The server sends only the kinds of the view, all of them in CalicoKindMap: the typed view of a batch.
    this.#emit("updates", updates as readonly TypedUpdate[]);
  }

  #reportError(error: TabbyClientError): void {
    this.#stats.errors++;
    if (this.#events.listenerCount("error") > 0) {
      this.#emit("error", error);
    } else {
      this.#log.warn(
        { err: error, code: error.code, server: error.server },
        "client error (no error listener)",
      );
    }
  }

  #emit<E extends ClientEventName>(event: E, arg: ClientEventMap[E]): void {
    for (const err of this.#events.emit(event, arg)) {
      this.#log.error({ err, event }, "an event listener threw");
      if (event !== "error") this.#reportError(new ClientListenerError(event, err));
    }
  }

  #closedError(): ClientClosedError {
    return new ClientClosedError("the client closed before it was in sync", { cause: this.#closeReason });
  }

  #shutdown(reason: TabbyClientError | undefined, isNow: boolean): Promise<void> {
    if (this.#closing !== undefined) {
      // destroy() during close(): cut the socket that is still finishing its close handshake.
      if (isNow) void this.#closingConnection?.destroy();
      return this.#closing;
    }
    this.#isClosed = true;
    this.#closeReason ??= reason;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#discovery?.abort();
    this.#tokenFetch?.abort();
    this.#o.signal?.removeEventListener("abort", this.#onAbort);
    const connection = this.#connection;
    this.#connection = undefined;
    this.#session = undefined;
    this.#closingConnection = connection;
    this.#closing = (async () => {
      if (connection !== undefined) await (isNow ? connection.destroy() : connection.close());
      this.#closingConnection = undefined;
      this.#setStatus({
        state: "closed",
        ...(reason !== undefined && { reason: reason.message, error: reason }),
      });
      this.#synced?.reject(this.#closedError());
      this.#closed.resolve(reason);
    })();
    return this.#closing;
  }
}
