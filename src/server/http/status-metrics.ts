import { Gauge } from "prom-client";
import type { Registry } from "prom-client";
import { VIEW_NAMES } from "../../../proto/messages.js";
import type { SyncState, ViewName } from "../../../proto/messages.js";

const SYNC_STATES: readonly SyncState[] = ["syncing", "in-sync", "stale"];

/** What the status gauges read at scrape time (the same numbers /status shows). */
export interface StatusMetricSources {
  readonly isReady: () => boolean;
  readonly viewStates: () => Readonly<Record<ViewName, SyncState>>;
  /** p99 of how long live sessions have been lagging, in ms (0 when every session is in step). */
  readonly lagP99Ms: () => number;
  /** Ready replicas of this server's Service, this one included (the replica directory). Optional. */
  readonly readyReplicas?: () => number;
}

/**
 * Gauges for alerting on what /readyz and /status say: readiness, each view's sync state (one series per
 * view and state, 1 for the current one, as kube-state-metrics does), and the p99 session lag. All are
 * computed when Prometheus scrapes, so they cost nothing between scrapes.
 */
export function registerStatusMetrics(registry: Registry, sources: StatusMetricSources): void {
  const registers = [registry];
  const ready: Gauge = new Gauge({
    name: "tabby_ready",
    help: "1 when /readyz answers 200 (every view in sync, no kind stale, not draining), else 0.",
    registers,
    collect: () => ready.set(sources.isReady() ? 1 : 0),
  });
  const viewState: Gauge<"view" | "state"> = new Gauge({
    name: "tabby_view_state",
    help: "1 for the view's current sync state (syncing, in-sync, stale), 0 for the others.",
    labelNames: ["view", "state"] as const,
    registers,
    collect: () => {
      const states = sources.viewStates();
      for (const view of VIEW_NAMES) {
        const current = states[view];
        for (const state of SYNC_STATES) viewState.set({ view, state }, state === current ? 1 : 0);
      }
    },
  });
  const lag: Gauge = new Gauge({
    name: "tabby_session_lag_p99_seconds",
    help: "p99 over live sessions of how long each has been lagging behind the head (0 when in step).",
    registers,
    collect: () => lag.set(sources.lagP99Ms() / 1000),
  });
  const readyReplicas = sources.readyReplicas;
  if (readyReplicas !== undefined) {
    const replicas: Gauge = new Gauge({
      name: "tabby_replicas_ready",
      help: "Ready replicas of this server's Service, this one included (EndpointSlices or --peers).",
      registers,
      collect: () => replicas.set(readyReplicas()),
    });
  }
}
