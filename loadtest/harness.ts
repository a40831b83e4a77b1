import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { loopbackServeArgs } from "../src/cli/args.js";
import { SERVE_ENV } from "../src/cli/node-flags.js";
import { formatStaticPeers } from "../src/server/replicas/index.js";
import type { TabbyChild, spawnTabby } from "../src/cli/ipc.js";
import { planAgents } from "./agent-plan.js";
import { ApiWatchProbe } from "./api-probe.js";
import { getJson } from "./http-get.js";
import { ChildPeer } from "./ipc.js";
import type { LoadtestOptions } from "./options.js";
import { ProcSampler } from "./proc-stats.js";
import { serverSpawner } from "./server-entry.js";
import type { ServerRuntime } from "./server-entry.js";
import type {
  AgentSpec,
  BaselineOps,
  CeilingOps,
  CeilingReady,
  SimOps,
  SimProcessArgs,
  SimReady,
  WorkerOps,
} from "./protocol.js";

/** Server facts from its ready message. */
export interface ServerInfo {
  readonly pid: number;
  readonly port: number;
  readonly healthPort: number;
  readonly metricsPort: number;
  readonly serverId: string;
}

/** The part of the server's /status the load test reads. */
export interface ServerStatus {
  readonly server: string;
  readonly revision: number;
  readonly ready: boolean;
  readonly upstreamWatches?: number;
  /** The flush window in use and the widest used (ms), when the server reports them. */
  readonly flushWindowMs?: number;
  readonly flushWindowMsMax?: number;
  /** Upstream state per kind (`since`: epoch ms of the last change of state). */
  readonly kinds?: Readonly<Record<string, { readonly state: string; readonly since: number }>>;
  readonly connections?: { readonly active: number };
  readonly views?: Readonly<
    Record<string, { readonly lastChangeRevision: number; readonly lagging: number }>
  >;
  readonly counters?: {
    readonly dropped?: Readonly<Record<string, number>>;
    readonly laggingStarted?: number;
    readonly catchUps?: number;
  };
}

