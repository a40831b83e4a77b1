import { setMaxListeners } from "node:events";
import type { KubeConfig } from "../kube-config.js";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { UpstreamSink } from "../../snapshot/sink.js";
import type { KindState } from "../../snapshot/sync-state.js";
import { IngestWorker } from "./ingest-worker.js";
import { KubeHttp } from "./kube-http.js";
import { datastoreMetrics } from "./metrics.js";
import type { DatastoreMetrics, MetricsSource } from "./metrics.js";
import { isCalicoKind } from "../../snapshot/kinds.js";
import { resourcesForKinds, staticEntries } from "./registry.js";
import type { ConvertOptions } from "./registry.js";
import { ResourceLoop } from "./resource-loop.js";
import type { LoopOptions } from "./resource-loop.js";
import { SyncTracker } from "./sync-tracker.js";
import { sleep } from "./timing.js";
import type { Delay } from "./timing.js";
import type { UpstreamResource } from "./types.js";
import { UpstreamProbe } from "./upstream-probe.js";
import type { ProbeOptions } from "./upstream-probe.js";

export interface DatastoreOptions {
  /** List page size (`limit`). Default 500. */
  pageSize?: number;
  /** Server-side watch `timeoutSeconds`, jittered in [t, 2t). Default 300. */
  watchTimeoutSeconds?: number;
  /** Restart a watch that saw nothing, not even a bookmark, for this long (ms). Default 120000. */
  watchdogMs?: number;
  /** First retry delay after an error (ms), doubled per failure and jittered. Default 500. */
  backoffInitialMs?: number;
  /** Longest retry delay (ms). Default 30000. */
  backoffMaxMs?: number;
  /** A kind whose list/watch has been failing this long (ms) is "stale". Default 25000. */
  staleAfterMs?: number;
  /** How often a resource that is not installed (404) is checked again (ms). Default 180000. */
  missingCrdRecheckMs?: number;
  /** How core objects are converted and which Calico API group is read (see ConvertOptions). */
  convert?: ConvertOptions;
  /** Restrict to these Calico kinds (tests). Default: every kind of the registry. */
  kinds?: readonly string[];
  /** Deadline for one list page request, in ms. Default 60000. */
  requestTimeoutMs?: number;
  /** Largest list page body accepted, in bytes. Default 256 MiB. */
  maxListBytes?: number;
  /** Largest single watch event, in bytes. Default 16 MiB. */
  maxEventBytes?: number;
  /** A watch that ends cleanly sooner than this (ms) without any event is retried after a backoff. Default 1000. */
  minWatchMs?: number;
  /**
   * When a resource has heard nothing for this long (ms), probe the API server (one list with limit=1, per
   * server): a frozen server goes stale within staleAfterMs. Also the period between probes. Default 5000.
   */
  upstreamProbeMs?: number;
  /** A probe not answered within this (ms) is a failure. Default 5000. */
  upstreamProbeTimeoutMs?: number;
  /**
   * Decode and convert list pages and watch events (JSON.parse, Kubernetes → Calico, msgpack encode) in a
   * worker thread, so that the main thread only compares, stores and fans out. Default true.
   */
  ingestWorker?: boolean;
}

export interface DatastoreDeps {
  kubeConfig: KubeConfig;
  sink: UpstreamSink;
  logger: Logger;
  registry: Registry;
  options?: DatastoreOptions;
  clock?: () => number;
  /** Random source for jitter (tests). Default Math.random. */
  random?: () => number;
  /** Every wait of the list-watch loops and the probe (tests). Default an abortable setTimeout. */
  delay?: Delay;
  /** The ingest worker's thread module (tests). Default ingest-thread.js. */
  ingestWorkerEntry?: URL;
  /** Crashes after which the ingest worker is not restarted and the main thread ingests (tests). Default 3. */
  maxIngestWorkerCrashes?: number;
}

type NumericOption = {
  [K in keyof DatastoreOptions]-?: DatastoreOptions[K] extends number | undefined ? K : never;
}[keyof DatastoreOptions];

function positive(options: DatastoreOptions, name: NumericOption, fallback: number): number {
  const v = options[name] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new RangeError(`DatastoreOptions.${name} must be a positive number, got ${String(v)}`);
  }
  return v;
}

