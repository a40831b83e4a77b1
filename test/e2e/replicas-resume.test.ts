/**
 * Resume on another replica (PROTOCOL.md §5.2) over the whole stack: one simulator, two tabby servers
 * (each with its own datastore watching the simulator), a client synced on A. A dies; the client
 * reconnects to B with the digests of its mirror. B resumes it with only the changes it missed (no
 * snapshot) when it can prove them, and otherwise sends a snapshot that the client diffs, so the agent
 * sees exactly the real changes either way.
 */
import { isDeepStrictEqual } from "node:util";
import { pino } from "pino";
import { Registry } from "prom-client";
import type { Counter } from "prom-client";
import { describe, expect, it, onTestFinished } from "vitest";
import type { ResourceValue } from "../../proto/messages.js";
import { TabbyClient } from "../../src/client/index.js";
import type { Update } from "../../src/client/index.js";
import { workloadEndpointKey } from "../../src/server/datastore/index.js";
import type { KubeObject } from "../../src/server/datastore/types.js";
import { RESUME_STATE_WAIT_MS } from "../../src/server/fanout/options.js";
import { runServer } from "../../src/server/main.js";
import type { RunningServer } from "../../src/server/main.js";
import { ChaosProxy } from "../../src/chaos/proxy.js";
import { kubeConfigFor } from "../../src/sim/kubeconfig.js";
import { seedCluster, startSimulator } from "../../src/sim/index.js";
import type { Simulator } from "../../src/sim/index.js";
import { VIEWS } from "../../src/snapshot/kinds.js";
import { loopbackServeConfig } from "../support/serve-config.js";

const silent = pino({ level: "silent" });

async function replica(
  sim: Simulator,
  settings: Record<string, string> = {},
  upstreamUrl = sim.url,
): Promise<RunningServer> {
  const server = await runServer(loopbackServeConfig({ flushWindowMs: "1", ...settings }), {
    logger: silent,
    kubeConfig: kubeConfigFor(upstreamUrl),
    registry: new Registry(),
  });
  onTestFinished(() => server.destroy());
  return server;
}

/** Resolves when `predicate` holds (checked every 5 ms); rejects after `timeoutMs`. */
async function until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The felix view as a server holds it. */
function viewOf(server: RunningServer): Map<string, ResourceValue> {
  const out = new Map<string, ResourceValue>();
  for (const kind of VIEWS.felix.kinds) {
    for (const e of server.hub.store.entriesOfKind(kind)) out.set(e.key, server.hub.store.valueOf(e.key)!);
  }
  return out;
}

function mirrorOf(client: TabbyClient): Map<string, ResourceValue> {
  const out = new Map<string, ResourceValue>();
  for (const key of client.keys()) out.set(key, client.get(key)!);
  return out;
}

function counter(server: RunningServer, name: string, labels: Record<string, string>): Promise<number> {
  const metric = server.registry.getSingleMetric(name) as Counter | undefined;
  if (metric === undefined) throw new Error(`no metric ${name}`);
  return metric.get().then((m) => {
    const hit = m.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
    return hit?.value ?? 0;
  });
}

interface Stack {
  readonly sim: Simulator;
  readonly a: RunningServer;
  readonly b: RunningServer;
  readonly client: TabbyClient;
  readonly updates: Update[];
  /** Holds the client's discovery until `release`, then answers B only (or the `retarget` address). */
  readonly moveToB: () => { release: () => void; retarget: (url: string) => void };
  /** The TCP proxy between B and the simulator (stall it to hold B behind), when asked for. */
  readonly bUpstream: ChaosProxy | undefined;
}

