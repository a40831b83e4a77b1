import { readFile, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { runSim, type Simulator } from "../../src/sim/index.js";

describe("runSim", () => {
  it("starts, seeds, churns, writes a kubeconfig that client-node loads, and stops on abort", async () => {
    const controller = new AbortController();
    let ready!: (info: { url: string; kubeconfigPath: string; sim: Simulator }) => void;
    const isReady = new Promise<{ url: string; kubeconfigPath: string; sim: Simulator }>((r) => (ready = r));
    const running = runSim({
      nodes: 3,
      podsPerNode: 4,
      churnPerSecond: 100,
      signal: controller.signal,
      logger: pino({ level: "silent" }),
      onReady: ready,
    });
    try {
      const { url, kubeconfigPath, sim } = await isReady;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const text = await readFile(kubeconfigPath, "utf8");
      const kc = new KubeConfig();
      kc.loadFromString(text);
      const nodes = await kc.makeApiClient(CoreV1Api).listNode();
      expect(nodes.items).toHaveLength(3);
      const rv = Number(sim.resourceVersion);
      await expect.poll(() => Number(sim.resourceVersion), { timeout: 5000 }).toBeGreaterThan(rv); // churning
      controller.abort();
      await running;
      await expect(fetch(`${url}/api`)).rejects.toThrow();
      await rm(dirname(kubeconfigPath), { recursive: true, force: true });
    } finally {
      controller.abort();
      await running;
    }
  });
});