function resolveOptions(
  o: DatastoreOptions,
): LoopOptions & ProbeOptions & { staleAfterMs: number; requestTimeoutMs: number; maxListBytes: number } {
  const pageSize = positive(o, "pageSize", 500);
  if (!Number.isInteger(pageSize)) throw new RangeError("DatastoreOptions.pageSize must be an integer");
  const watchTimeoutSeconds = positive(o, "watchTimeoutSeconds", 300);
  if (!Number.isInteger(watchTimeoutSeconds)) {
    throw new RangeError("DatastoreOptions.watchTimeoutSeconds must be an integer");
  }
  return {
    pageSize,
    watchTimeoutSeconds,
    watchdogMs: positive(o, "watchdogMs", 120_000),
    backoffInitialMs: positive(o, "backoffInitialMs", 500),
    backoffMaxMs: positive(o, "backoffMaxMs", 30_000),
    staleAfterMs: positive(o, "staleAfterMs", 25_000),
    missingCrdRecheckMs: positive(o, "missingCrdRecheckMs", 180_000),
    requestTimeoutMs: positive(o, "requestTimeoutMs", 60_000),
    maxListBytes: positive(o, "maxListBytes", 256 * 1024 * 1024),
    maxEventBytes: positive(o, "maxEventBytes", 16 * 1024 * 1024),
    minWatchMs: positive(o, "minWatchMs", 1000),
    probeMs: positive(o, "upstreamProbeMs", 5000),
    probeTimeoutMs: positive(o, "upstreamProbeTimeoutMs", 5000),
  };
}

/**
 * The Kubernetes datastore: one supervised list-watch per upstream resource, converted to the Calico
 * model and written into the sink, with per-kind sync state. All requests share one keep-alive agent.
 */