async function stack(bSettings: Record<string, string> = {}, proxyB = false): Promise<Stack> {
  const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
  onTestFinished(() => sim.close());
  seedCluster(sim, { nodes: 3, podsPerNode: 4 });
  let bUpstream: ChaosProxy | undefined;
  if (proxyB) {
    bUpstream = new ChaosProxy(Number(new URL(sim.url).port));
    await bUpstream.listen();
    const proxy = bUpstream;
    onTestFinished(() => proxy.close());
  }
  const a = await replica(sim);
  const b = await replica(sim, bSettings, bUpstream ? `http://127.0.0.1:${bUpstream.port}` : sim.url);
  await until("both replicas ready", () => a.fanout.isReady() && b.fanout.isReady());
  await until("both replicas equal", () => sameView(viewOf(a), viewOf(b)));
  let servers = [`ws://127.0.0.1:${a.port}`];
  let gate: Promise<void> = Promise.resolve();
  const client = new TabbyClient({
    servers: async () => {
      await gate;
      return servers;
    },
    view: "felix",
    nodeName: "node-0001",
    backoffInitialMs: 10,
    backoffMaxMs: 50,
  });
  onTestFinished(() => client.close());
  const updates: Update[] = [];
  client.on("updates", (batch) => updates.push(...batch));
  client.start();
  await client.synced();
  const moveToB = (): { release: () => void; retarget: (url: string) => void } => {
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    servers = [`ws://127.0.0.1:${b.port}`];
    return { release: () => open(), retarget: (url) => (servers = [url]) };
  };
  return { sim, a, b, client, updates, moveToB, bUpstream };
}

/** Same keys and values (key order inside a value does not count: a patched label lands last). */
function sameView(x: ReadonlyMap<string, ResourceValue>, y: ReadonlyMap<string, ResourceValue>): boolean {
  if (x.size !== y.size) return false;
  for (const [k, v] of x) if (!isDeepStrictEqual(v, y.get(k))) return false;
  return true;
}

/** Changes three pods upstream (two relabelled, one deleted); returns the endpoint keys concerned. */
function changePods(sim: Simulator, tag: string): { updated: string[]; deleted: string } {
  const pods = sim.list("pods").filter((p) => workloadEndpointKey(p) !== null);
  const [p1, p2, p3] = pods as [KubeObject, KubeObject, KubeObject];
  for (const p of [p1, p2]) {
    sim.patch("pods", p.metadata?.namespace, p.metadata?.name ?? "", {
      metadata: { labels: { resumed: tag } },
    });
  }
  sim.remove("pods", p3.metadata?.namespace, p3.metadata?.name ?? "");
  return { updated: [workloadEndpointKey(p1)!, workloadEndpointKey(p2)!], deleted: workloadEndpointKey(p3)! };
}

function labelsOf(v: ResourceValue | undefined): Record<string, string> {
  return (v?.metadata as { labels?: Record<string, string> } | undefined)?.labels ?? {};
}

