import { mkdtemp, readdir, readlink, readFile, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ResourceValue, ViewName } from "../../proto/messages.js";
import { loopbackServeArgs } from "../cli/args.js";
import { spawnTabby } from "../cli/ipc.js";
import type { TabbyChild } from "../cli/ipc.js";
import { TabbyClient } from "../client/index.js";
import { canonicalJson, diffMirror, expectedView } from "./expected.js";
import type { MirrorDiff } from "./expected.js";
import { ChaosProxy } from "./proxy.js";
import { laneOf, makeSchedule } from "./schedule.js";
import type { Fault, FaultKind } from "./schedule.js";
import { HISTORY_LIMIT, startUpstream } from "./upstream.js";
import type { ChaosUpstream, SimPlacement } from "./upstream.js";

export interface RunOptions {
  readonly seed: number;
  readonly agents: number;
  readonly nodes: number;
  readonly servers: number;
  /** Churn and faults last this long, ms. */
  readonly durationMs: number;
  /** Object writes per second during the run. */
  readonly churnPerSecond: number;
  /** Faults per run, [min, max]. */
  readonly faults: readonly [number, number];
  /** A run whose mirrors are not all equal to the cluster this long after the last fault is divergent. */
  readonly settleTimeoutMs: number;
  readonly kinds?: readonly FaultKind[];
  /** A server that does not report ready, or agents not in sync before the faults, this long: the run fails. Default 60,000 ms. */
  readonly startTimeoutMs?: number;
  /**
   * Where the simulator runs: `auto` (default) in the runner's process up to MANY_AGENTS agents and in a
   * child process of its own from there on; `child` or `in-process` always.
   */
  readonly simProcess?: SimProcessMode;
}

/** Where a run's simulator runs (RunOptions.simProcess). */
export type SimProcessMode = "auto" | "child" | "in-process";

/** File descriptors, sockets and RSS of one server process. */
export interface ProcFootprint {
  readonly pid: number;
  readonly fds: number;
  readonly sockets: number;
  readonly rssBytes: number;
}

export interface ServerReport {
  readonly server: number;
  /** After the agents synced, before the first fault. */
  readonly before: ProcFootprint | undefined;
  /** After the run settled (a restarted server: its last process). */
  readonly after: ProcFootprint | undefined;
  readonly restarts: number;
}

export interface MirrorFailure {
  readonly agent: number;
  readonly view: ViewName;
  readonly node: string | undefined;
  readonly state: string;
  readonly diff: MirrorDiff | undefined;
}

export interface RunResult {
  readonly seed: number;
  /** Where the simulator ran. */
  readonly simulator: SimPlacement;
  readonly isDivergent: boolean;
  /**
   * From the end of the last fault (and of the churn) to every mirror equal and in sync, seconds: to the
   * last change of mirror or state any agent had before the check found them all converged (a mirror
   * changes only with an update, so none was converged earlier), 0 when none changed after the faults.
   */
  readonly convergeSeconds: number | undefined;
  /**
   * When the runner's check found every mirror converged, seconds after the last fault: convergeSeconds
   * plus the check's own delay (its polling, and the comparison of every mirror, which with hundreds of
   * agents on a loaded machine takes seconds).
   */
  readonly checkedSeconds: number | undefined;
  readonly schedule: readonly Fault[];
  readonly faultsByKind: Readonly<Record<string, number>>;
  readonly changes: number;
  readonly mirrors: number;
  readonly failures: readonly MirrorFailure[];
  readonly servers: readonly ServerReport[];
  readonly durationSeconds: number;
  /** The machine's 1-minute load average when the run ended (a busy machine slows convergence). */
  readonly loadAverage1m: number;
  /** A run that took longer than 5 s to converge: the agents (up to 20) not there yet at 5 s, and their states. */
  readonly lateAgents?: readonly LateAgent[];
}

/** An agent still not converged 5 s after the last fault. */
export interface LateAgent {
  readonly agent: number;
  readonly view: ViewName;
  readonly state: string;
}

/** After this long without converging, a run records which agents are late (lateAgents). */
const LATE_AFTER_MS = 5000;

