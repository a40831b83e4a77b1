import { Counter, Gauge } from "prom-client";
import type { Registry } from "prom-client";

/** Why a watch was restarted (the `reason` label; a bounded set). */
export type RestartReason = "closed" | "error" | "gone" | "watchdog" | "decode" | "missing" | "ingest-worker";

/** Watch event types as counted (the `type` label). */
export type EventType = "added" | "modified" | "deleted" | "bookmark" | "error";

/** What one Datastore reports to the collect-time gauges. */
export interface MetricsSource {
  /** Epoch ms of the last thing heard from upstream, per kind (list page, event, bookmark). */
  lastEventMs(): ReadonlyMap<string, number>;
  isStale(kind: string): boolean;
  kinds(): Iterable<string>;
  openWatches(): number;
  now(): number;
}

/** The datastore's metrics. Created once per Registry and shared by every Datastore using it. */
export class DatastoreMetrics {
  readonly restarts: Counter<"kind" | "reason">;
  readonly relists: Counter<"kind">;
  readonly gone: Counter<"kind">;
  readonly events: Counter<"kind" | "type">;
  readonly invalidObjects: Counter<"kind">;
  readonly probes: Counter<"result">;
  readonly ingestWorkerCrashes: Counter;
  readonly #sources = new Set<MetricsSource>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.restarts = new Counter({
      name: "tabby_upstream_watch_restarts_total",
      help: "Upstream watches restarted, by Calico kind and reason (closed, error, gone, watchdog, decode, missing, ingest-worker).",
      labelNames: ["kind", "reason"],
      registers,
    });
    this.relists = new Counter({
      name: "tabby_upstream_relists_total",
      help: "Full lists of an upstream resource after the first, by Calico kind.",
      labelNames: ["kind"],
      registers,
    });
    this.gone = new Counter({
      name: "tabby_upstream_gone_total",
      help: "410 Gone answers (HTTP status or in-stream ERROR event), by Calico kind.",
      labelNames: ["kind"],
      registers,
    });
    this.events = new Counter({
      name: "tabby_upstream_events_total",
      help: "Upstream watch events, by Calico kind and type (added, modified, deleted, bookmark, error).",
      labelNames: ["kind", "type"],
      registers,
    });
    this.invalidObjects = new Counter({
      name: "tabby_upstream_invalid_objects_total",
      help: "Upstream objects that could not be converted (no name, or the converter failed), by Calico kind.",
      labelNames: ["kind"],
      registers,
    });
    this.probes = new Counter({
      name: "tabby_upstream_probes_total",
      help: "Probes of a quiet API server (a list with limit=1), by result (ok, error, timeout).",
      labelNames: ["result"],
      registers,
    });
    this.ingestWorkerCrashes = new Counter({
      name: "tabby_upstream_ingest_worker_crashes_total",
      help: "Crashes of the ingest worker thread (decode and convert off the main thread); the kinds it was working for relist.",
      registers,
    });
    const sources = this.#sources;
    new Gauge({
      name: "tabby_upstream_last_event_age_seconds",
      help: "Seconds since the last list page, watch event or bookmark of a Calico kind.",
      labelNames: ["kind"],
      registers,
      collect() {
        this.reset();
        const youngest = new Map<string, number>();
        for (const s of sources) {
          const now = s.now();
          for (const [kind, at] of s.lastEventMs()) {
            const age = Math.max(0, (now - at) / 1000);
            youngest.set(kind, Math.min(age, youngest.get(kind) ?? Number.POSITIVE_INFINITY));
          }
        }
        for (const [kind, age] of youngest) this.set({ kind }, age);
      },
    });
    new Gauge({
      name: "tabby_upstream_stale",
      help: "1 when a Calico kind's upstream list/watch has been failing for staleAfterMs, else 0.",
      labelNames: ["kind"],
      registers,
      collect() {
        this.reset();
        const stale = new Map<string, boolean>();
        for (const s of sources) {
          for (const kind of s.kinds()) stale.set(kind, (stale.get(kind) ?? false) || s.isStale(kind));
        }
        for (const [kind, isStale] of stale) this.set({ kind }, isStale ? 1 : 0);
      },
    });
    new Gauge({
      name: "tabby_upstream_watches",
      help: "Upstream watch requests open right now.",
      registers,
      collect() {
        let open = 0;
        for (const s of sources) open += s.openWatches();
        this.set(open);
      },
    });
  }

  addSource(source: MetricsSource): void {
    this.#sources.add(source);
  }

  removeSource(source: MetricsSource): void {
    this.#sources.delete(source);
  }
}

const BY_REGISTRY = new WeakMap<Registry, DatastoreMetrics>();

/** The datastore metrics of a registry, created on first use. */
export function datastoreMetrics(registry: Registry): DatastoreMetrics {
  let m = BY_REGISTRY.get(registry);
  if (m === undefined) {
    m = new DatastoreMetrics(registry);
    BY_REGISTRY.set(registry, m);
  }
  return m;
}