export class Datastore {
  readonly #sink: UpstreamSink;
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #random: () => number;
  readonly #delay: Delay;
  readonly #options: ReturnType<typeof resolveOptions>;
  readonly #resources: readonly UpstreamResource[];
  readonly #http: KubeHttp;
  readonly #metrics: DatastoreMetrics;
  readonly #tracker: SyncTracker;
  /** Undefined when the ingest worker is off (DatastoreOptions.ingestWorker). */
  readonly #ingest: IngestWorker | undefined;
  readonly #abort = new AbortController();
  readonly #lastEventMs = new Map<string, number>();
  /** When each resource last heard from upstream, for the probe. */
  readonly #lastActivityMs = new Map<UpstreamResource, number>();
  #loops: Promise<void>[] = [];
  #openWatches = 0;
  #isStarted = false;
  #closing: Promise<void> | undefined;
  /** What the collect-time gauges read. */
  readonly #source: MetricsSource = {
    lastEventMs: () => this.#lastEventMs,
    isStale: (kind) => this.#tracker.isStale(kind),
    kinds: () => this.#tracker.kinds(),
    now: () => this.#clock(),
    openWatches: () => this.#openWatches,
  };

  constructor(deps: DatastoreDeps) {
    this.#sink = deps.sink;
    this.#logger = deps.logger;
    this.#clock = deps.clock ?? Date.now;
    this.#random = deps.random ?? Math.random;
    this.#delay = deps.delay ?? sleep;
    const options = deps.options ?? {};
    this.#options = resolveOptions(options);
    const unknown = (options.kinds ?? []).filter((k) => !isCalicoKind(k));
    if (unknown.length > 0)
      throw new RangeError(`DatastoreOptions.kinds: unknown kinds ${unknown.join(", ")}`);
    this.#resources = resourcesForKinds(options.kinds, options.convert);
    if (this.#resources.length === 0) {
      throw new RangeError(`DatastoreOptions.kinds matches no upstream resource: ${String(options.kinds)}`);
    }
    this.#http = new KubeHttp(deps.kubeConfig, {
      requestTimeoutMs: this.#options.requestTimeoutMs,
      maxListBytes: this.#options.maxListBytes,
    });
    this.#metrics = datastoreMetrics(deps.registry);
    this.#tracker = new SyncTracker({
      resources: this.#resources,
      sink: this.#sink,
      clock: this.#clock,
      staleAfterMs: this.#options.staleAfterMs,
    });
    if (options.ingestWorker !== undefined && typeof options.ingestWorker !== "boolean") {
      throw new TypeError(
        `DatastoreOptions.ingestWorker must be a boolean, got ${String(options.ingestWorker)}`,
      );
    }
    this.#ingest =
      options.ingestWorker === false
        ? undefined
        : new IngestWorker({
            data: { kinds: options.kinds, convert: options.convert },
            logger: deps.logger.child({ component: "ingest-worker" }),
            metrics: this.#metrics,
            ...(deps.ingestWorkerEntry !== undefined && { entry: deps.ingestWorkerEntry }),
            ...(deps.maxIngestWorkerCrashes !== undefined && { maxCrashes: deps.maxIngestWorkerCrashes }),
          });
    // Each loop holds at most a couple of listeners on the shared signal (a request, a sleep).
    setMaxListeners(this.#resources.length * 4 + 10, this.#abort.signal);
  }

  /** The resources this datastore lists and watches. */
  get resources(): readonly UpstreamResource[] {
    return this.#resources;
  }

  /** Open watch requests right now. */
  get upstreamWatches(): number {
    return this.#openWatches;
  }

  /** The ingest worker (undefined when off): crashes, availability. */
  get ingestWorker(): IngestWorker | undefined {
    return this.#ingest;
  }

  /** Sockets held by the shared agent (in use and idle). */
  socketCount(): number {
    return this.#http.socketCount();
  }

  /** Starts one supervised list-watch per upstream resource. Calling it again does nothing. */
  start(): void {
    if (this.#isStarted || this.#closing !== undefined) return;
    this.#isStarted = true;
    this.#metrics.addSource(this.#source);
    this.#tracker.start();
    this.#ingest?.start();
    // Calico's own values (no Kubernetes object backs them): written once, never deleted by a relist.
    for (const { key, value } of staticEntries(this.#resources)) this.#sink.upsert(key, value);
    this.#logger.info({ resources: this.#resources.length }, "datastore starting upstream list-watches");
    const startedMs = this.#clock();
    for (const resource of this.#resources) {
      const kind = resource.kinds[0] ?? resource.plural;
      this.#lastActivityMs.set(resource, startedMs);
      const loop = new ResourceLoop({
        resource,
        http: this.#http,
        sink: this.#sink,
        tracker: this.#tracker,
        metrics: this.#metrics,
        logger: this.#logger,
        clock: this.#clock,
        random: this.#random,
        delay: this.#delay,
        options: this.#options,
        signal: this.#abort.signal,
        ingest: this.#ingest,
        onActivity: () => {
          const now = this.#clock();
          this.#lastEventMs.set(kind, now);
          this.#lastActivityMs.set(resource, now);
        },
        onWatch: (delta) => {
          this.#openWatches += delta;
        },
      });
      this.#loops.push(
        loop.run().catch((err: unknown) => {
          // run() handles every error itself; reaching this is a bug, but must not be silent.
          this.#logger.error({ err, resource: resource.plural }, "datastore loop ended unexpectedly");
        }),
      );
    }
    const probe = new UpstreamProbe({
      http: this.#http,
      tracker: this.#tracker,
      metrics: this.#metrics,
      logger: this.#logger.child({ component: "upstream-probe" }),
      clock: this.#clock,
      delay: this.#delay,
      options: this.#options,
      signal: this.#abort.signal,
      lastActivityMs: () => this.#lastActivityMs,
    });
    this.#loops.push(
      probe.run().catch((err: unknown) => {
        this.#logger.error({ err }, "upstream probe ended unexpectedly");
      }),
    );
  }

  /** Aborts every request and ends the ingest worker; resolves when every loop has ended. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#abort.abort(new Error("datastore closed"));
      this.#tracker.close();
      // Before waiting for the loops: one may be waiting for the worker's answer.
      await this.#ingest?.close();
      await Promise.all(this.#loops);
      this.#loops = [];
      await this.#http.destroy();
      this.#metrics.removeSource(this.#source);
    })();
    return this.#closing;
  }

  /** The sync state of each Calico kind. */
  kindStates(): ReadonlyMap<string, KindState> {
    return this.#tracker.states();
  }
}
