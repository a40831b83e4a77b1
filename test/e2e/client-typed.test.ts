/**
 * The typed client against the whole stack: simulator → tabby server → client. The example agent
 * (examples/felix-agent.ts) follows the felix view through the typed mirror and the async iterator.
 */
import { pino } from "pino";
import { Registry } from "prom-client";
import { describe, expect, it, onTestFinished } from "vitest";
import { runFelixAgent } from "../../examples/felix-agent.js";
import type { AgentState } from "../../examples/felix-agent.js";
import { TabbyClient } from "../../src/client/index.js";
import type { IPPool } from "../../src/client/index.js";
import { runServer } from "../../src/server/main.js";
import { seedCluster, startSimulator } from "../../src/sim/index.js";
import type { Simulator } from "../../src/sim/index.js";
import type { KubeObject } from "../../src/server/datastore/types.js";
import { loopbackServeConfig } from "../support/serve-config.js";

async function stack(): Promise<{ sim: Simulator; url: string; nodes: readonly string[] }> {
  const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
  onTestFinished(() => sim.close());
  const { nodes } = seedCluster(sim, { nodes: 3, podsPerNode: 4 });
  const config = loopbackServeConfig({
    flushWindowMs: "1",
  });
  const server = await runServer(config, {
    logger: pino({ level: "silent" }),
    kubeConfig: sim.kubeConfig(),
    registry: new Registry(),
  });
  onTestFinished(() => server.close());
  return { sim, url: `ws://127.0.0.1:${server.port}`, nodes };
}

/** Resolves when `predicate` holds for a state the agent reports; rejects after `timeoutMs`. */
function stateWhere(
  watch: { listeners: ((s: AgentState) => void)[] },
  predicate: (s: AgentState) => boolean,
  timeoutMs = 15_000,
): Promise<AgentState> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("agent state never matched")), timeoutMs);
    watch.listeners.push((s) => {
      if (!predicate(s)) return;
      clearTimeout(timer);
      resolve(s);
    });
  });
}

describe("typed client over a real server", () => {
  it("list() and get() give typed values equal to the simulator's objects", async () => {
    const { sim, url } = await stack();
    const client = new TabbyClient({ servers: [url], view: "felix" });
    onTestFinished(() => client.close());
    client.start();
    await client.synced();
    const pools: IPPool[] = client.list("IPPool");
    const simPools = sim.list("ippools") as KubeObject[];
    expect(pools.map((p) => [p.metadata.name, p.spec.cidr]).sort()).toEqual(
      simPools.map((p) => [p.metadata?.name, (p.spec as { cidr: string }).cidr]).sort(),
    );
    const first = pools[0]!;
    expect(client.get(`IPPool/${first.metadata.name}`)?.spec.cidr).toBe(first.spec.cidr);
    const weps = client.list("WorkloadEndpoint");
    expect(weps.length).toBeGreaterThan(0);
    for (const w of weps) expect(w.spec.interfaceName).toMatch(/^cali[0-9a-f]{11}$/);
  });

  it("the example agent follows changes through the async iterator and stops on abort", async () => {
    const { sim, url, nodes } = await stack();
    const watch = { listeners: [] as ((s: AgentState) => void)[] };
    const abort = new AbortController();
    const node = nodes[0]!;
    const done = runFelixAgent({
      servers: [url],
      nodeName: node,
      signal: abort.signal,
      onState: (s) => {
        for (const l of watch.listeners) l(s);
      },
    });
    onTestFinished(() => abort.abort());
    const initial = await stateWhere(watch, (s) => s.pools.size > 0 && s.localEndpoints.size > 0);
    const expectedLocal = (sim.list("pods") as KubeObject[]).filter(
      (p) =>
        (p.spec as { nodeName?: string; hostNetwork?: boolean }).nodeName === node &&
        (p.spec as { hostNetwork?: boolean }).hostNetwork !== true,
    ).length;
    expect(initial.localEndpoints.size).toBe(expectedLocal);

    sim.create("ippools", { metadata: { name: "added-by-test" }, spec: { cidr: "10.200.0.0/16" } });
    await stateWhere(watch, (s) => s.pools.get("added-by-test") === "10.200.0.0/16");
    const pool = sim
      .list("ippools")
      .find((p) => (p as KubeObject).metadata?.name === "added-by-test") as KubeObject;
    sim.update("ippools", { ...pool, spec: { cidr: "10.200.0.0/16", disabled: true } });
    await stateWhere(watch, (s) => !s.pools.has("added-by-test"));

    abort.abort();
    const final = await done;
    expect(final.batches).toBeGreaterThanOrEqual(2);
  });
});
