import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { ManagedProcess } from "./managed-process.js";
import { FatalWaitError, freePorts, waitFor } from "./wait.js";

const execFileAsync = promisify(execFile);

const START_ATTEMPTS = 3;
const READY_TIMEOUT_MS = 30_000;
/** A key outside /registry: kube-apiserver never reads it. */
const MARKER_KEY = "/tabby-integration/compaction-marker";

export interface EtcdServer {
  /** `http://127.0.0.1:PORT` (client URL). */
  readonly url: string;
  readonly process: ManagedProcess;
  /** Runs etcdctl against this server; resolves with its stdout. */
  etcdctl(args: readonly string[]): Promise<string>;
  /**
   * Writes a marker key twice (so the head revision is past every resourceVersion handed out so far),
   * then compacts physically at the head. Watching or continuing from any resourceVersion seen before
   * the call then gives 410 Gone. Returns the compacted revision.
   */
  compact(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts a single-member etcd on free loopback ports with its data in `dir`. Retries with new ports when
 * one was taken between picking and binding.
 */
export async function startEtcd(dir: string, etcdPath: string, etcdctlPath: string): Promise<EtcdServer> {
  const dataDir = path.join(dir, "etcd-data");
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const [clientPort, peerPort] = await freePorts(2);
    const url = `http://127.0.0.1:${clientPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const proc = new ManagedProcess(
      "etcd",
      etcdPath,
      [
        "--name=tabby-integration",
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=tabby-integration=${peerUrl}`,
        "--initial-cluster-state=new",
        "--logger=zap",
        "--log-level=warn",
      ],
      dir,
    );
    try {
      await waitFor(
        async () => {
          if (!proc.isRunning) throw new FatalWaitError(`etcd exited early:\n${proc.outputTail()}`);
          const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
          const body = (await res.json()) as { health?: string };
          return body.health === "true" ? true : undefined;
        },
        { what: `etcd at ${url}`, timeoutMs: READY_TIMEOUT_MS, describeFailure: () => proc.outputTail() },
      );
    } catch (err) {
      lastError = err;
      await proc.stop("SIGKILL");
      if (proc.outputTail().includes("address already in use") && attempt < START_ATTEMPTS) continue;
      throw err;
    }
    return makeEtcdServer(url, proc, etcdctlPath);
  }
  throw new Error("etcd did not start", { cause: lastError });
}

function makeEtcdServer(url: string, proc: ManagedProcess, etcdctlPath: string): EtcdServer {
  const etcdctl = async (args: readonly string[]): Promise<string> => {
    try {
      const { stdout } = await execFileAsync(etcdctlPath, [`--endpoints=${url}`, ...args], {
        env: { ...process.env, ETCDCTL_API: "3" },
        timeout: 30_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      return stdout;
    } catch (err) {
      throw new Error(`etcdctl ${args.join(" ")} failed`, { cause: err });
    }
  };
  return {
    url,
    process: proc,
    etcdctl,
    async compact() {
      // Two writes: a watch from resourceVersion R starts at revision R + 1, and etcd refuses only a
      // start below the compacted revision. With the head at H before the call, compacting at H + 2
      // expires every R <= H.
      let revision = 0;
      for (let i = 0; i < 2; i++) {
        const put = JSON.parse(
          await etcdctl(["put", MARKER_KEY, String(Date.now()), "--write-out=json"]),
        ) as { header?: { revision?: number | string } };
        revision = Number(put.header?.revision);
        if (!Number.isSafeInteger(revision) || revision <= 0)
          throw new Error(`etcdctl put gave no revision: ${JSON.stringify(put)}`);
      }
      await etcdctl(["compact", String(revision), "--physical"]);
      return revision;
    },
    async stop() {
      await proc.stop("SIGTERM", 10_000);
    },
  };
}
