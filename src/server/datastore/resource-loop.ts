import type { Logger } from "pino";
import type { UpstreamSink } from "../../snapshot/sink.js";
import {
  DatastoreDecodeError,
  DatastoreError,
  DatastoreGoneError,
  DatastoreIngestWorkerError,
  DatastoreListError,
  DatastoreWatchdogError,
  DatastoreWatchError,
} from "./errors.js";
import { eventOf, outcomeOf } from "./ingest-outcome.js";
import type { IngestEvent, ObjectOutcome } from "./ingest-outcome.js";
import type { IngestWorker, OutcomePage } from "./ingest-worker.js";
import { peekContinue, parseListPage } from "./kube-http.js";
import type { KubeHttp } from "./kube-http.js";
import type { DatastoreMetrics, EventType, RestartReason } from "./metrics.js";
import { resourceId, resourcePath } from "./registry.js";
import type { SyncTracker } from "./sync-tracker.js";
import { Backoff, linkedController } from "./timing.js";
import type { Delay } from "./timing.js";
import type { UpstreamResource } from "./types.js";
import { decodeWatchLines, WatchLineFramer } from "./watch-decoder.js";

/** Resolved datastore options, as one loop uses them. */
export interface LoopOptions {
  readonly pageSize: number;
  readonly watchTimeoutSeconds: number;
  readonly watchdogMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly missingCrdRecheckMs: number;
  readonly maxEventBytes: number;
  /** A watch that ends cleanly sooner than this, having seen no event, is retried after a backoff. */
  readonly minWatchMs: number;
}

export interface LoopDeps {
  readonly resource: UpstreamResource;
  readonly http: KubeHttp;
  readonly sink: UpstreamSink;
  readonly tracker: SyncTracker;
  readonly metrics: DatastoreMetrics;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly random: () => number;
  /** Every wait of the loop (backoff, Retry-After, missing-CRD recheck) goes through this. */
  readonly delay: Delay;
  readonly options: LoopOptions;
  readonly signal: AbortSignal;
  /**
   * Where list pages and watch lines are decoded and converted: the ingest worker while it is available,
   * else this thread.
   */
  readonly ingest?: IngestWorker | undefined;
  /** Something arrived from upstream for this resource (list page, event, bookmark). */
  onActivity(): void;
  /** A watch request opened (+1) or ended (-1). */
  onWatch(delta: 1 | -1): void;
}

/**
 * How many bytes of a watch's lines may wait while a batch of it is in the ingest worker: at 5000 pod
 * changes/s (~12 MB/s of JSON) about 80 ms of them. 4 MiB gave the same overload latency and higher
 * reconnect-storm peaks (docs/BENCHMARKS.md, "Watch lines in batches").
 */
const WATCH_QUEUE_BYTES = 1024 * 1024;

type WatchEnd = { readonly sawEvents: boolean; readonly durationMs: number };

/**
 * One supervised list-watch of one upstream resource, run until the signal aborts. Never gives up:
 * paged list → watch from the list's resourceVersion → re-watch from the last one seen; relist on 410;
 * jittered exponential backoff on errors; a watchdog restarts a silent watch; a resource that is not
 * installed (404, optional resources) counts as empty and is checked again every missingCrdRecheckMs.
 */
export class ResourceLoop {
  readonly #d: LoopDeps;
  readonly #kind: string;
  readonly #id: string;
  readonly #backoff: Backoff;
  readonly #log: Logger;
  /** The version that answered the last list (EndpointSlice may fall back to v1beta1). */
  #version: string;
  #lists = 0;
  #failures = 0;
  /** 410s since the last watch event. */
  #goneStreak = 0;
  #lastActivityMs: number;
  /** The resourceVersion to watch from (the last one seen); undefined: list first. */
  #rv: string | undefined;

