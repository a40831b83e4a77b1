/** The load test's options: what the flags of `tabby loadtest` map to, validated, with their defaults. */
import { SERVE_NODE_OPTIONS } from "../src/cli/node-flags.js";

export const SCENARIOS = [
  "connect-storm",
  "churn",
  "slow-agents",
  "reconnect-storm",
  "ceiling",
  "baseline",
  "scale-out",
  "rolling-restart",
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** Scenarios that need several replicas (--replicas 2 or more): left out with one replica. */
export const REPLICA_SCENARIOS: ReadonlySet<ScenarioName> = new Set(["scale-out", "rolling-restart"]);
/** Scenarios of one server (they kill, freeze or replace "the" server): left out with several replicas. */
export const SINGLE_SERVER_SCENARIOS: ReadonlySet<ScenarioName> = new Set([
  "slow-agents",
  "reconnect-storm",
  "ceiling",
]);

export interface LoadtestOptions {
  /** Simulated nodes. Default 1000. */
  readonly nodes: number;
  /** Pods per node (one of them host-network). Default 30. */
  readonly podsPerNode: number;
  /** Agent connections (TabbyClient instances). Default 1000. */
  readonly agents: number;
  /** Churn rates of the steady-churn scenario, changes per second, run one after the other. Default 100, 1000, 5000. */
  readonly churnRates: readonly number[];
  /** Churn rate of the slow-agents and reconnect-storm scenarios; default: the `churnRates` rate closest to 1000. */
  readonly referenceChurn: number | undefined;
  /** Seconds of churn per measured scenario (each churn rate, slow agents, reconnect storm, baseline). Default 30. */
  readonly durationSeconds: number;
  /**
   * Agent worker processes (slow agents get one more). Default 8: on two cores, 8 workers of ~125 agents
   * kept up with more churn than 4 (p99 129 vs 1612 ms at 500/s) or 2 (1009 ms at 400/s).
   */
  readonly workers: number;
  /** Scenarios to run, in the order of SCENARIOS. The connect storm always runs when any tabby scenario does. */
  readonly scenarios: readonly ScenarioName[];
  /** Results folder (created). Default `results/<timestamp>`. */
  readonly outDir: string;
  /** Run the server with --cpu-prof; profiles land in `<outDir>/profiles`. */
  readonly isCpuProfiled: boolean;
  /** Run the agent workers with --cpu-prof too (profiles in `<outDir>/profiles`). */
  readonly isAgentCpuProfiled: boolean;
  /** Keep every server's log: `<outDir>/logs/replica-<slot>.log` (appended across restarts). */
  readonly isServerLogged: boolean;
  /** Agents that keep a full mirror and are verified against the simulator. Default max(2, 1% of agents). */
  readonly fullAgents: number;
  /**
   * Lite agents that decode every change and record latencies (the other lite agents skim delta frames
   * without decoding them). Default max(1, 1% of agents).
   */
  readonly sampleAgents: number;
  /** Share of agents that stop reading in the slow-agents scenario, in percent. Default 5. */
  readonly slowPercent: number;
  /** Limit of every wait for agents to get in sync and for mirrors to converge, in seconds. Default 120. */
  readonly syncTimeoutSeconds: number;
  /** Show a progress bar (only on a TTY). Default true. */
  readonly hasProgressBar: boolean;
  /** PRNG seed of the cluster and of the churn. Default 1. */
  readonly seed: number;
  /** Server flush window (--flush-window-ms); default: the server's own. */
  readonly flushWindowMs: number | undefined;
  /**
   * More `tabby serve` settings for the server (--server-setting name=value, repeatable): each is passed as
   * `--name=value` (e.g. `ingest-worker=false`). Default none.
   */
  readonly serverSettings: readonly string[];
  /**
   * Node options of the server processes (--server-node-option, repeatable; `none`: Node's defaults).
   * Default: the options the image runs `tabby serve` with (src/cli/node-flags.ts).
   */
  readonly serverNodeOptions: readonly string[];
  /**
   * tabby replicas (--replicas): each a `tabby serve` with fixed ports and the others in `--peers`; the
   * agents get every replica's address and spread over them. Default 1.
   */
  readonly replicas: number;
  /**
   * With several replicas: each one's `--drain-ms` (the rolling restart's drain: its sessions are moved
   * to the others spread over it). Default 10,000 (deploy/tabby.yaml drains over 60 s); one server keeps
   * loopbackServeArgs' 1000.
   */
  readonly replicaDrainMs: number;
}

export class LoadtestOptionsError extends Error {
  override readonly name = "LoadtestOptionsError";
  readonly code = "ERR_LOADTEST_OPTIONS";
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

export type RawLoadtestOptions = { -readonly [K in keyof LoadtestOptions]?: LoadtestOptions[K] };

function int(field: string, v: number | undefined, fallback: number, min: number, max: number): number {
  const n = v ?? fallback;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new LoadtestOptionsError(field, `must be a whole number in [${min}, ${max}], got ${String(v)}`);
  }
  return n;
}

/** `2026-01-31T12-00-00` for results folder names. */
export function timestampName(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d+Z$/, "")
    .replace(/:/g, "-");
}

/** Parses `--scenario`: "all" or a comma-separated list of scenario names. */
export function parseScenarios(text: string): ScenarioName[] {
  const names = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (names.length === 0 || names.includes("all")) return [...SCENARIOS];
  for (const n of names) {
    if (!(SCENARIOS as readonly string[]).includes(n)) {
      throw new LoadtestOptionsError(
        "scenario",
        `unknown scenario "${n}" (want all or ${SCENARIOS.join(", ")})`,
      );
    }
  }
  return SCENARIOS.filter((s) => names.includes(s));
}

