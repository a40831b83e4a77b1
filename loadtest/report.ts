import type { LatencySummary, PercentilePoint } from "./histogram.js";
import type { ScenarioName } from "./options.js";

/** Version of report.json's schema (docs/LOADTEST.md). Bumped only when a field changes meaning or goes. */
export const REPORT_SCHEMA_VERSION = 1;

/** Percentiles in ms; null when no latency was recorded (no churn in the scenario). */
export interface LatencyMs {
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  readonly max: number | null;
  /** Latencies recorded (stamped updates received by agents in sync). */
  readonly count: number;
}

/** What the agents' client libraries counted in the scenario's window. */
export interface AgentCounters {
  readonly updates: number;
  /** Frame payloads. */
  readonly bytes: number;
  /** Bytes read from the sockets: payloads, WebSocket frame headers, control frames, upgrade responses. */
  readonly wireBytes: number;
  readonly frames: number;
  readonly deltas: number;
  readonly snapshots: number;
  /** Payload bytes of the snapshot frames received. */
  readonly snapshotBytes: number;
  /** snap-chunk frames received. */
  readonly snapshotChunks: number;
  readonly resumes: number;
  /** `move` messages received (each moves one session). */
  readonly moves: number;
  readonly reconnects: number;
  readonly errors: number;
}

/** One scenario run: the stable fields of report.json (see docs/LOADTEST.md) and scenario details. */
export interface ScenarioResult {
  readonly scenario: ScenarioName;
  /** Unique within a report: the scenario, with the churn rate for churn runs (`churn-1000`). */
  readonly name: string;
  readonly agents: number;
  readonly nodes: number;
  /** Entries of the felix view for the seeded cluster: what each felix agent mirrors. */
  readonly resources: number;
  /** The churn rate asked of the simulator (0: none). */
  readonly churnPerSecond: number;
  /** The churn rate the simulator achieved. */
  readonly achievedChurnPerSecond: number;
  /** Length of the measured window (churn, or the storm until in sync). */
  readonly durationSeconds: number;
  /** True only if every sampled full mirror matched the simulator's state (baseline: every watch held). */
  readonly verified: boolean;
  /** Entries missing, extra or at another resourceVersion, over all sampled mirrors. */
  readonly mismatches: number;
  /** The first few mismatches, as text. */
  readonly mismatchSamples: readonly string[];
  /** Seconds until every agent was in sync: after connecting all at once, and after the server restarted. */
  readonly inSyncSeconds: { readonly connectStorm: number | null; readonly reconnectStorm: number | null };
  /** From the simulator's change stamp to the agent's update event. */
  readonly latencyMs: LatencyMs;
  /** Updates delivered to agents per second, summed over agents. */
  readonly deliveredPerSecond: number;
  /** Bytes the server sent to agents (what the agents received), and per second. */
  readonly bytesSent: number;
  readonly bytesSentPerSecond: number;
  /**
   * The tabby server process (null in the baseline, which has none): the largest RSS from the start of
   * the window until the agents had caught up (verification), and CPU per second over the window.
   */
  readonly serverRssBytesMax: number | null;
  readonly serverCpuSecondsPerSecond: number | null;
  /**
   * Bytes the agents read from their sockets (payloads, WebSocket frame headers, pings, status frames)
   * per update delivered, per agent: over the felix agents that decode changes, from the start of the
   * window until they had caught up. Churn scenarios (churn, slow-agents, ceiling); null elsewhere.
   */
  readonly wireBytesPerChange: number | null;
  /**
   * The widest flush window the server used (ms): `/status` `flushWindowMsMax` at the end of the window
   * (`details.flushWindowMsSource` "status"), or the configured window when the server does not report
   * it ("configured"). Null without a tabby server.
   */
  readonly flushWindowMsMax: number | null;
  /** reconnect-storm: from the restarted server's process start until every upstream kind was listed. */
  readonly relistSeconds: number | null;
  /**
   * The churn scenario the ceiling mirrors, and the ceiling itself: tabby's deliveredPerSecond ÷ the
   * ceiling's. Null elsewhere (or without a ceiling run).
   */
  readonly ceilingRatio: number | null;
  /** The API server (the simulator process). */
  readonly apiServerRssBytesMax: number;
  readonly apiServerCpuSecondsPerSecond: number;
  /** All agent worker processes together (they share the machine with the server). */
  readonly agentsCpuSecondsPerSecond: number;
  /** Watches held open on the API side: tabby's upstream watches, or the baseline agents' watches. */
  readonly upstreamWatches: number;
  /** Open watches the simulator counted at the end of the window (everyone's). */
  readonly apiServerWatches: number;
  readonly agentCounters: AgentCounters;
  /** Percentile distribution of the latencies, for the chart. */
  readonly latencyCurve: readonly PercentilePoint[];
  /** Window, epoch ms. */
  readonly startedAtMs: number;
  readonly endedAtMs: number;
  /** Scenario-specific figures (see docs/LOADTEST.md). */
  readonly details: Readonly<Record<string, unknown>>;
}

