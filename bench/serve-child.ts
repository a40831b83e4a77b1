/**
 * A compiled `tabby serve` child process on 127.0.0.1 for the benchmark scripts: started against a
 * kubeconfig, anonymous agents allowed, ready when /readyz says so.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { freePort } from "../loadtest/harness.js";

const MAIN = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));

export interface ServeChild {
  readonly pid: number;
  /** The agent (WebSocket) port. */
  readonly port: number;
  /** /readyz, /status and /metrics. */
  readonly httpPort: number;
  readonly readySeconds: number;
  /** Kills the server (SIGKILL) and waits for it to exit. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ServeChildOptions {
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** How often /readyz is asked (default 250 ms). */
  readonly pollMs?: number;
  /** The compiled CLI to run (default dist/src/cli/main.js; another build for an A/B comparison). */
  readonly main?: string;
}

/** Starts the server with `nodeOptions` (none: Node's defaults) and waits until it is ready (≤ 300 s). */
export async function startServe(
  kubeconfig: string,
  nodeOptions: readonly string[],
  options: ServeChildOptions = {},
): Promise<ServeChild> {
  const main = options.main ?? MAIN;
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
  const port = await freePort();
  const httpPort = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...nodeOptions,
      main,
      "serve",
      "--kubeconfig",
      kubeconfig,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--http-host",
      "127.0.0.1",
      "--health-port",
      String(httpPort),
      "--metrics-port",
      String(httpPort),
      "--insecure-allow-anonymous",
      "--log-level",
      "error",
    ],
    { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, ...options.env } },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    child.kill("SIGKILL");
    await exited;
  };
  try {
    const pid = child.pid;
    if (pid === undefined) throw new Error("server did not start");
    const t0 = performance.now();
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
      const ok = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (performance.now() - t0 > 300_000) throw new Error("server not ready within 300 s");
      await sleep(options.pollMs ?? 250);
    }
    return { pid, port, httpPort, readySeconds: (performance.now() - t0) / 1000, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