describe("resume on another replica", () => {
  it("a client synced on A resumes on B with only what it missed: no snapshot, mirror equal to B", async () => {
    const { sim, a, b, client, updates, moveToB } = await stack();
    const before = client.stats;
    expect(before).toMatchObject({ snapshots: 1, resumes: 0 });
    const snapshotsOnB = await counter(b, "tabby_snapshots_generated_total", { view: "felix" });

    const move = moveToB();
    await a.destroy();
    await until("the client to notice", () => client.status.state !== "in-sync");
    // Changes while the client is away: B has them, the client must get exactly these.
    const changed = changePods(sim, "while-away");
    await until(
      "B to have the changes",
      () =>
        b.hub.store.get(changed.deleted) === undefined &&
        changed.updated.every((k) => labelsOf(b.hub.store.valueOf(k)).resumed === "while-away"),
    );
    updates.length = 0;
    move.release();
    await until("the client to get the missed changes", () => updates.length >= 3);
    await until("the client back in sync", () => client.status.state === "in-sync");

    expect(client.stats).toMatchObject({ snapshots: 1, resumes: 1, replicaResumes: 1 });
    expect(await counter(b, "tabby_resumes_total", { view: "felix", origin: "other-replica" })).toBe(1);
    expect(b.fanout.status().counters.resumes).toEqual({ "same-server": 0, "other-replica": 1 });
    expect(await counter(b, "tabby_snapshots_generated_total", { view: "felix" })).toBe(snapshotsOnB);
    // Exactly the real changes reached the agent, and the mirror is B's view.
    expect(updates.map((u) => [u.key, u.value === null]).sort()).toEqual(
      [...changed.updated.map((k) => [k, false]), [changed.deleted, true]].sort(),
    );
    expect(sameView(mirrorOf(client), viewOf(b))).toBe(true);
    expect(client.revision).toBe(b.hub.revision);

    // And it keeps following B live, and a later reconnect to B resumes there as usual.
    updates.length = 0;
    const more = changePods(sim, "after");
    await until("the live change", () => updates.some((u) => u.key === more.deleted));
    expect(sameView(mirrorOf(client), viewOf(b))).toBe(true);
  });

  it("when B cannot prove what the mirror missed (its log compacted), a snapshot and a diff: zero spurious updates", async () => {
    const { sim, a, b, client, updates, moveToB } = await stack({ maxLogEntries: "1" });
    const move = moveToB();
    await a.destroy();
    await until("the client to notice", () => client.status.state !== "in-sync");
    const changed = changePods(sim, "while-away");
    await until(
      "B to have the changes",
      () =>
        b.hub.store.get(changed.deleted) === undefined &&
        changed.updated.every((k) => labelsOf(b.hub.store.valueOf(k)).resumed === "while-away"),
    );
    updates.length = 0;
    move.release();
    await until("the client back in sync on B", () => client.stats.snapshots === 2);
    await until("the client in sync", () => client.status.state === "in-sync");

    expect(client.stats).toMatchObject({ snapshots: 2, resumes: 0, replicaResumes: 0 });
    const refusals =
      (await counter(b, "tabby_resume_refusals_total", { reason: "compacted" })) +
      (await counter(b, "tabby_resume_refusals_total", { reason: "unknown-state" }));
    expect(refusals).toBe(1);
    const shown = b.fanout.status().counters.resumeRefusals;
    expect((shown.compacted ?? 0) + (shown["unknown-state"] ?? 0)).toBe(1);
    expect(await counter(b, "tabby_resumes_total", { view: "felix", origin: "other-replica" })).toBe(0);
    // The snapshot's diff shows the agent the three real changes and nothing else.
    expect(updates.map((u) => [u.key, u.value === null]).sort()).toEqual(
      [...changed.updated.map((k) => [k, false]), [changed.deleted, true]].sort(),
    );
    expect(sameView(mirrorOf(client), viewOf(b))).toBe(true);
  });
  it("a client whose server restarted resumes on the new process (it listed the same state), no snapshot", async () => {
    const { sim, a, client, updates, moveToB, b } = await stack();
    // B plays no part here: the client goes back to A's successor.
    await b.destroy();
    const move = moveToB();
    await a.destroy();
    await until("the client to notice", () => client.status.state !== "in-sync");
    const restarted = await replica(sim);
    await until("the new process ready", () => restarted.fanout.isReady());
    // Changes after the restart, while the client is still away: the new process has them in its log.
    const changed = changePods(sim, "after-restart");
    await until(
      "the new process to have the changes",
      () =>
        restarted.hub.store.get(changed.deleted) === undefined &&
        changed.updated.every((k) => labelsOf(restarted.hub.store.valueOf(k)).resumed === "after-restart"),
    );
    updates.length = 0;
    move.retarget(`ws://127.0.0.1:${restarted.port}`);
    move.release();
    await until("the client to get the missed changes", () => updates.length >= 3);
    await until("the client back in sync", () => client.status.state === "in-sync");
    expect(client.stats).toMatchObject({ snapshots: 1, resumes: 1, replicaResumes: 1 });
    expect(await counter(restarted, "tabby_resumes_total", { view: "felix", origin: "other-replica" })).toBe(
      1,
    );
    expect(updates.map((u) => [u.key, u.value === null]).sort()).toEqual(
      [...changed.updated.map((k) => [k, false]), [changed.deleted, true]].sort(),
    );
    expect(sameView(mirrorOf(client), viewOf(restarted))).toBe(true);
  });

  it("a client ahead of B (B's upstream held back) waits for B to reach its state, then resumes: no snapshot", async () => {
    const { sim, a, b, client, updates, moveToB, bUpstream } = await stack({}, true);
    const snapshotsOnB = await counter(b, "tabby_snapshots_generated_total", { view: "felix" });
    bUpstream!.stall(true);
    const changed = changePods(sim, "ahead");
    await until("the client to get the changes from A", () => client.get(changed.deleted) === undefined);
    await until("every change", () =>
      changed.updated.every((k) => labelsOf(client.get(k)).resumed === "ahead"),
    );
    expect(b.hub.store.get(changed.deleted)).toBeDefined();

    updates.length = 0;
    const move = moveToB();
    await a.destroy();
    await until("the client to notice", () => client.status.state !== "in-sync");
    move.release();
    await until("B to hold the resume", () => b.fanout.resumesWaiting === 1);
    bUpstream!.stall(false);
    await until("the client back in sync", () => client.status.state === "in-sync");

    expect(client.stats).toMatchObject({ snapshots: 1, resumes: 1, replicaResumes: 1 });
    expect(await counter(b, "tabby_resume_state_waits_total", { outcome: "resumed" })).toBe(1);
    expect(await counter(b, "tabby_resume_refusals_total", { reason: "unknown-state" })).toBe(0);
    expect(await counter(b, "tabby_snapshots_generated_total", { view: "felix" })).toBe(snapshotsOnB);
    // The client already had everything B reached: nothing for the agent, and the mirror is B's view.
    expect(updates).toEqual([]);
    expect(sameView(mirrorOf(client), viewOf(b))).toBe(true);
    expect(b.fanout.resumesWaiting).toBe(0);
  });

  it("a client ahead of a B that does not catch up in time gets B's snapshot after the wait, then follows B", async () => {
    // B's --resume-state-wait-ms, well below the default (RESUME_STATE_WAIT_MS): the setting is honoured.
    const waitMs = 1000;
    const { sim, a, b, client, moveToB, bUpstream } = await stack(
      { resumeStateWaitMs: String(waitMs) },
      true,
    );
    bUpstream!.stall(true);
    const changed = changePods(sim, "ahead");
    await until("the client to get the changes from A", () => client.get(changed.deleted) === undefined);
    const move = moveToB();
    await a.destroy();
    await until("the client to notice", () => client.status.state !== "in-sync");
    move.release();
    await until("B to hold the resume", () => b.fanout.resumesWaiting === 1);
    const heldAt = Date.now();
    await until("the snapshot", () => client.stats.snapshots === 2, 3 * waitMs);
    expect(Date.now() - heldAt).toBeGreaterThanOrEqual(waitMs - 200);
    expect(Date.now() - heldAt).toBeLessThan(RESUME_STATE_WAIT_MS);
    expect(await counter(b, "tabby_resume_state_waits_total", { outcome: "snapshot" })).toBe(1);
    expect(await counter(b, "tabby_resume_refusals_total", { reason: "unknown-state" })).toBe(1);
    expect(client.stats).toMatchObject({ resumes: 0, replicaResumes: 0 });

    // B's upstream comes back: the client follows B to the state A had shown it.
    bUpstream!.stall(false);
    await until("B to have the changes", () => b.hub.store.get(changed.deleted) === undefined);
    await until("the client to follow B", () => client.get(changed.deleted) === undefined);
    await until("the mirror equal to B's view", () => sameView(mirrorOf(client), viewOf(b)));
    expect(b.fanout.resumesWaiting).toBe(0);
  });

  it("a client that goes away while B holds its resume leaves no wait behind and costs B no snapshot", async () => {
    const { sim, a, b, client, moveToB, bUpstream } = await stack({}, true);
    const snapshotsOnB = await counter(b, "tabby_snapshots_generated_total", { view: "felix" });
    bUpstream!.stall(true);
    const changed = changePods(sim, "ahead");
    await until("the client to get the changes from A", () => client.get(changed.deleted) === undefined);
    const move = moveToB();
    await a.destroy();
    await until("the client to notice", () => client.status.state !== "in-sync");
    move.release();
    await until("B to hold the resume", () => b.fanout.resumesWaiting === 1);
    await client.close();
    // B's head moves on: the wait of the closed session is dropped, without a decision.
    bUpstream!.stall(false);
    await until("B to have the changes", () => b.hub.store.get(changed.deleted) === undefined);
    await until("the wait dropped", () => b.fanout.resumesWaiting === 0);
    expect(await counter(b, "tabby_resume_state_waits_total", { outcome: "resumed" })).toBe(0);
    expect(await counter(b, "tabby_resume_state_waits_total", { outcome: "snapshot" })).toBe(0);
    expect(await counter(b, "tabby_snapshots_generated_total", { view: "felix" })).toBe(snapshotsOnB);
  });
});
