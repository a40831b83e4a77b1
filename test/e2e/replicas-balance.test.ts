/**
 * Three replicas (Hub + Datastore + FanoutServer, as main.ts wires them) over one simulator, with real
 * clients: a replica over its fair share sends `move` with a hint, the clients go to the hinted replicas,
 * the counts converge and nobody is moved twice; a draining replica (SIGTERM) moves its sessions to the
 * others before it closes (clients without a mirror leave with the view's digests and resume there too),
 * and a rolling restart shows the agents no spurious update.
 */
import { pino } from "pino";
import { Registry } from "prom-client";
import { describe, expect, it, onTestFinished } from "vitest";
import type { ResourceValue } from "../../proto/messages.js";
import type { TabbyClient, Update } from "../../src/client/index.js";
import { Datastore } from "../../src/server/datastore/index.js";
import { FanoutServer } from "../../src/server/fanout/index.js";
import { SERVED_KINDS } from "../../src/server/main.js";
import type { BalancerOptions } from "../../src/server/replicas/balancer.js";
import type { PeerDirectory, ReplicaPeer } from "../../src/server/replicas/peers.js";
import { seedCluster, startSimulator } from "../../src/sim/index.js";
import type { Simulator } from "../../src/sim/index.js";
import { deepEqual } from "../../src/snapshot/deep-equal.js";
import { Hub } from "../../src/snapshot/hub.js";
import { makeClient, until } from "./client-test-utils.js";

const quiet = pino({ level: "silent" });

/** Sessions past the hello (what the balancer counts). */
function established(fanout: FanoutServer): number {
  return fanout.establishedSessions;
}

interface Replica {
  readonly url: string;
  readonly fanout: FanoutServer;
  close(drainMs: number): Promise<void>;
}

/**
 * The replicas of one "Service": each replica's directory lists every replica that runs, ready as its
 * readiness says, with its session count read now (a static directory that asks its peers).
 */
class Cluster {
  readonly replicas: Replica[] = [];
  /** Replicas left out of every directory (not yet part of the Service). */
  readonly hidden = new Set<string>();

  directoryFor(self: () => string | undefined): PeerDirectory {
    const peers = (): ReplicaPeer[] =>
      this.replicas
        .filter((r) => !this.hidden.has(r.url))
        .map((r) => ({
          url: r.url,
          ready: r.fanout.isReady(),
          self: r.url === self(),
          sessions: established(r.fanout),
          sessionsReadAtMs: Date.now(),
        }));
    return {
      peers,
      readyReplicas: () => Math.max(1, peers().filter((p) => p.ready).length),
      onChange: () => () => undefined,
    };
  }

  async start(sim: Simulator, balancer: BalancerOptions): Promise<Replica> {
    const self: { url?: string } = {};
    const hub = new Hub();
    const fanout = new FanoutServer({
      hub,
      logger: quiet,
      registry: new Registry(),
      options: { flushWindowMs: 2 },
      peers: this.directoryFor(() => self.url),
      balancer,
    });
    const datastore = new Datastore({
      kubeConfig: sim.kubeConfig(),
      sink: fanout,
      logger: quiet,
      registry: new Registry(),
      options: { backoffInitialMs: 20, backoffMaxMs: 200, kinds: SERVED_KINDS },
    });
    const address = await fanout.listen(0, "127.0.0.1");
    const url = `ws://127.0.0.1:${address.port}`;
    self.url = url;
    datastore.start();
    const replica: Replica = {
      url,
      fanout,
      close: async (drainMs) => {
        await fanout.close({ drainMs });
        await datastore.close();
        this.replicas.splice(this.replicas.indexOf(replica), 1);
      },
    };
    onTestFinished(async () => {
      await fanout.destroy();
      await datastore.close();
    });
    await until(() => fanout.isReady(), 10_000, "replica ready");
    this.replicas.push(replica);
    return replica;
  }