export interface TargetCheck {
  readonly name: string;
  readonly target: string;
  readonly value: string;
  /** null: not measured in this run. */
  readonly isMet: boolean | null;
}

export interface MachineInfo {
  readonly nproc: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly platform: string;
  readonly memTotalBytes: number;
  /** 1-minute load average at the start and end of the run (other work on the machine shows here). */
  readonly loadAverage: { readonly start: number; readonly end: number };
}

export interface LoadtestReport {
  readonly schemaVersion: number;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly command: string;
  readonly machine: MachineInfo;
  /**
   * How the server ran: "compiled" (dist/, as in production) or "tsx" (from source; tsx's loader adds
   * well over 100 MB of RSS to the process, so memory figures are not representative).
   */
  readonly serverRuntime: "compiled" | "tsx" | null;
  readonly options: Readonly<Record<string, unknown>>;
  /** True only if every scenario verified. */
  readonly verified: boolean;
  readonly scenarios: readonly ScenarioResult[];
  readonly targets: readonly TargetCheck[];
  /** Highest churn rate run whose p99 stayed within 250 ms (and that the simulator achieved within 10%). */
  readonly maxChurnWithinP99_250ms: number | null;
  /** Progress polls an agent worker was too busy to answer in time: a sign the machine was overloaded. */
  readonly progressPollsMissed: number;
  /** Files written next to report.json, and CPU profiles. */
  readonly files: readonly string[];
  /** Set when the run stopped early. */
  readonly error?: string;
}

export function latencyMs(s: LatencySummary): LatencyMs {
  return { p50: s.p50, p90: s.p90, p99: s.p99, max: s.max, count: s.count };
}

const MB = 1024 * 1024;

/** The issue's targets (1000 agents, 1000 nodes x 30 pods, this machine), checked against a report. */
export function checkTargets(scenarios: readonly ScenarioResult[], upstreamResources: number): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const connect = scenarios.find((s) => s.scenario === "connect-storm");
  const storm = connect?.inSyncSeconds.connectStorm ?? null;
  checks.push({
    name: "connect storm in sync",
    target: "<= 10 s",
    value: storm === null ? "not measured" : `${storm.toFixed(2)} s`,
    isMet: storm === null ? null : storm <= 10,
  });
  const at1000 = scenarios.find((s) => s.scenario === "churn" && s.churnPerSecond === 1000);
  const p99 = at1000?.latencyMs.p99 ?? null;
  checks.push({
    name: "p99 latency at 1000 changes/s",
    target: "<= 100 ms",
    value: p99 === null ? "not measured" : `${p99} ms`,
    isMet: p99 === null ? null : p99 <= 100,
  });
  const tabby = scenarios.filter((s) => s.serverRssBytesMax !== null);
  const rss = tabby.length === 0 ? null : Math.max(...tabby.map((s) => s.serverRssBytesMax ?? 0));
  checks.push({
    name: "server RSS",
    target: "<= 300 MB",
    value: rss === null ? "not measured" : `${(rss / MB).toFixed(1)} MB`,
    isMet: rss === null ? null : rss <= 300 * MB,
  });
  // Judged on the server's heap + external memory (what it holds); RSS also keeps what the allocator
  // has not returned after the storm's transient buffers, so it is shown next to it.
  const idle = connect?.details.idleHeapAndExternalBytesPerConnection;
  const idleRss = connect?.details.idleBytesPerConnection;
  checks.push({
    name: "idle memory per connection",
    target: "<= 40 KB",
    value:
      typeof idle === "number"
        ? `${(idle / 1024).toFixed(1)} KB heap+external` +
          (typeof idleRss === "number" ? ` (${(idleRss / 1024).toFixed(1)} KB by RSS)` : "")
        : "not measured",
    isMet: typeof idle === "number" ? idle <= 40 * 1024 : null,
  });
  const watches = tabby.map((s) => s.upstreamWatches);
  checks.push({
    name: "upstream watches independent of agents",
    target: `<= ${upstreamResources} (one per upstream resource)`,
    value:
      watches.length === 0 ? "not measured" : `${Math.max(...watches)} for ${tabby[0]?.agents ?? 0} agents`,
    isMet: watches.length === 0 ? null : Math.max(...watches) <= upstreamResources,
  });
  checks.push(...checkIssue8Targets(scenarios));
  checks.push(...checkIssue9Targets(scenarios));
  return checks;
}