export class LoadtestError extends Error {
  override readonly name = "LoadtestError";
  readonly code: "ERR_LOADTEST_TIMEOUT" | "ERR_LOADTEST_ABORTED" | "ERR_LOADTEST_SERVER";
  constructor(code: LoadtestError["code"], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** When the last server start began (spawn), when the process reported ready, when /readyz said yes (epoch ms). */
export interface ServerTimes {
  readonly spawnedAtMs: number;
  readonly listeningAtMs: number;
  readonly readyAtMs: number;
}

/**
 * When every upstream kind was last listed (the latest `since` of the kinds in sync, from `/status`), or
 * null when the server does not report kinds or one of them is not in sync.
 */
export function upstreamListedAtMs(status: ServerStatus): number | null {
  const kinds = Object.values(status.kinds ?? {});
  if (kinds.length === 0 || kinds.some((k) => k.state !== "in-sync")) return null;
  return Math.max(...kinds.map((k) => k.since));
}

/** Labels of the processes the sampler watches. */
export const SERVER = "server";
export const SIM = "sim";
/** Every agent worker process, summed. */
export const AGENTS = "agents";
/** The ceiling scenario's broadcaster. */
export const CEILING = "ceiling";

const READY_TIMEOUT_MS = 120_000;

/** How often a replica reads its peers' /status (their load) in a run with --replicas (ms). */
const PEER_POLL_MS = 1000;

/** A replica's process and facts. */
interface ReplicaProc {
  readonly child: TabbyChild;
  readonly info: ServerInfo;
}

/** A free loopback TCP port (the OS's pick, released at once: the replica binds it right after). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolvePort, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolvePort());
  });
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** One sample of the sessions every replica holds (null: not running or not answering). */
export interface ReplicaConnectionsSample {
  readonly atMs: number;
  readonly connections: readonly (number | null)[];
}

/** Resolves after `ms`, or rejects with ERR_LOADTEST_ABORTED when `signal` aborts first. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolveDelay, reject) => {
    if (signal.aborted) {
      reject(new LoadtestError("ERR_LOADTEST_ABORTED", "aborted"));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new LoadtestError("ERR_LOADTEST_ABORTED", "aborted"));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolveDelay();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The processes of a load test run: the simulator, the tabby server, the agent workers (one of them for the
 * agents that go slow), baseline workers, and a sampler of the server's and simulator's CPU and RSS. Every
 * child is killed by its PID in close(), which is idempotent and also runs on failure.
 */
export class Harness {
  readonly options: LoadtestOptions;
  readonly signal: AbortSignal;
  readonly sampler = new ProcSampler(500);
  readonly outDir: string;
  #sim: ChildPeer<SimOps> | undefined;
  #probe: ApiWatchProbe | undefined;
  #simReady: SimReady | undefined;
  #kubeconfigPath: string | undefined;
  /** Replica slots (slot 0 is "the server" of the single-server scenarios). */
  #replicas: (ReplicaProc | undefined)[] = [];
  /** With --replicas N > 1: the agent and status ports of every slot, fixed for the run. */
  #ports: { readonly port: number; readonly healthPort: number }[] = [];
  #connectionSamples: ReplicaConnectionsSample[] = [];
  #connectionTimer: NodeJS.Timeout | undefined;
  #workers: ChildPeer<WorkerOps>[] = [];
  #slowWorker: ChildPeer<WorkerOps> | undefined;
  #baselineWorkers: ChildPeer<BaselineOps>[] = [];
  #ceiling: ChildPeer<CeilingOps> | undefined;
  #agentSpecs: readonly (readonly AgentSpec[])[] = [];
  #slowSpecs: readonly AgentSpec[] = [];
  #closing: Promise<void> | undefined;
  readonly #profileDir: string;
  #spawner: { spawn: typeof spawnTabby; runtime: ServerRuntime } | undefined;
  #slowWorkerAnswers = 0;
  #serverTimes: ServerTimes | undefined;

  constructor(options: LoadtestOptions, signal: AbortSignal) {
    this.options = options;
    this.signal = signal;
    this.outDir = resolve(options.outDir);
    this.#profileDir = join(this.outDir, "profiles");
  }

  get sim(): ChildPeer<SimOps> {
    if (this.#sim === undefined) throw new Error("the simulator is not started");
    return this.#sim;
  }

  get simReady(): SimReady {
    if (this.#simReady === undefined) throw new Error("the simulator is not started");
    return this.#simReady;
  }

  /** A direct watch of pods on the simulator: the API side's share of the latency. */
  get probe(): ApiWatchProbe {
    if (this.#probe === undefined) throw new Error("the simulator is not started");
    return this.#probe;
  }

  get server(): ServerInfo {
    const info = this.#replicas[0]?.info;
    if (info === undefined) throw new Error("the server is not started");
    return info;
  }

  get hasServer(): boolean {
    return this.#replicas[0] !== undefined;
  }

  /** Replicas of the run (--replicas). */
  get replicaCount(): number {
    return this.options.replicas;
  }

  /** The running replica of a slot, if any. */
  replica(slot: number): ServerInfo | undefined {
    return this.#replicas[slot]?.info;
  }

  /**
   * The agent addresses of every replica slot, running or not (agents get the whole Service): with one
   * replica, the server's.
   */
  get agentServers(): string[] {
    if (this.replicaCount <= 1) return [`ws://127.0.0.1:${this.server.port}`];
    return this.#ports.map((p) => `ws://127.0.0.1:${p.port}`);
  }

  /** Samples of the sessions per replica, every 500 ms since the first replica started. */
  get connectionSamples(): readonly ReplicaConnectionsSample[] {
    return this.#connectionSamples;
  }

  /** Workers of the agents that keep reading. */
  get workers(): readonly ChildPeer<WorkerOps>[] {
    return this.#workers;
  }

  get slowWorker(): ChildPeer<WorkerOps> | undefined {
    return this.#slowWorker;
  }

  /** Every agent worker, the slow one included. */
  get allWorkers(): readonly ChildPeer<WorkerOps>[] {
    return this.#slowWorker === undefined ? this.#workers : [...this.#workers, this.#slowWorker];
  }

  /** Progress polls a worker was too busy to answer in time (the machine is overloaded). */
  get slowWorkerAnswers(): number {
    return this.#slowWorkerAnswers;
  }

  noteSlowWorker(): void {
    this.#slowWorkerAnswers++;
  }

  /** The times of the last server start (undefined before one completed). */
  get serverTimes(): ServerTimes | undefined {
    return this.#serverTimes;
  }

  /** How the server ran (undefined before it started). */
  get serverRuntime(): ServerRuntime | undefined {
    return this.#spawner?.runtime;
  }

  get profileDir(): string | undefined {
    return this.options.isCpuProfiled || this.options.isAgentCpuProfiled ? this.#profileDir : undefined;
  }

  /** The agents each regular worker holds, and those of the slow worker. */
  get agentSpecs(): {
    readonly regular: readonly (readonly AgentSpec[])[];
    readonly slow: readonly AgentSpec[];
  } {
    return { regular: this.#agentSpecs, slow: this.#slowSpecs };
  }

  async startSim(): Promise<SimReady> {
    const args: SimProcessArgs = {
      nodes: this.options.nodes,
      podsPerNode: this.options.podsPerNode,
      seed: this.options.seed,
      historyLimit: 50_000,
    };
    const sim = new ChildPeer<SimOps>("simulator", "sim-process.ts", [JSON.stringify(args)], {
      readyTimeoutMs: READY_TIMEOUT_MS,
    });
    this.#sim = sim;
    const ready = (await sim.ready) as unknown as SimReady;
    this.#simReady = ready;
    this.#kubeconfigPath = join(this.outDir, "sim.kubeconfig");
    await writeFile(this.#kubeconfigPath, ready.kubeconfigYaml, { mode: 0o600 });
    if (sim.pid !== undefined) this.sampler.watch(SIM, sim.pid);
    this.sampler.start();
    this.#probe = new ApiWatchProbe(ready.url, ready.token);
    this.#probe.start();
    return ready;
  }

  /** Starts `tabby serve` against the simulator (on `port`, 0 = any) and waits until it is ready (slot 0). */
  async startServer(port = 0): Promise<ServerInfo> {
    return this.startReplica(0, port);
  }

  /**
   * Starts replica `slot` and waits until it is ready. With --replicas N > 1 every slot has fixed ports
   * and lists every slot in `--peers` (the static Service: replicas read each other's /status).
   */
  async startReplica(slot: number, port = 0): Promise<ServerInfo> {
    if (this.#kubeconfigPath === undefined) throw new Error("start the simulator first");
    if (this.#replicas[slot] !== undefined) throw new Error(`replica ${slot} is running`);
    const isGroup = this.replicaCount > 1;
    if (isGroup && this.#ports.length === 0) {
      for (let i = 0; i < this.replicaCount; i++)
        this.#ports.push({ port: await freePort(), healthPort: await freePort() });
    }
    const fixed = this.#ports[slot];
    const extra = [
      // After loopbackServeArgs' "--log-level warn" (the last one counts): a kept log says what happened.
      ...(this.options.isServerLogged ? ["--log-level", "info"] : []),
      // A replica drains as a deployment's would (loopbackServeArgs' 1 s is for one server's scenarios).
      ...(isGroup ? ["--drain-ms", String(this.options.replicaDrainMs)] : []),
      ...this.options.serverSettings.map((s) => `--${s}`),
      ...(this.options.flushWindowMs === undefined
        ? []
        : ["--flush-window-ms", String(this.options.flushWindowMs)]),
      ...(isGroup && fixed !== undefined
        ? [
            "--health-port",
            String(fixed.healthPort),
            "--peers",
            formatStaticPeers(this.#ports.map((p) => ({ port: p.port, statusPort: p.healthPort }))),
            "--advertise-url",
            `ws://127.0.0.1:${fixed.port}`,
            "--peer-poll-ms",
            String(PEER_POLL_MS),
          ]
        : []),
    ];
    const args = loopbackServeArgs(this.#kubeconfigPath, { port: fixed?.port ?? port, extra });
    // By default the server runs with the Node options it is deployed with (the image's NODE_OPTIONS).
    const execArgv: string[] = [...this.options.serverNodeOptions];
    if (this.options.isCpuProfiled) {
      await mkdir(this.#profileDir, { recursive: true });
      execArgv.push("--cpu-prof", "--cpu-prof-dir", this.#profileDir);
    }
    let logFile: string | undefined;
    if (this.options.isServerLogged) {
      await mkdir(join(this.outDir, "logs"), { recursive: true });
      logFile = join(this.outDir, "logs", `replica-${slot}.log`);
    }
    this.#spawner ??= await serverSpawner();
    const spawnedAtMs = Date.now();
    const child = await this.#spawner.spawn(args, {
      timeoutMs: READY_TIMEOUT_MS,
      execArgv,
      // The image's environment, unless this process's own sets the same variables.
      env: { ...SERVE_ENV, ...process.env },
      ...(logFile !== undefined && { logFile }),
    });
    const listeningAtMs = Date.now();
    const r = child.ready;
    const info: ServerInfo = {
      pid: r.pid,
      port: Number(r.port),
      healthPort: Number(r.healthPort),
      metricsPort: Number(r.metricsPort),
      serverId: String(r.serverId),
    };
    this.#replicas[slot] = { child, info };
    // Every replica's CPU and RSS count as the server's (summed over the replicas that run).
    this.sampler.watch(SERVER, info.pid, isGroup);
    this.#startConnectionSampling();
    await this.waitReplicaReady(slot, this.options.syncTimeoutSeconds * 1000);
    this.#serverTimes = { spawnedAtMs, listeningAtMs, readyAtMs: Date.now() };
    return info;
  }

  /** Kills the server process now (SIGKILL: a crash, no drain). */
  async killServer(): Promise<void> {
    const server = this.#replicas[0]?.child;
    this.#replicas[0] = undefined;
    if (server === undefined) return;
    const exited = new Promise<void>((r) => {
      if (server.process.exitCode !== null || server.process.signalCode !== null) r();
      else server.process.once("exit", () => r());
    });
    server.process.kill("SIGKILL");
    await exited;
    this.#unwatchServer();
  }

  /** Stops the server gracefully (SIGTERM: drain, then exit; a CPU profile is written then). */
  async stopServer(): Promise<void> {
    await this.stopReplica(0);
  }

  /** Stops replica `slot` with SIGTERM (it drains: moves its sessions to the others, then exits). */
  async stopReplica(slot: number, timeoutMs = this.options.replicaDrainMs + 15_000): Promise<void> {
    const replica = this.#replicas[slot];
    this.#replicas[slot] = undefined;
    if (replica === undefined) return;
    await replica.child.stop(timeoutMs);
    this.#unwatchServer();
  }

  /** The sampler keeps watching the replicas still running. */
  #unwatchServer(): void {
    this.sampler.unwatch(SERVER);
    for (const r of this.#replicas) if (r !== undefined) this.sampler.watch(SERVER, r.info.pid, true);
  }

  #startConnectionSampling(): void {
    if (this.#connectionTimer !== undefined) return;
    this.#connectionTimer = setInterval(() => void this.#sampleConnections(), 500);
  }

  async #sampleConnections(): Promise<void> {
    const atMs = Date.now();
    const connections = await Promise.all(
      Array.from({ length: Math.max(1, this.replicaCount) }, async (_, slot) => {
        if (this.#replicas[slot] === undefined) return null;
        try {
          return (await this.replicaStatus(slot)).connections?.active ?? null;
        } catch {
          return null; // a replica draining or starting: a gap in its line
        }
      }),
    );
    this.#connectionSamples.push({ atMs, connections });
  }

  /** /status of replica `slot`. */
  async replicaStatus(slot: number): Promise<ServerStatus> {
    const info = this.#replicas[slot]?.info;
    if (info === undefined) throw new LoadtestError("ERR_LOADTEST_SERVER", `replica ${slot} is not running`);
    const { status, body } = await getJson(`http://127.0.0.1:${info.healthPort}/status`, 10_000);
    if (status !== 200 || body === null || typeof body !== "object") {
      throw new LoadtestError("ERR_LOADTEST_SERVER", `replica ${slot}: /status answered ${status}`);
    }
    return body as ServerStatus;
  }

  async waitReplicaReady(slot: number, timeoutMs: number): Promise<void> {
    const info = this.#replicas[slot]?.info;
    if (info === undefined) throw new LoadtestError("ERR_LOADTEST_SERVER", `replica ${slot} is not running`);
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      try {
        const { status, body } = await getJson(`http://127.0.0.1:${info.healthPort}/readyz`, 5000);
        if (status === 200) return;
        last = `${status} ${typeof body === "string" ? body : JSON.stringify(body)}`;
      } catch (err) {
        last = String(err);
      }
      await delay(200, this.signal);
    }
    throw new LoadtestError(
      "ERR_LOADTEST_TIMEOUT",
      `replica ${slot} not ready within ${timeoutMs} ms: ${last}`,
    );
  }

  async serverStatus(): Promise<ServerStatus> {
    return this.replicaStatus(0);
  }

  /** One sample value of the server's /metrics (first series of that name), or undefined. */
  async serverMetric(name: string): Promise<number | undefined> {
    const { status, body } = await getJson(`http://127.0.0.1:${this.server.metricsPort}/metrics`, 10_000);
    if (status !== 200 || typeof body !== "string") return undefined;
    const line = body.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    const value = line === undefined ? NaN : Number(line.slice(line.lastIndexOf(" ") + 1));
    return Number.isFinite(value) ? value : undefined;
  }

  async waitServerReady(timeoutMs: number): Promise<void> {
    await this.waitReplicaReady(0, timeoutMs);
  }

  /** Plans which agent runs where and spawns the agent workers (they wait for "start"). */
  async startWorkers(): Promise<void> {
    const o = this.options;
    const plan = planAgents(o, this.simReady.nodeNames);
    this.#agentSpecs = plan.regular;
    this.#slowSpecs = plan.slow;
    const execArgv: string[] = [];
    if (o.isAgentCpuProfiled) {
      await mkdir(this.#profileDir, { recursive: true });
      execArgv.push("--cpu-prof", "--cpu-prof-dir", this.#profileDir);
    }
    const spawnWorker = (role: string): ChildPeer<WorkerOps> =>
      new ChildPeer<WorkerOps>(role, "agent-worker.ts", [], { readyTimeoutMs: READY_TIMEOUT_MS, execArgv });
    this.#workers = plan.regular.map((_, w) => spawnWorker(`agent worker ${w}`));
    if (plan.slow.length > 0) this.#slowWorker = spawnWorker("slow agent worker");
    for (const w of this.allWorkers) if (w.pid !== undefined) this.sampler.watch(AGENTS, w.pid, true);
    await Promise.all(this.allWorkers.map((w) => w.ready));
  }

  /** The nodes of the full bgp agents (their node-scoped BlockAffinity entries are verified). */
  bgpNodes(): string[] {
    return this.#agentSpecs
      .flat()
      .filter((s) => s.mode === "full" && s.view === "bgp")
      .map((s) => s.nodeName);
  }

  /** Closes the agent workers (each closes its clients and exits), killing any that lingers. */
  async stopWorkers(): Promise<void> {
    const workers = this.allWorkers;
    this.#workers = [];
    this.#slowWorker = undefined;
    this.sampler.unwatch(AGENTS);
    // A frozen (slow-agents) worker must run again to exit.
    for (const w of workers) if (w.isAlive) w.process.kill("SIGCONT");
    await Promise.all(workers.map((w) => w.stop(10_000)));
  }

  async startBaselineWorkers(count: number): Promise<readonly ChildPeer<BaselineOps>[]> {
    this.#baselineWorkers = Array.from(
      { length: count },
      (_, w) =>
        new ChildPeer<BaselineOps>(`baseline worker ${w}`, "baseline-worker.ts", [], {
          readyTimeoutMs: READY_TIMEOUT_MS,
        }),
    );
    await Promise.all(this.#baselineWorkers.map((w) => w.ready));
    for (const w of this.#baselineWorkers) if (w.pid !== undefined) this.sampler.watch(AGENTS, w.pid, true);
    return this.#baselineWorkers;
  }

  async stopBaselineWorkers(): Promise<void> {
    const workers = this.#baselineWorkers;
    this.#baselineWorkers = [];
    this.sampler.unwatch(AGENTS);
    await Promise.all(workers.map((w) => w.stop(10_000)));
  }

  /** Starts the ceiling scenario's broadcaster (its own process) and answers its port and server id. */
  async startCeiling(): Promise<{ peer: ChildPeer<CeilingOps>; ready: CeilingReady }> {
    const peer = new ChildPeer<CeilingOps>("ceiling broadcaster", "ceiling-process.ts", [], {
      readyTimeoutMs: READY_TIMEOUT_MS,
    });
    this.#ceiling = peer;
    const ready = (await peer.ready) as unknown as CeilingReady;
    if (peer.pid !== undefined) this.sampler.watch(CEILING, peer.pid);
    return { peer, ready };
  }

  async stopCeiling(): Promise<void> {
    const peer = this.#ceiling;
    this.#ceiling = undefined;
    if (peer === undefined) return;
    this.sampler.unwatch(CEILING);
    await peer.stop(10_000);
  }

  /** Stops everything: agents first, then the server (gracefully, so a CPU profile is written), then the rest. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.sampler.stop();
      clearInterval(this.#connectionTimer);
      this.#probe?.close();
      const results = await Promise.allSettled([this.stopWorkers(), this.stopBaselineWorkers()]);
      results.push(
        ...(await Promise.allSettled([
          ...this.#replicas.map((_, slot) => this.stopReplica(slot)),
          this.stopCeiling(),
        ])),
      );
      results.push(...(await Promise.allSettled([this.#sim?.stop(10_000)])));
      for (const r of results) {
        if (r.status === "rejected") console.error(`loadtest: cleanup: ${String(r.reason)}`);
      }
    })();
    return this.#closing;
  }

  /** Last resort on process exit: SIGKILL every child still running (synchronous). */
  killAllNow(): void {
    const children = [
      ...(this.#sim === undefined ? [] : [this.#sim.process]),
      ...this.#replicas.flatMap((r) => (r === undefined ? [] : [r.child.process])),
      ...this.allWorkers.map((w) => w.process),
      ...this.#baselineWorkers.map((w) => w.process),
      ...(this.#ceiling === undefined ? [] : [this.#ceiling.process]),
    ];
    // Only children that have not exited: their PIDs cannot have been reused.
    for (const child of children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      try {
        child.kill("SIGKILL");
      } catch (err) {
        console.error(`loadtest: kill ${child.pid ?? "?"}: ${String(err)}`);
      }
    }
  }
}