  counts(): number[] {
    return this.replicas.map((r) => established(r.fanout));
  }
}

/** An agent: a mirror client that records its move hints and flags every update that changes nothing. */
function agent(servers: () => readonly string[], node: string) {
  const hints: (string | undefined)[] = [];
  const moveReasons: string[] = [];
  const client: TabbyClient = makeClient({
    servers: () => Promise.resolve(servers()),
    view: "felix",
    nodeName: node,
    backoffInitialMs: 20,
    backoffMaxMs: 200,
    logger: {
      debug: () => undefined,
      warn: () => undefined,
      error: () => undefined,
      info: (obj, msg) => {
        if (msg === "server asked the client to move") {
          const m = obj as { hint?: string; reason: string };
          hints.push(m.hint);
          moveReasons.push(m.reason);
        }
      },
    },
  });
  const seen = new Map<string, ResourceValue>();
  const spurious: Update[] = [];
  let batches = 0;
  client.on("updates", (batch) => {
    batches++;
    for (const u of batch) {
      const before = seen.get(u.key);
      // A real change: a new key, a changed value, or a delete of a held key.
      if (u.value === null ? before === undefined : before !== undefined && deepEqual(before, u.value)) {
        spurious.push(u);
      }
      if (u.value === null) seen.delete(u.key);
      else seen.set(u.key, u.value);
    }
  });
  const closeCodes: number[] = [];
  client.on("status", (s) => {
    if (s.state === "disconnected" && s.closeCode !== undefined) closeCodes.push(s.closeCode);
  });
  client.start();
  return {
    client,
    hints,
    moveReasons,
    spurious,
    closeCodes,
    get batches() {
      return batches;
    },
  };
}

async function startSim(): Promise<Simulator> {
  const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
  onTestFinished(() => sim.close());
  seedCluster(sim, { nodes: 12, podsPerNode: 3, seed: 7 });
  return sim;
}

const FAST: BalancerOptions = { intervalMs: 50, moveDelayMaxMs: 50, maxMoveRatio: 0.25, moveGraceMs: 3000 };