/** Parses `--churn`: a comma-separated list of changes per second. */
export function parseChurnRates(text: string): number[] {
  const rates = text.split(",").map((s) => Number(s.trim()));
  for (const r of rates) {
    if (!Number.isSafeInteger(r) || r < 1 || r > 100_000) {
      throw new LoadtestOptionsError(
        "churn",
        `want whole numbers of changes per second in [1, 100000]: ${text}`,
      );
    }
  }
  return rates;
}

/** Fills in defaults and validates; throws LoadtestOptionsError naming the field. */
export function resolveLoadtestOptions(raw: RawLoadtestOptions, now = new Date()): LoadtestOptions {
  const agents = int("agents", raw.agents, 1000, 1, 20_000);
  const churnRates = raw.churnRates ?? [100, 1000, 5000];
  if (churnRates.length === 0 || churnRates.length > 20) {
    throw new LoadtestOptionsError("churn", "want between 1 and 20 rates");
  }
  for (const r of churnRates) int("churn", r, 1, 1, 100_000);
  const replicas = int("replicas", raw.replicas, 1, 1, 16);
  const replicaDrainMs = int("replicaDrainMs", raw.replicaDrainMs, 10_000, 0, 600_000);
  const asked = raw.scenarios ?? [...SCENARIOS];
  const scenarios = asked.filter((s) =>
    replicas > 1 ? !SINGLE_SERVER_SCENARIOS.has(s) : !REPLICA_SCENARIOS.has(s),
  );
  if (asked.length === 0) throw new LoadtestOptionsError("scenario", "want at least one scenario");
  if (scenarios.length === 0) {
    throw new LoadtestOptionsError(
      "replicas",
      replicas > 1
        ? "slow-agents, reconnect-storm and ceiling run with one replica only"
        : "scale-out and rolling-restart need --replicas 2 or more",
    );
  }
  const slowPercent = raw.slowPercent ?? 5;
  if (!Number.isFinite(slowPercent) || slowPercent <= 0 || slowPercent >= 50) {
    throw new LoadtestOptionsError("slowPercent", "must be a percentage in (0, 50)");
  }
  const fullAgents = int("fullAgents", raw.fullAgents, Math.max(2, Math.ceil(agents / 100)), 1, agents);
  return {
    nodes: int("nodes", raw.nodes, 1000, 1, 20_000),
    podsPerNode: int("podsPerNode", raw.podsPerNode, 30, 1, 250),
    agents,
    churnRates,
    referenceChurn:
      raw.referenceChurn === undefined
        ? undefined
        : int("referenceChurn", raw.referenceChurn, 1000, 1, 100_000),
    durationSeconds: int("duration", raw.durationSeconds, 30, 1, 3600),
    workers: int("workers", raw.workers, 8, 1, 64),
    scenarios: SCENARIOS.filter((s) => scenarios.includes(s)),
    outDir: raw.outDir ?? `results/${timestampName(now)}`,
    isCpuProfiled: raw.isCpuProfiled ?? false,
    isAgentCpuProfiled: raw.isAgentCpuProfiled ?? false,
    isServerLogged: raw.isServerLogged ?? false,
    fullAgents,
    sampleAgents: int("sampleAgents", raw.sampleAgents, Math.max(1, Math.ceil(agents / 100)), 0, agents),
    slowPercent,
    syncTimeoutSeconds: int("syncTimeout", raw.syncTimeoutSeconds, 120, 1, 3600),
    hasProgressBar: raw.hasProgressBar ?? true,
    seed: int("seed", raw.seed, 1, 0, 2 ** 31 - 1),
    flushWindowMs:
      raw.flushWindowMs === undefined ? undefined : int("flushWindowMs", raw.flushWindowMs, 10, 0, 10_000),
    replicas,
    replicaDrainMs,
    serverSettings: (raw.serverSettings ?? []).map(checkServerSetting),
    serverNodeOptions: checkNodeOptions(raw.serverNodeOptions ?? SERVE_NODE_OPTIONS),
  };
}

/** Node options: each a `--flag` or `--flag=value`; a lone `none` stands for no options. */
function checkNodeOptions(options: readonly string[]): readonly string[] {
  if (options.length === 1 && options[0] === "none") return [];
  for (const o of options) {
    if (!/^--[a-z][a-z0-9-]*(=\S+)?$/.test(o)) {
      throw new LoadtestOptionsError(
        "serverNodeOptions",
        `want --flag or --flag=value (or none), got "${o}"`,
      );
    }
  }
  return options;
}

/** `name=value` of a `tabby serve` flag (kebab-case name, without the dashes). */
function checkServerSetting(setting: string): string {
  if (!/^[a-z][a-z0-9-]*=\S*$/.test(setting)) {
    throw new LoadtestOptionsError("serverSetting", `want name=value (a tabby serve flag), got "${setting}"`);
  }
  return setting;
}

/**
 * The churn rate the slow-agents and reconnect-storm scenarios run at: `referenceChurn`, else the listed
 * rate closest to 1000/s.
 */
export function referenceChurnRate(options: LoadtestOptions): number {
  if (options.referenceChurn !== undefined) return options.referenceChurn;
  let best = options.churnRates[0] ?? 1000;
  for (const r of options.churnRates) if (Math.abs(r - 1000) < Math.abs(best - 1000)) best = r;
  return best;
}

/** Whether a run needs the tabby server and agents (every scenario but the baseline does). */
export function hasTabbyScenario(options: LoadtestOptions): boolean {
  return options.scenarios.some((s) => s !== "baseline");
}