/** Where a run was when it failed to be carried out (not a divergence: the check never ran). */
export type RunPhase = "setup" | "faults" | "check";

/**
 * A run that could not be carried out: the simulator, a server or an agent did not start, a fault could
 * not be applied or undone (a restarted server that does not come up), or the check threw. `cause` is the
 * original error; `schedule` reproduces the run with `tabby chaos --seed N --runs 1`.
 */
export class ChaosRunError extends Error {
  override readonly name = "ChaosRunError";
  readonly code = "ERR_CHAOS_RUN";
  readonly seed: number;
  readonly phase: RunPhase;
  readonly schedule: readonly Fault[];

  constructor(seed: number, phase: RunPhase, schedule: readonly Fault[], cause: unknown) {
    super(`run ${seed} failed in ${phase}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.seed = seed;
    this.phase = phase;
    this.schedule = schedule;
  }
}

/**
 * Up to this many agents, short client timeouts (2 s connect, 4 s read) find dead connections fast. With
 * more, the library's defaults (10 s, 30 s) apply: on a busy machine a server sends hundreds of snapshots
 * at once after a restart, and agents that give up on it after 4 s and retry keep it from ever finishing
 * (a 200-agent run did not converge in 60 s that way).
 */
const MANY_AGENTS = 50;

/**
 * Where `mode` puts the simulator of a run of `agents` agents. With many agents the simulator does not go
 * in the runner's process: there 200 agents starve it (a plain list took over 10 s on a loaded machine, so
 * every probe of the servers timed out and nothing could converge). Up to MANY_AGENTS, in process: one
 * process fewer on the machine, and the setup of the small campaigns the figures were measured with.
 */
export function simPlacement(mode: SimProcessMode, agents: number): SimPlacement {
  if (mode === "child") return "child-process";
  if (mode === "in-process") return "in-process";
  return agents > MANY_AGENTS ? "child-process" : "in-process";
}

const VIEWS_CYCLE: readonly ViewName[] = ["felix", "bgp", "node-status", "tunnel-ip-allocation"];
const NODE_SCOPED: ReadonlySet<ViewName> = new Set(["felix", "bgp", "node-status"]);

/** Reads fds, sockets and RSS of a process from /proc; undefined when it is gone (or not Linux). */
export async function footprint(pid: number | undefined): Promise<ProcFootprint | undefined> {
  if (pid === undefined) return undefined;
  try {
    const dir = `/proc/${pid}/fd`;
    const fds = await readdir(dir);
    let sockets = 0;
    for (const fd of fds) {
      try {
        if ((await readlink(join(dir, fd))).startsWith("socket:")) sockets++;
      } catch {
        // The fd closed between readdir and readlink: not counted.
      }
    }
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return { pid, fds: fds.length, sockets, rssBytes: rss === null ? 0 : Number(rss[1]) * 1024 };
  } catch {
    return undefined;
  }
}

/** Server processes of the runs under way: killed at once if the runner itself is interrupted. */
const LIVE_SERVERS = new Set<TabbyChild>();

/** SIGKILLs every server process of the runs under way (the runner got SIGINT or SIGTERM). */
export function killServersNow(): void {
  for (const child of LIVE_SERVERS) {
    child.process.kill("SIGCONT");
    child.process.kill("SIGKILL");
  }
  LIVE_SERVERS.clear();
}

/** One tabby server child process behind its proxy; restartable. */
class ServerSlot {
  child: TabbyChild | undefined;
  restarts = 0;
  readonly #args: readonly string[];
  readonly #startTimeoutMs: number;
  readonly proxy: ChaosProxy;

  constructor(args: readonly string[], proxy: ChaosProxy, startTimeoutMs: number) {
    this.#args = args;
    this.proxy = proxy;
    this.#startTimeoutMs = startTimeoutMs;
  }

  get pid(): number | undefined {
    return this.child?.process.pid;
  }

  async start(): Promise<void> {
    const child = await spawnTabby(this.#args, { timeoutMs: this.#startTimeoutMs });
    this.child = child;
    LIVE_SERVERS.add(child);
    child.process.once("exit", () => LIVE_SERVERS.delete(child));
    this.proxy.targetPort = Number(child.ready.port);
  }

  /** Sends `signal`, waits for the exit, starts a new process. */
  async restart(signal: "SIGKILL" | "SIGTERM"): Promise<void> {
    const child = this.child;
    if (child !== undefined && child.process.exitCode === null && child.process.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.process.once("exit", () => resolve()));
      child.process.kill(signal);
      await exited;
    }
    this.restarts++;
    await this.start();
  }

  signal(signal: "SIGSTOP" | "SIGCONT"): void {
    const p = this.child?.process;
    if (p !== undefined && p.exitCode === null && p.signalCode === null) p.kill(signal);
  }

  async stop(): Promise<void> {
    this.signal("SIGCONT");
    await this.child?.stop(3000);
  }
}

interface Context {
  readonly sim: ChaosUpstream;
  readonly slots: readonly ServerSlot[];
  readonly signal: AbortSignal;
}

/** Applies one fault and resolves when it is over (a stall lifted, a server back). */
async function applyFault(f: Fault, c: Context): Promise<void> {
  const slot = c.slots[f.server % c.slots.length]!;
  const wait = (ms: number): Promise<void> =>
    sleep(ms, undefined, { signal: c.signal }).catch(() => undefined);
  switch (f.kind) {
    case "watch-drop":
      await c.sim.fault({ op: "drop-watches" });
      return;
    case "watch-stall":
      await c.sim.fault({ op: "stall-watches", isOn: true });
      await wait(f.durationMs);
      await c.sim.fault({ op: "stall-watches", isOn: false });
      return;
    case "watch-410":
      await c.sim.fault({ op: "expire-watches" });
      return;
    case "api-500":
    case "api-429":
      await c.sim.fault({
        op: "fail-requests",
        status: f.kind === "api-500" ? 500 : 429,
        forMs: f.durationMs,
      });
      await wait(f.durationMs);
      return;
    case "api-restart-compact":
      await c.sim.fault({ op: "set-history-limit", limit: 5 });
      await c.sim.fault({ op: "restart" });
      await c.sim.fault({ op: "set-history-limit", limit: HISTORY_LIMIT });
      return;
    case "api-pause":
      await c.sim.fault({ op: "pause", isOn: true });
      await wait(f.durationMs);
      await c.sim.fault({ op: "pause", isOn: false });
      return;
    case "server-kill9":
      await slot.restart("SIGKILL");
      return;
    case "server-term":
      await slot.restart("SIGTERM");
      return;
    case "server-stop-cont":
      slot.signal("SIGSTOP");
      await wait(f.durationMs);
      slot.signal("SIGCONT");
      return;
    case "proxy-cut":
      slot.proxy.cutAll();
      return;
    case "proxy-delay":
      slot.proxy.setDelay(f.delayMs ?? 100);
      await wait(f.durationMs);
      slot.proxy.setDelay(0);
      return;
    case "proxy-truncate":
      slot.proxy.truncateNext();
      return;
    case "proxy-stall":
      slot.proxy.stall(true);
      await wait(f.durationMs);
      slot.proxy.stall(false);
      return;
  }
}

/** Runs the schedule: each fault at its time, one at a time per lane (upstream, each server, each proxy). */
async function runSchedule(schedule: readonly Fault[], c: Context): Promise<void> {
  const startedMs = Date.now();
  const lanes = new Map<string, Promise<void>>();
  for (const f of schedule) {
    const lane = laneOf(f);
    const prev = lanes.get(lane) ?? Promise.resolve();
    lanes.set(
      lane,
      prev.then(async () => {
        const waitMs = startedMs + f.atMs - Date.now();
        if (waitMs > 0) await sleep(waitMs, undefined, { signal: c.signal }).catch(() => undefined);
        if (!c.signal.aborted) await applyFault(f, c);
      }),
    );
  }
  await Promise.all(lanes.values());
}

interface Agent {
  readonly index: number;
  readonly view: ViewName;
  readonly node: string | undefined;
  readonly client: TabbyClient;
  /** Epoch ms of the agent's last update or change of state (its mirror and state have not changed since). */
  lastChangeMs: number;
}

/** One seeded chaos run: a fresh simulator, servers, proxies and agents; faults under churn; then the check. */
export async function chaosRun(o: RunOptions): Promise<RunResult> {
  const startedMs = Date.now();
  const schedule = makeSchedule(o.seed, {
    durationMs: o.durationMs,
    servers: o.servers,
    faults: o.faults,
    ...(o.kinds !== undefined && { kinds: o.kinds }),
  });
  const faultsByKind: Record<string, number> = {};
  for (const f of schedule) faultsByKind[f.kind] = (faultsByKind[f.kind] ?? 0) + 1;
  const startTimeoutMs = o.startTimeoutMs ?? 60_000;
  const abort = new AbortController();
  const dir = await mkdtemp(join(tmpdir(), "tabby-chaos-"));
  const cleanups: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  const agents: Agent[] = [];
  let phase: RunPhase = "setup";
  try {
    const placement = simPlacement(o.simProcess ?? "auto", o.agents);
    const sim = await startUpstream(placement, {
      nodes: o.nodes,
      seed: o.seed,
      bookmarkIntervalMs: 2000,
      timeoutMs: startTimeoutMs,
    });
    cleanups.push(() => sim.close());
    const kubeconfig = join(dir, "kubeconfig");
    await writeFile(kubeconfig, sim.kubeconfigYaml);
    const args = loopbackServeArgs(kubeconfig, {
      extra: [
        "--drain-ms",
        "300",
        // Short, so that the API pauses make the servers stale. With many agents the servers and the
        // simulator answer late on a loaded machine: longer, or every probe would time out.
        "--stale-after-ms",
        o.agents <= MANY_AGENTS ? "1500" : "4000",
        "--upstream-probe-ms",
        "300",
        "--upstream-probe-timeout-ms",
        o.agents <= MANY_AGENTS ? "500" : "2000",
        "--watchdog-ms",
        "5000",
        "--max-lag-ms",
        "5000",
      ],
    });
    const slots: ServerSlot[] = [];
    for (let i = 0; i < o.servers; i++) {
      const proxy = new ChaosProxy(0);
      await proxy.listen();
      cleanups.push(() => proxy.close());
      slots.push(new ServerSlot(args, proxy, startTimeoutMs));
    }
    cleanups.push(() => Promise.all(slots.map((s) => s.stop())));
    await Promise.all(slots.map((s) => s.start()));

    for (let i = 0; i < o.agents; i++) {
      const view = VIEWS_CYCLE[i % VIEWS_CYCLE.length]!;
      const node = NODE_SCOPED.has(view) ? sim.nodes[i % sim.nodes.length] : undefined;
      // Each agent prefers a different server first; all know every server.
      const urls = slots.map((_, j) => `ws://127.0.0.1:${slots[(i + j) % slots.length]!.proxy.port}`);
      const client = new TabbyClient({
        servers: urls,
        view,
        ...(node !== undefined && { nodeName: node }),
        clientName: `chaos-${i}`,
        backoffInitialMs: 50,
        backoffMaxMs: 1000,
        ...(o.agents <= MANY_AGENTS && { connectTimeoutMs: 2000, readTimeoutMs: 4000 }),
      });
      client.on("error", () => undefined); // errors are expected under faults; the check is the mirror
      const agent: Agent = { index: i, view, node, client, lastChangeMs: Date.now() };
      const changed = (): void => {
        agent.lastChangeMs = Date.now();
      };
      client.on("updates", changed);
      client.on("status", changed);
      agents.push(agent);
      client.start();
    }
    cleanups.push(() => Promise.all(agents.map((a) => a.client.destroy())));
    await withTimeout(
      Promise.all(agents.map((a) => a.client.synced())),
      startTimeoutMs,
      "the agents did not sync before the faults",
    );
    const before = await Promise.all(slots.map((s) => footprint(s.pid)));
    phase = "faults";

    await sim.startChurn(o.churnPerSecond);
    const context: Context = { sim, slots, signal: abort.signal };
    // Handled at once: a fault that fails while the churn still runs must not be an unhandled rejection.
    const faults = runSchedule(schedule, context).then(
      () => undefined,
      (err: unknown) => ({ err }),
    );
    await sleep(o.durationMs);
    const changes = await sim.stopChurn();
    const faultFailure = await faults;
    if (faultFailure !== undefined) throw faultFailure.err;
    const quietFromMs = Date.now();
    phase = "check";

    // Settle: every mirror equal to the cluster converted, and in sync.
    const state = await sim.converted();
    // Each value's canonical JSON once: with 200 agents there are ~150 views of mostly the same entries.
    const stateJson = new Map(state.map((e) => [e.key, canonicalJson(e.value)]));
    const wanted = new Map<string, { map: Map<string, ResourceValue>; json: Map<string, string> }>();
    for (const a of agents) {
      const id = `${a.view}/${a.node ?? ""}`;
      if (wanted.has(id)) continue;
      const map = expectedView(state, a.view, a.node);
      wanted.set(id, { map, json: new Map([...map.keys()].map((k) => [k, stateJson.get(k)!])) });
    }
    // The states first, which is cheap; the mirrors are compared once every agent is in sync. Comparing
    // hundreds of full mirrors every 100 ms would starve the agents (and an in-process simulator), which
    // share this event loop. A run that does not settle gets the full comparison for its report.
    const check = (isFull: boolean): MirrorFailure[] => {
      const out: MirrorFailure[] = [];
      const isAllInSync = agents.every((a) => a.client.status.state === "in-sync");
      for (const a of agents) {
        const state = a.client.status.state;
        if (!isAllInSync && !isFull) {
          if (state !== "in-sync")
            out.push({ agent: a.index, view: a.view, node: a.node, state, diff: undefined });
          continue;
        }
        const w = wanted.get(`${a.view}/${a.node ?? ""}`)!;
        const diff = diffMirror((k) => a.client.get(k), a.client.keys(), w.map, w.json);
        if (diff !== undefined || state !== "in-sync") {
          out.push({ agent: a.index, view: a.view, node: a.node, state, diff });
        }
      }
      return out;
    };
    let failures = check(false);
    let checkMs = 0;
    let lateAgents: LateAgent[] | undefined;
    while (failures.length > 0 && Date.now() - quietFromMs < o.settleTimeoutMs) {
      await sleep(Math.max(100, 2 * checkMs));
      const startedCheckMs = Date.now();
      failures = check(false);
      checkMs = Date.now() - startedCheckMs;
      if (lateAgents === undefined && Date.now() - quietFromMs >= LATE_AFTER_MS) {
        lateAgents = failures.slice(0, 20).map((f) => ({ agent: f.agent, view: f.view, state: f.state }));
      }
    }
    const isConverged = failures.length === 0;
    const checkedSeconds = isConverged ? (Date.now() - quietFromMs) / 1000 : undefined;
    const lastChangeMs = Math.max(quietFromMs, ...agents.map((a) => a.lastChangeMs));
    const convergeSeconds = isConverged ? (lastChangeMs - quietFromMs) / 1000 : undefined;
    if (failures.length > 0) failures = check(true);
    const after = await Promise.all(slots.map((s) => footprint(s.pid)));
    return {
      seed: o.seed,
      simulator: placement,
      isDivergent: failures.length > 0,
      convergeSeconds,
      checkedSeconds,
      schedule,
      faultsByKind,
      changes,
      mirrors: agents.length,
      failures: failures.slice(0, 20),
      servers: slots.map((s, i) => ({ server: i, before: before[i], after: after[i], restarts: s.restarts })),
      durationSeconds: (Date.now() - startedMs) / 1000,
      loadAverage1m: loadavg()[0] ?? 0,
      ...(lateAgents !== undefined && lateAgents.length > 0 && { lateAgents }),
    };
  } catch (err) {
    throw new ChaosRunError(o.seed, phase, schedule, err);
  } finally {
    abort.abort();
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        // Teardown goes on: what failed to close is reported, the next run starts from scratch anyway.
        process.stderr.write(
          `chaos: teardown of run ${o.seed}: ${err instanceof Error ? err.message : String(err)}\n`,
        );
      }
    }
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