describe("replicas: fair share and move hints", () => {
  it("a replica over its share moves sessions to the hinted replicas; counts converge, nobody moved twice", async () => {
    const sim = await startSim();
    const cluster = new Cluster();
    const a = await cluster.start(sim, FAST);
    const b = await cluster.start(sim, FAST);
    const c = await cluster.start(sim, FAST);
    // Every agent starts on A (its list has only A; B and C are not in the Service yet), then B and C
    // join and the agents learn the whole Service.
    cluster.hidden.add(b.url).add(c.url);
    let list: readonly string[] = [a.url];
    const agents = Array.from({ length: 12 }, (_, i) => agent(() => list, `node-${i}`));
    await until(() => agents.every((g) => g.client.isInSync), 15_000, "agents in sync on A");
    expect(a.fanout.status().balance?.moves.movesSent.rebalance).toBe(0);
    list = [a.url, b.url, c.url];
    cluster.hidden.clear();
    // 12 sessions over 3 replicas: share 4, limit 5. A sheds 8, spread over B and C.
    await until(
      () => {
        const counts = cluster.counts();
        const balance = a.fanout.status().balance;
        return (
          counts.every((n) => n >= 3 && n <= 5) &&
          agents.every((g) => g.client.isInSync) &&
          balance?.isShedding === false &&
          balance.leaving === 0 &&
          // A reads the peers' loads by polling them: wait until it has read the converged ones.
          balance.connected === 12
        );
      },
      15_000,
      "counts converged",
    );
    const counts = cluster.counts();
    expect(counts.reduce((x, y) => x + y, 0)).toBe(12);
    expect(Math.max(...counts)).toBeLessThanOrEqual(5);
    const moved = agents.filter((g) => g.client.stats.moves > 0);
    expect(moved.length).toBe(12 - (counts[0] ?? 0));
    for (const g of agents) expect(g.client.stats.moves).toBeLessThanOrEqual(1);
    for (const g of moved) {
      expect(g.moveReasons).toEqual(["rebalance"]);
      expect([b.url, c.url]).toContain(g.hints[0]);
      expect(g.client.status.server).toBe(g.hints[0]); // it went where the hint said
      expect(g.closeCodes).not.toContain(4007); // it left by itself: no forced close
    }
    const balance = a.fanout.status().balance;
    expect(balance).toMatchObject({ share: 4, limit: 5, source: "peers", isShedding: false, leaving: 0 });
    expect(balance).toMatchObject({ total: 12, connected: 12 });
    expect(balance?.moves.movesSent.rebalance).toBe(moved.length);
    expect(balance?.moves.sessionsMoved.rebalance).toBe(moved.length);
    expect(balance?.moves.movesForced).toBe(0);
    // Balanced: no more moves.
    const sent = balance?.moves.movesSent.rebalance;
    await new Promise((r) => setTimeout(r, 300));
    expect(a.fanout.status().balance?.moves.movesSent.rebalance).toBe(sent);
    for (const g of agents) expect(g.spurious).toEqual([]);
  });

  it("SIGTERM: a draining replica moves its sessions to the other ready replicas before it closes", async () => {
    const sim = await startSim();
    const cluster = new Cluster();
    const idle: BalancerOptions = { intervalMs: 0, moveDelayMaxMs: 20, moveGraceMs: 3000 };
    const a = await cluster.start(sim, idle);
    const b = await cluster.start(sim, idle);
    const c = await cluster.start(sim, idle);
    let list: readonly string[] = [a.url];
    const agents = Array.from({ length: 9 }, (_, i) => agent(() => list, `node-${i}`));
    await until(() => agents.every((g) => g.client.isInSync), 15_000, "agents in sync on A");
    list = [a.url, b.url, c.url];
    await a.close(600);
    await until(() => agents.every((g) => g.client.isInSync), 15_000, "agents in sync elsewhere");
    for (const g of agents) {
      expect(g.moveReasons).toEqual(["shutting-down"]);
      expect([b.url, c.url]).toContain(g.hints[0]);
      expect(g.client.status.server).toBe(g.hints[0]);
      expect(g.closeCodes).toEqual([1000]); // it left after the move, before any 4008
      expect(g.spurious).toEqual([]);
    }
    // Spread over both: the hints go to the least loaded.
    const counts = cluster.counts();
    expect(counts.sort()).toEqual([4, 5]);
  });

  it("SIGTERM under churn: clients without a mirror leave with the view's digests and resume elsewhere, no snapshot, no change lost", async () => {
    const sim = await startSim();
    const cluster = new Cluster();
    const idle: BalancerOptions = { intervalMs: 0, moveDelayMaxMs: 20, moveGraceMs: 3000 };
    const a = await cluster.start(sim, idle);
    const b = await cluster.start(sim, idle);
    let list: readonly string[] = [a.url];
    const common = {
      servers: () => Promise.resolve(list),
      view: "felix" as const,
      nodeName: "node-1",
      mirror: false,
      backoffInitialMs: 20,
      backoffMaxMs: 200,
    };
    // One client that decodes the changes, one that only skims their revisions (as load-test agents do).
    const lite = makeClient(common);
    const skim = makeClient({ ...common, decodeDeltas: false });
    const seen: string[] = [];
    lite.on("updates", (batch) => {
      for (const u of batch)
        if (u.kind === "GlobalNetworkSet") seen.push(`${u.key}${u.value === null ? " -" : ""}`);
    });
    lite.start();
    skim.start();
    await until(() => lite.isInSync && skim.isInSync, 15_000, "clients in sync on A");
    let n = 0;
    const churn = setInterval(() => {
      sim.create("globalnetworksets.crd.projectcalico.org", {
        metadata: { name: `churn-${n++}` },
        spec: { nets: [`10.9.${n % 250}.0/24`] },
      });
    }, 10);
    onTestFinished(() => clearInterval(churn));
    await until(() => n >= 20, 5_000, "churn under way");
    list = [a.url, b.url];
    await a.close(400);
    await until(() => n >= 60, 5_000, "churn after the move");
    clearInterval(churn);
    const last = `GlobalNetworkSet/churn-${n - 1}`;
    await until(() => seen.includes(last) && skim.isInSync, 10_000, "last change delivered on B");
    for (const c of [lite, skim]) {
      expect(c.status.server).toBe(b.url);
      expect(c.stats.moves).toBe(1);
      expect(c.stats.snapshots).toBe(1); // the first one, on A
      expect(c.stats.replicaResumes).toBe(1);
    }
    // Every change exactly once, in order: nothing lost between A's `left` and B's catch-up, nothing twice.
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => `GlobalNetworkSet/churn-${i}`));
  });

  it("a drain leaves a session that is already moving to its move: it leaves, not closed with 4008", async () => {
    const sim = await startSim();
    const cluster = new Cluster();
    // Rebalance moves wait up to 2 s before the client leaves: the drain below starts while they wait.
    const slow: BalancerOptions = { ...FAST, moveDelayMaxMs: 2000 };
    const a = await cluster.start(sim, slow);
    const b = await cluster.start(sim, slow);
    cluster.hidden.add(b.url);
    let list: readonly string[] = [a.url];
    const agents = Array.from({ length: 6 }, (_, i) => agent(() => list, `node-${i}`));
    await until(() => agents.every((g) => g.client.isInSync), 15_000, "agents in sync on A");
    list = [a.url, b.url];
    cluster.hidden.clear();
    // A client told to move for rebalance, and still on A while it waits out its delay.
    await until(
      () => agents.some((g) => g.moveReasons.includes("rebalance") && g.client.status.server === a.url),
      10_000,
      "a rebalance move in flight",
    );
    await a.close(100);
    await until(
      () => agents.every((g) => g.client.isInSync && g.client.status.server === b.url),
      15_000,
      "every agent on B",
    );
    for (const g of agents) expect(g.closeCodes.filter((code) => code === 4008)).toEqual([]);
  });

  it("a rolling restart under churn: every replica drains in turn, the agents see no spurious update", async () => {
    const sim = await startSim();
    const cluster = new Cluster();
    const opts: BalancerOptions = { ...FAST, moveDelayMaxMs: 20 };
    for (let i = 0; i < 3; i++) await cluster.start(sim, opts);
    const list = (): readonly string[] => cluster.replicas.map((r) => r.url);
    const agents = Array.from({ length: 9 }, (_, i) => agent(list, `node-${i}`));
    await until(() => agents.every((g) => g.client.isInSync), 15_000, "agents in sync");
    let n = 0;
    const churn = setInterval(() => {
      sim.create("globalnetworksets.crd.projectcalico.org", {
        metadata: { name: `churn-${n++}` },
        spec: { nets: [`10.9.${n % 250}.0/24`] },
      });
    }, 20);
    onTestFinished(() => clearInterval(churn));
    for (let round = 0; round < 3; round++) {
      const old = cluster.replicas[0];
      if (old === undefined) throw new Error("no replica");
      await old.close(300);
      await cluster.start(sim, opts);
      await until(() => agents.every((g) => g.client.isInSync), 15_000, "agents in sync after a restart");
    }
    clearInterval(churn);
    const last = `GlobalNetworkSet/churn-${n - 1}`;
    await until(() => agents.every((g) => g.client.get(last) !== undefined), 10_000, "last change delivered");
    for (const g of agents) {
      expect(g.spurious).toEqual([]);
      expect(g.closeCodes.filter((code) => code === 4008)).toEqual([]);
      expect(g.client.size).toBe(agents[0]?.client.size);
    }
    expect(agents.some((g) => g.moveReasons.includes("shutting-down"))).toBe(true);
  });
});