  constructor(deps: LoopDeps) {
    this.#d = deps;
    this.#kind = deps.resource.kinds[0] ?? deps.resource.plural;
    this.#id = resourceId(deps.resource);
    this.#backoff = new Backoff(deps.options.backoffInitialMs, deps.options.backoffMaxMs, deps.random);
    this.#log = deps.logger.child({ resource: this.#id });
    this.#version = deps.resource.versions[0] ?? "v1";
    this.#lastActivityMs = deps.clock();
  }

  async run(): Promise<void> {
    const { signal } = this.#d;
    while (!signal.aborted) {
      try {
        if (this.#rv === undefined) {
          this.#rv = await this.#list();
          if (this.#rv === undefined) {
            await this.#d.delay(this.#d.options.missingCrdRecheckMs, signal);
            continue;
          }
        }
        const end = await this.#watch(this.#rv);
        this.#restart("closed");
        if (!end.sawEvents && end.durationMs < this.#d.options.minWatchMs) {
          await this.#d.delay(this.#backoff.next(), signal);
        }
      } catch (err) {
        if (signal.aborted) break;
        const isListing = this.#rv === undefined;
        if (err instanceof DatastoreGoneError) {
          this.#d.metrics.gone.inc({ kind: this.#kind });
          if (!isListing) this.#restart("gone");
          this.#log.debug(
            { code: err.code, status: err.status },
            "upstream resourceVersion expired, relisting",
          );
          this.#rv = undefined;
          // Relist at once, unless 410s come back to back (the server compacts faster than we list).
          if (++this.#goneStreak > 1) await this.#d.delay(this.#backoff.next(), signal);
          continue;
        }
        if (err instanceof DatastoreIngestWorkerError) {
          // What the worker had in hand is lost: relist rather than trust the resourceVersion.
          this.#rv = undefined;
        } else if (err instanceof DatastoreWatchError && err.status === 404 && this.#d.resource.isOptional) {
          // The CRD went away under the watch: the relist finds out and empties the kind.
          this.#restart("missing");
          this.#rv = undefined;
          await this.#d.delay(this.#backoff.next(), signal);
          continue;
        }
        this.#fail(err, !isListing);
        const wait = this.#backoff.next();
        const asked = err instanceof DatastoreError ? (err.retryAfterMs ?? 0) : 0;
        await this.#d.delay(Math.max(wait, Math.min(asked, this.#d.options.backoffMaxMs)), signal);
      }
    }
  }