function atMost(
  name: string,
  value: number | null | undefined,
  limit: number,
  unit: string,
  show: (v: number) => string = (v) => `${v} ${unit}`,
): TargetCheck {
  const isMeasured = typeof value === "number" && Number.isFinite(value);
  return {
    name,
    target: `<= ${show(limit)}`,
    value: isMeasured ? show(value) : "not measured",
    isMet: isMeasured ? value <= limit : null,
  };
}

/** Issue 8's targets (fewer bytes per change, graceful overload, fast reconnect storms, memory, ceiling). */
function checkIssue8Targets(scenarios: readonly ScenarioResult[]): TargetCheck[] {
  const churnAt = (rate: number): ScenarioResult | undefined =>
    scenarios.find((s) => s.scenario === "churn" && s.churnPerSecond === rate);
  const reconnect = scenarios.find((s) => s.scenario === "reconnect-storm");
  const connect = scenarios.find((s) => s.scenario === "connect-storm");
  const steady = scenarios.filter(
    (s) => (s.scenario === "churn" && s.churnPerSecond <= 2000) || s.scenario === "slow-agents",
  );
  const steadyRss = steady.flatMap((s) => (s.serverRssBytesMax === null ? [] : [s.serverRssBytesMax]));
  const mb = (v: number): string => `${(v / MB).toFixed(1)} MB`;
  return [
    atMost("wire bytes per change at 1000 changes/s", churnAt(1000)?.wireBytesPerChange, 200, "B"),
    atMost("wire bytes per change at 100 changes/s", churnAt(100)?.wireBytesPerChange, 400, "B"),
    atMost("p99 latency at 2000 changes/s", churnAt(2000)?.latencyMs.p99, 250, "ms"),
    atMost("p99 latency at 5000 changes/s (overload)", churnAt(5000)?.latencyMs.p99, 2000, "ms"),
    atMost("reconnect storm in sync, relist included", reconnect?.inSyncSeconds.reconnectStorm, 15, "s"),
    atMost("connect storm in sync (issue 8)", connect?.inSyncSeconds.connectStorm, 5, "s"),
    atMost(
      "server RSS in steady churn (up to 2000/s)",
      steadyRss.length === 0 ? null : Math.max(...steadyRss),
      200 * MB,
      "B",
      mb,
    ),
    atMost("server RSS at the reconnect storm's peak", reconnect?.serverRssBytesMax, 350 * MB, "B", mb),
    {
      name: "ceiling ratio at 1000 changes/s",
      target: ">= 0.7",
      value:
        typeof churnAt(1000)?.ceilingRatio === "number"
          ? String(churnAt(1000)?.ceilingRatio)
          : "not measured",
      isMet:
        typeof churnAt(1000)?.ceilingRatio === "number" ? (churnAt(1000)?.ceilingRatio ?? 0) >= 0.7 : null,
    },
  ];
}

function detail(s: ScenarioResult | undefined, key: string): number | null {
  const v = s?.details[key];
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Issue 9's targets (replicas: scale-out balance, a rolling restart without churn for the agents). */
function checkIssue9Targets(scenarios: readonly ScenarioResult[]): TargetCheck[] {
  const out = scenarios.find((s) => s.scenario === "scale-out");
  const roll = scenarios.find((s) => s.scenario === "rolling-restart");
  const rebalance = detail(out, "rebalanceSeconds");
  const twice = detail(out, "agentsMovedTwice");
  const spurious = detail(roll, "spuriousUpdates");
  return [
    atMost(
      "scale-out: max sessions over the mean at the end",
      detail(out, "maxOverMeanConnections"),
      1.1,
      "",
    ),
    atMost("scale-out: rebalanced (every replica within 10% of the mean)", rebalance, 60, "s"),
    atMost("scale-out: agents moved twice", twice, 0, ""),
    atMost("rolling restart: spurious updates", spurious, 0, ""),
    {
      name: "rolling restart verified",
      target: "yes",
      value: roll === undefined ? "not measured" : roll.verified ? "yes" : "no",
      isMet: roll === undefined ? null : roll.verified,
    },
    atMost(
      "rolling restart: snapshot bytes, share of one full snapshot per agent",
      detail(roll, "snapshotBytesShare"),
      0.05,
      "",
    ),
    atMost("rolling restart: p99 latency", roll?.latencyMs.p99, 500, "ms"),
  ];
}

/** The highest churn rate run with p99 <= 250 ms that the simulator achieved within 10%. */
export function maxChurnWithinP99(scenarios: readonly ScenarioResult[], limitMs = 250): number | null {
  let best: number | null = null;
  for (const s of scenarios) {
    if (s.scenario !== "churn" || s.latencyMs.p99 === null || s.latencyMs.p99 > limitMs) continue;
    if (s.achievedChurnPerSecond < 0.9 * s.churnPerSecond) continue;
    if (best === null || s.churnPerSecond > best) best = s.churnPerSecond;
  }
  return best;
}
