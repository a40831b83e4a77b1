/**
 * `tabby serve` spawned with an IPC channel (demo, load test, chaos runner) exits when its parent goes
 * away, also when the parent went away while the server was still starting: an orderly close and exit 0,
 * where it used to keep running until it reported ready on the closed channel and crashed (exit 1).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { loopbackServeArgs } from "../../src/cli/args.js";
import { seedCluster, startSimulator } from "../../src/sim/index.js";

describe("tabby serve with an IPC parent", () => {
  it("exits when the parent disconnects before the server is ready", async () => {
    const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
    onTestFinished(() => sim.close());
    seedCluster(sim, { nodes: 2, podsPerNode: 1 });
    const dir = await mkdtemp(join(tmpdir(), "tabby-parent-gone-"));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const kubeconfig = join(dir, "kubeconfig");
    await writeFile(kubeconfig, sim.kubeconfigYaml());
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", ...loopbackServeArgs(kubeconfig)],
      { stdio: ["ignore", "ignore", "pipe", "ipc"] },
    );
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    // At once: the server is still loading its code, far from ready.
    child.disconnect();
    expect(await exited).toBe(0);
  }, 30_000);
});