  #restart(reason: RestartReason): void {
    this.#d.metrics.restarts.inc({ kind: this.#kind, reason });
  }

  #fail(err: unknown, isWatch: boolean): void {
    const code = err instanceof DatastoreError ? err.code : "ERR_UNKNOWN";
    const status = err instanceof DatastoreError ? err.status : undefined;
    const message = err instanceof Error ? err.message : String(err);
    if (isWatch) {
      const reason: RestartReason =
        err instanceof DatastoreWatchdogError
          ? "watchdog"
          : err instanceof DatastoreDecodeError
            ? "decode"
            : err instanceof DatastoreIngestWorkerError
              ? "ingest-worker"
              : "error";
      this.#restart(reason);
    }
    const isSilence = err instanceof DatastoreWatchdogError;
    this.#d.tracker.failing(this.#d.resource, `${code}: ${message}`, {
      sinceMs: isSilence ? this.#lastActivityMs : this.#d.clock(),
      isSilence,
    });
    this.#failures++;
    // The error object, not its message: pino's serializer keeps its code, stack and cause chain.
    const fields = { code, status, err, attempt: this.#backoff.attempt };
    if (this.#failures === 1) this.#log.warn(fields, "upstream list/watch failed, retrying with backoff");
    else this.#log.debug(fields, "upstream list/watch failed again");
  }

  #recovered(): void {
    this.#backoff.reset();
    if (this.#failures > 0) {
      this.#log.info({ failures: this.#failures }, "upstream list/watch recovered");
      this.#failures = 0;
    }
  }

  #activity(): void {
    this.#lastActivityMs = this.#d.clock();
    this.#d.onActivity();
  }

  #path(version: string): string {
    return resourcePath(this.#d.resource, version);
  }

  /**
   * A full paged list, applied to the sink and diffed against it. Undefined: the resource is not installed.
   * The next page is asked for as soon as this one's body is in, when its head or tail names the continue
   * token (peekContinue), so that the API server writes it while this one is decoded and applied: at most two
   * requests of a list are in flight. The decoded page's token decides; a wrong guess is dropped.
   */
  async #list(): Promise<string | undefined> {
    const r = this.#d.resource;
    for (const version of r.versions) {
      const seen = new Set<string>();
      let rv: string | undefined;
      let continueToken: string | undefined;
      // Ends a request made ahead that is no longer wanted (the list failed, or the guess was wrong).
      const { controller, dispose } = linkedController(this.#d.signal);
      try {
        let body = await this.#pageBody(version, undefined, controller.signal);
        for (;;) {
          const guess = peekContinue(body)?.token;
          const ahead =
            guess === undefined
              ? undefined
              : { token: guess, body: this.#pageBody(version, guess, controller.signal) };
          // Awaited below when the guess was right; otherwise its failure does not matter.
          ahead?.body.catch(() => undefined);
          const page = await this.#decodePage(body);
          this.#activity();
          for (const item of page.items) this.#apply(item, seen);
          rv = page.resourceVersion;
          continueToken = page.continueToken;
          if (continueToken === undefined) break;
          body =
            ahead?.token === continueToken
              ? await ahead.body
              : await this.#pageBody(version, continueToken, controller.signal);
        }
      } catch (err) {
        if (err instanceof DatastoreError && err.status === 404 && continueToken === undefined) continue;
        throw err;
      } finally {
        controller.abort();
        dispose();
      }
      this.#deleteUnseen(seen);
      this.#version = version;
      if (this.#lists++ > 0) this.#d.metrics.relists.inc({ kind: this.#kind });
      this.#d.tracker.listed(r);
      this.#recovered();
      return rv;
    }
    if (!r.isOptional) {
      throw new DatastoreListError(`${this.#id} is not served (404)`, { resource: this.#id, status: 404 });
    }
    // Not installed: empty and in sync; whatever was held for it is gone.
    this.#deleteUnseen(new Set());
    this.#activity();
    this.#d.tracker.listed(r);
    this.#recovered();
    this.#log.debug({ recheckMs: this.#d.options.missingCrdRecheckMs }, "upstream resource not installed");
    return undefined;
  }

  /** One list page's body, undecoded. */
  #pageBody(version: string, continueToken: string | undefined, signal: AbortSignal): Promise<Buffer> {
    const query: Record<string, string> = { limit: String(this.#d.options.pageSize) };
    if (continueToken !== undefined) query.continue = continueToken;
    return this.#d.http.listBody(this.#path(version), query, signal, this.#id);
  }

  /** A list page decoded and converted (in the ingest worker while it is available; it takes the body). */
  async #decodePage(body: Buffer): Promise<OutcomePage> {
    const { ingest, resource } = this.#d;
    if (ingest?.isAvailable === true) return ingest.list(resource, body);
    const page = parseListPage(body, this.#id);
    return { ...page, items: page.items.map((obj) => outcomeOf(resource, obj, false)) };
  }

  /** Decodes and converts whole watch lines, then applies each event in order (see #event). */
  async #lines(lines: Buffer, onEvent: (event: IngestEvent) => void): Promise<void> {
    const { ingest, resource } = this.#d;
    if (ingest?.isAvailable === true) {
      const { events, error } = await ingest.lines(resource, lines);
      for (const event of events) onEvent(event);
      if (error !== undefined) throw error;
      return;
    }
    decodeWatchLines(lines, this.#id, (event) => onEvent(eventOf(resource, event, false)));
  }

  /** Deletes the held keys this resource owns that the last list did not produce. */
  #deleteUnseen(seen: ReadonlySet<string>): void {
    const r = this.#d.resource;
    for (const kind of r.kinds) {
      const stale: string[] = [];
      for (const key of this.#d.sink.keysOfKind(kind)) {
        if (!seen.has(key) && r.keyPrefixes.some((p) => key.startsWith(p))) stale.push(key);
      }
      for (const key of stale) this.#d.sink.delete(key);
    }
  }

  /** Applies one converted object (list item, or watch event): upsert, delete, or count it as invalid. */
  #apply(outcome: ObjectOutcome, seen?: Set<string>): void {
    switch (outcome.t) {
      case "upsert":
        seen?.add(outcome.key);
        this.#d.sink.upsert(outcome.key, outcome.value);
        return;
      case "prepared":
        seen?.add(outcome.key);
        this.#d.sink.upsertPrepared(outcome.key, outcome.prepared);
        return;
      case "invalid":
        this.#invalid(outcome.name, outcome.namespace, outcome.err);
        return;
      case "delete":
        if (outcome.key !== null) this.#d.sink.delete(outcome.key);
        if (outcome.rejected !== undefined) {
          // Calico refuses such an object (a malformed annotation): the operator must fix it, so warn.
          this.#d.metrics.invalidObjects.inc({ kind: this.#kind });
          this.#log.warn(
            {
              name: outcome.name,
              namespace: outcome.namespace,
              code: outcome.rejected.code,
              reason: outcome.rejected.reason,
            },
            "upstream object rejected, as Calico rejects it",
          );
        }
    }
  }

  #invalid(name: string | undefined, namespace: string | undefined, err: unknown): void {
    this.#d.metrics.invalidObjects.inc({ kind: this.#kind });
    this.#log.debug({ name, namespace, err }, "upstream object not converted");
  }

  async #watch(fromRv: string): Promise<WatchEnd> {
    const { options, signal } = this.#d;
    const { controller, dispose } = linkedController(signal);
    const startedMs = this.#d.clock();
    let watchdog: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (watchdog !== undefined) clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        controller.abort(
          new DatastoreWatchdogError(`watch saw nothing for ${options.watchdogMs} ms`, {
            resource: this.#id,
          }),
        );
      }, options.watchdogMs);
    };
    const t = options.watchTimeoutSeconds;
    const query = {
      watch: "1",
      resourceVersion: fromRv,
      allowWatchBookmarks: "true",
      timeoutSeconds: String(t + Math.floor(this.#d.random() * t)),
    };
    let sawEvents = false;
    let isOpen = false;
    let batches: LineBatches | undefined;
    arm();
    try {
      const res = await this.#d.http.watch(this.#path(this.#version), query, controller.signal, this.#id);
      isOpen = true;
      this.#d.onWatch(1);
      this.#d.tracker.healthy(this.#d.resource, "established");
      const framer = new WatchLineFramer(this.#id, options.maxEventBytes);
      const onEvent = (event: IngestEvent): void => {
        sawEvents = true;
        this.#event(event);
      };
      batches = new LineBatches(
        (lines) => this.#lines(lines, onEvent),
        WATCH_QUEUE_BYTES,
        // Ends the read at once (the catch below throws the failure), as the finally's destroy would.
        () => res.destroy(),
      );
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          arm();
          this.#activity();
          const { lines, error } = framer.push(chunk);
          if (lines !== undefined) await batches.push(lines);
          if (error !== undefined) {
            await batches.drain();
            throw error;
          }
        }
        const last = framer.end();
        if (last !== undefined) await batches.push(last);
        await batches.drain();
      } finally {
        if (!res.complete) res.destroy();
      }
      return { sawEvents, durationMs: this.#d.clock() - startedMs };
    } catch (err) {
      // The stream broke (or the watchdog cut it) with a batch in the worker: it is applied before the
      // loop goes on to relist, so no event of this watch lands after the next list.
      await batches?.stop();
      if (batches?.failure !== undefined) throw batches.failure.err;
      if (controller.signal.aborted && controller.signal.reason instanceof DatastoreError) {
        throw controller.signal.reason;
      }
      if (err instanceof DatastoreError) throw err;
      throw new DatastoreWatchError(`watch broke off: ${err instanceof Error ? err.message : String(err)}`, {
        resource: this.#id,
        cause: err,
      });
    } finally {
      if (watchdog !== undefined) clearTimeout(watchdog);
      if (isOpen) this.#d.onWatch(-1);
      dispose();
    }
  }

  /** Applies one watch event and moves the resourceVersion to its. Throws on ERROR events. */
  #event(event: IngestEvent): void {
    const type = event.type.toLowerCase() as EventType;
    this.#d.metrics.events.inc({ kind: this.#kind, type });
    if (event.type === "ERROR") {
      const code = event.status?.code;
      const message = `watch ERROR event: ${event.status?.message ?? "no message"}`;
      if (code === 410) throw new DatastoreGoneError(message, { resource: this.#id, status: 410 });
      throw new DatastoreWatchError(
        message,
        code === undefined ? { resource: this.#id } : { resource: this.#id, status: code },
      );
    }
    this.#d.tracker.healthy(this.#d.resource, "data");
    this.#goneStreak = 0;
    this.#recovered();
    if (event.outcome !== undefined) this.#apply(event.outcome);
    if (event.rv !== undefined && event.rv !== "") this.#rv = event.rv;
  }
}

/**
 * A watch's complete lines on their way to the ingest worker, one batch in flight at a time. The stream
 * keeps being read while a batch is converted: what arrives meanwhile goes out as the next batch, in
 * order, so batches grow with the load instead of the stream waiting one thread round trip per chunk.
 * Bounded: past `maxQueuedBytes` waiting (at least one event's worth) the reader waits for the batch in
 * flight, and the socket pushes back upstream as before. The first failure (an ERROR event, a decode
 * error) stops the batching, is kept in `failure`, and goes to `onFailure` at once, since the stream may
 * stay quiet for long.
 */
export class LineBatches {
  readonly #apply: (lines: Buffer) => Promise<void>;
  readonly #maxQueuedBytes: number;
  readonly #onFailure: (err: unknown) => void;
  #queued: Buffer[] = [];
  #queuedBytes = 0;
  #inFlight: Promise<void> | undefined;
  #failure: { readonly err: unknown } | undefined;

  constructor(
    apply: (lines: Buffer) => Promise<void>,
    maxQueuedBytes: number,
    onFailure: (err: unknown) => void,
  ) {
    this.#apply = apply;
    this.#maxQueuedBytes = maxQueuedBytes;
    this.#onFailure = onFailure;
  }

  /** Queues whole lines; waits only while the queue is over its bound. Throws the batching's failure. */
  async push(lines: Buffer): Promise<void> {
    this.#throwIfFailed();
    this.#queued.push(lines);
    this.#queuedBytes += lines.length;
    this.#inFlight ??= this.#pump();
    if (this.#queuedBytes >= this.#maxQueuedBytes) await this.#inFlight;
    this.#throwIfFailed();
  }

  /** Waits until every queued line is applied. Throws the batching's failure. */
  async drain(): Promise<void> {
    while (this.#inFlight !== undefined) await this.#inFlight;
    this.#throwIfFailed();
  }

  /** Drops what waits and lets the batch in flight finish (its failure, if any, goes to `failure`). */
  async stop(): Promise<void> {
    this.#queued = [];
    this.#queuedBytes = 0;
    while (this.#inFlight !== undefined) await this.#inFlight;
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queued.length > 0 && this.#failure === undefined) {
        const batch =
          this.#queued.length === 1 ? this.#queued[0]! : Buffer.concat(this.#queued, this.#queuedBytes);
        this.#queued = [];
        this.#queuedBytes = 0;
        await this.#apply(batch);
      }
    } catch (err) {
      this.#failure = { err };
      this.#queued = [];
      this.#queuedBytes = 0;
      this.#onFailure(err);
    } finally {
      this.#inFlight = undefined;
    }
  }

  /** The first failure of a batch, once there was one. */
  get failure(): { readonly err: unknown } | undefined {
    return this.#failure;
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure.err;
  }
}
