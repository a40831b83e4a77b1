/**
 * `tabby serve` is secure by default: with no client authentication configured it refuses to start
 * (exit 2, naming the setting) unless given --insecure-allow-anonymous, which then starts it with a
 * warning; TLS files that cannot be used stop the start naming their setting.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it, onTestFinished } from "vitest";
import { spawnTabby } from "../../src/cli/ipc.js";
import { createTestPki } from "../support/pki.js";
import { startSimulator } from "../../src/sim/index.js";

const run = promisify(execFile);

/** A simulator (closed when the test finishes) and a kubeconfig file for it. */
async function simWithKubeconfig(): Promise<{ kubeconfig: string }> {
  const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
  onTestFinished(() => sim.close());
  const dir = await mkdtemp(path.join(tmpdir(), "tabby-serve-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const kubeconfig = path.join(dir, "kubeconfig");
  await writeFile(kubeconfig, sim.kubeconfigYaml());
  return { kubeconfig };
}

async function serveFails(args: readonly string[]): Promise<{ code: number; stderr: string }> {
  return run(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", ...args]).then(
    () => ({ code: 0, stderr: "" }),
    (e: { code: number; stderr: string }) => e,
  );
}

describe("tabby serve, secure by default", () => {
  it("refuses to start without client authentication, naming --insecure-allow-anonymous", async () => {
    const { kubeconfig } = await simWithKubeconfig();
    const err = await serveFails([
      "--kubeconfig",
      kubeconfig,
      "--port",
      "0",
      "--health-port",
      "0",
      "--metrics-port",
      "0",
    ]);
    expect(err.code).toBe(2);
    expect(err.stderr).toContain("insecure-allow-anonymous");
  }, 60_000);

  it("refuses TLS files that do not form a key pair, naming the setting", async () => {
    const pki = await createTestPki();
    const a = await pki.issue("a", { cn: "a", san: ["IP:127.0.0.1"] });
    const b = await pki.issue("b", { cn: "b", san: ["IP:127.0.0.1"] });
    const { kubeconfig } = await simWithKubeconfig();
    const missing = path.join(pki.dir, "missing.key");
    const ca = path.join(pki.dir, "clients-ca.crt");
    await writeFile(ca, pki.ca.cert);
    const common = ["--kubeconfig", kubeconfig, "--port", "0", "--health-port", "0", "--metrics-port", "0"];
    const auth = ["--client-ca-file", ca, "--client-cn", "typha-client"];
    const mismatch = await serveFails([
      ...common,
      ...auth,
      "--tls-cert-file",
      a.certPath,
      "--tls-key-file",
      b.keyPath,
    ]);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toContain("tlsCertFile");
    const absent = await serveFails([
      ...common,
      ...auth,
      "--tls-cert-file",
      a.certPath,
      "--tls-key-file",
      missing,
    ]);
    expect(absent.code).toBe(2);
    expect(absent.stderr).toContain("tlsKeyFile");
  }, 60_000);

  it("starts with --insecure-allow-anonymous as a bare flag", async () => {
    const { kubeconfig } = await simWithKubeconfig();
    const server = await spawnTabby([
      "serve",
      "--kubeconfig",
      kubeconfig,
      "--host",
      "127.0.0.1",
      "--http-host",
      "127.0.0.1",
      "--port",
      "0",
      "--health-port",
      "0",
      "--metrics-port",
      "0",
      "--insecure-allow-anonymous",
    ]);
    try {
      expect(server.ready.port).toBeGreaterThan(0);
    } finally {
      await server.stop();
    }
  }, 60_000);
});
