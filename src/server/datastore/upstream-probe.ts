import type { Logger } from "pino";
import { DatastoreError, DatastoreProbeError } from "./errors.js";
import type { KubeHttp } from "./kube-http.js";
import type { DatastoreMetrics } from "./metrics.js";
import { resourceId, resourcePath } from "./registry.js";
import type { SyncTracker } from "./sync-tracker.js";
import { linkedController } from "./timing.js";
import type { Delay } from "./timing.js";
import type { UpstreamResource } from "./types.js";

export interface ProbeOptions {
  /** Probe when a resource has heard nothing for this long; also the period between probes (ms). */
  readonly probeMs: number;
  /** A probe not answered within this is a failure (ms). */
  readonly probeTimeoutMs: number;
}

export interface ProbeDeps {
  readonly http: KubeHttp;
  readonly tracker: SyncTracker;
  readonly metrics: DatastoreMetrics;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly delay: Delay;
  readonly options: ProbeOptions;
  readonly signal: AbortSignal;
  /** The resources and when each last heard from upstream (list page, event, bookmark). */
  readonly lastActivityMs: () => ReadonlyMap<UpstreamResource, number>;
}

/** The probe's outcome (the `result` label of tabby_upstream_probes_total). */
export type ProbeResult = "ok" | "error" | "timeout";

/** Between probes while the API server is failing: short, so its return is seen within a second or so. */
const FAILING_PERIOD_MS = 1000;

/**
 * Detects a frozen API server (process stopped, sockets open), which no watch notices: a silent watch
 * looks the same as a quiet cluster. When some resource has been quiet for probeMs, one cheap request
 * (a list of the quietest resource with limit=1) goes to the API server: per server, not per kind. Any
 * HTTP answer below 500 proves it alive; no answer within probeTimeoutMs, a network error or a 5xx has
 * every kind go stale once the server has been silent for staleAfterMs (counted from the last thing heard),
 * and the first answer after brings them back. While failing it probes every second.
 */
export class UpstreamProbe {
  readonly #d: ProbeDeps;
  /** The last time the API server was known to answer: a probe, or any resource's activity. */
  #lastAliveMs: number;

  constructor(deps: ProbeDeps) {
    this.#d = deps;
    this.#lastAliveMs = deps.clock();
  }

  async run(): Promise<void> {
    const { signal, options } = this.#d;
    while (!signal.aborted) {
      const isFailing = this.#d.tracker.isUpstreamFailing;
      await this.#d.delay(isFailing ? Math.min(FAILING_PERIOD_MS, options.probeMs) : options.probeMs, signal);
      if (signal.aborted) break;
      const quiet = this.#quietest();
      const now = this.#d.clock();
      if (quiet === undefined) continue;
      this.#lastAliveMs = Math.max(this.#lastAliveMs, quiet.newestMs);
      if (!this.#d.tracker.isUpstreamFailing && now - quiet.oldestMs < options.probeMs) continue;
      await this.probeOnce(quiet.resource);
    }
  }

  /** One probe of `resource`; updates the tracker and the metric. */
  async probeOnce(resource: UpstreamResource): Promise<ProbeResult> {
    const { controller, dispose } = linkedController(this.#d.signal);
    const timeout = new DatastoreProbeError(
      `the API server did not answer a probe within ${this.#d.options.probeTimeoutMs} ms`,
      { resource: resourceId(resource) },
    );
    const timer = setTimeout(() => controller.abort(timeout), this.#d.options.probeTimeoutMs);
    let result: ProbeResult;
    let failure: unknown;
    try {
      await this.#d.http.list(
        resourcePath(resource, resource.versions[0] ?? "v1"),
        { limit: "1" },
        controller.signal,
        resourceId(resource),
      );
      result = "ok";
    } catch (err) {
      if (this.#d.signal.aborted) return "error";
      const status = err instanceof DatastoreError ? err.status : undefined;
      if (status !== undefined && status > 0 && status < 500) {
        result = "ok"; // 404, 403, 429, 410: an answer is a live server
      } else {
        result = controller.signal.reason === timeout ? "timeout" : "error";
        failure = err;
      }
    } finally {
      clearTimeout(timer);
      dispose();
    }
    this.#d.metrics.probes.inc({ result });
    if (result === "ok") {
      if (this.#d.tracker.isUpstreamFailing) this.#d.logger.info("the API server answers probes again");
      this.#lastAliveMs = this.#d.clock();
      this.#d.tracker.upstreamHealthy();
    } else {
      if (!this.#d.tracker.isUpstreamFailing) {
        this.#d.logger.warn({ err: failure, result }, "the API server does not answer probes");
      }
      const code = failure instanceof DatastoreError ? failure.code : "ERR_DATASTORE_PROBE";
      const message = failure instanceof Error ? failure.message : String(failure);
      this.#d.tracker.upstreamFailing(`${code}: ${message}`, this.#lastAliveMs);
    }
    return result;
  }

  #quietest(): { resource: UpstreamResource; oldestMs: number; newestMs: number } | undefined {
    let quiet: UpstreamResource | undefined;
    let oldestMs = Number.POSITIVE_INFINITY;
    let newestMs = Number.NEGATIVE_INFINITY;
    for (const [resource, at] of this.#d.lastActivityMs()) {
      if (at < oldestMs) {
        oldestMs = at;
        quiet = resource;
      }
      newestMs = Math.max(newestMs, at);
    }
    return quiet === undefined ? undefined : { resource: quiet, oldestMs, newestMs };
  }
}
