/**
 * The real-cluster harness of the integration tier: etcd and kube-apiserver 1.20.2 (built and cached by
 * scripts/provision-kube-apiserver.sh), both on free loopback ports, with their data in a temp dir.
 * See docs/INTEGRATION.md.
 */
import { constants, accessSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { installCalicoCrds } from "./harness/calico-crds.js";
import { startEtcd } from "./harness/etcd.js";
import type { EtcdServer } from "./harness/etcd.js";
import { startApiServer } from "./harness/kube-apiserver.js";
import type { ApiServerSpec } from "./harness/kube-apiserver.js";
import { kubeRequest, kubeRequestRaw } from "./harness/kube-request.js";
import type { KubeEndpoint, KubeResponse } from "./harness/kube-request.js";
import type { ManagedProcess } from "./harness/managed-process.js";
import { generateCredentials } from "./harness/pki.js";
import { freePorts } from "./harness/wait.js";

export { KubeApiError } from "./harness/kube-request.js";
export type { KubeResponse } from "./harness/kube-request.js";

export const KUBE_APISERVER_VERSION = "1.20.2";

/** The harness cannot start: a binary is missing. */
export class IntegrationSetupError extends Error {
  override readonly name = "IntegrationSetupError";
  readonly code = "ERR_INTEGRATION_SETUP";
}

export interface ClusterOptions {
  /**
   * kube-apiserver's watch cache (default true, as in production). With false, every watch goes to etcd
   * directly, so a watch from a compacted resourceVersion gets 410 Gone (the watch cache serves watches
   * from its own window and hides etcd compaction).
   */
  readonly isWatchCacheEnabled?: boolean;
  /** More kube-apiserver flags. */
  readonly extraApiServerArgs?: readonly string[];
}

export interface RestartOptions {
  /** How to stop the running kube-apiserver. Default SIGTERM (graceful); SIGKILL is a crash. */
  readonly signal?: "SIGTERM" | "SIGKILL";
  /**
   * After SIGTERM, how long to wait for the exit before SIGKILL. Default 5000. kube-apiserver 1.20 does
   * not end open watches when terminating: with watches open it waits for them (up to a minute), so a
   * graceful restart mid-watch ends with SIGKILL after this grace period (the listener is closed at once).
   */
  readonly gracePeriodMs?: number;
  /** Runs while kube-apiserver is down (etcd keeps running), e.g. to change or compact etcd. */
  readonly whileDown?: () => Promise<void>;
}

export interface Cluster {
  /** `https://127.0.0.1:PORT` */
  readonly url: string;
  /** Bearer token of an admin (group system:masters). */
  readonly token: string;
  /** PEM file of the CA (the self-signed serving certificate). */
  readonly caPath: string;
  /** PEM private key kube-apiserver signs ServiceAccount tokens with (tests forge expired tokens). */
  readonly serviceAccountKeyPath: string;
  /** etcd client URL (`http://127.0.0.1:PORT`). */
  readonly etcdUrl: string;
  kubeConfig(): KubeConfig;
  kubeconfigYaml(): string;
  /** Raw JSON request with the admin token; non-2xx rejects with a KubeApiError (`status`). */
  request<T = unknown>(method: string, apiPath: string, body?: unknown, contentType?: string): Promise<T>;
  /** Raw JSON request that resolves with any status. */
  requestRaw(method: string, apiPath: string, body?: unknown, contentType?: string): Promise<KubeResponse>;
  /** Creates the Calico CRDs for Kubernetes 1.20 and waits until they are Established; their plurals. */
  installCalicoCrds(): Promise<string[]>;
  /**
   * Compacts etcd at its head (after writing a marker key outside /registry, so the head is past every
   * resourceVersion handed out before the call): watching or continuing from an older resourceVersion
   * gives 410 Gone. Resolves with the compacted revision.
   */
  compactEtcd(): Promise<number>;
  /** Runs etcdctl against the cluster's etcd; resolves with stdout. */
  etcdctl(args: readonly string[]): Promise<string>;
  /** Stops kube-apiserver (by PID) and starts it again on the same port with the same etcd. */
  restartApiServer(options?: RestartOptions): Promise<void>;
  /** PIDs of the running etcd and kube-apiserver (for checks that nothing is left behind). */
  pids(): { etcd: number; apiServer: number };
  /** Stops both processes and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Where scripts/provision-kube-apiserver.sh caches the binary. */
export function kubeApiServerPath(): string {
  const cacheDir = process.env.TABBY_CACHE_DIR ?? path.join(os.homedir(), ".cache", "tabby");
  return path.join(cacheDir, `kube-apiserver-${KUBE_APISERVER_VERSION}`, "kube-apiserver");
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findOnPath(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter), "/usr/bin", "/usr/local/bin"];
  return dirs
    .filter((d) => d !== "")
    .map((d) => path.join(d, name))
    .find(isExecutable);
}

const PROVISION_HINT = "run `sudo bash scripts/provision-kube-apiserver.sh` (see docs/INTEGRATION.md)";

function requireBinaries(): { apiServer: string; etcd: string; etcdctl: string } {
  const apiServer = kubeApiServerPath();
  if (!isExecutable(apiServer))
    throw new IntegrationSetupError(
      `kube-apiserver ${KUBE_APISERVER_VERSION} not found at ${apiServer}: ${PROVISION_HINT}`,
    );
  const etcd = findOnPath("etcd");
  const etcdctl = findOnPath("etcdctl");
  if (etcd === undefined || etcdctl === undefined)
    throw new IntegrationSetupError(`etcd/etcdctl not found on PATH: ${PROVISION_HINT}`);
  return { apiServer, etcd, etcdctl };
}

/** Temp dirs of clusters not stopped yet: removed on process exit. */
const liveDirs = new Set<string>();
let isExitHookInstalled = false;
function trackDir(dir: string): void {
  if (!isExitHookInstalled) {
    isExitHookInstalled = true;
    // Runs after the managed-process hook killed etcd and kube-apiserver (registered earlier, on spawn
    // of the first process) or before it; removing files under a live process is harmless either way.
    process.once("exit", () => {
      for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  liveDirs.add(dir);
}

const API_SERVER_START_ATTEMPTS = 3;
const DEFAULT_GRACE_PERIOD_MS = 5_000;

/** Starts etcd and kube-apiserver and waits until /readyz is ok (about 4 s warm). */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const binaries = requireBinaries();
  const baseDir = process.env.TABBY_INTEGRATION_RUN_DIR ?? os.tmpdir();
  const dir = await mkdtemp(path.join(baseDir, "tabby-kube-"));
  trackDir(dir);
  let etcd: EtcdServer | undefined;
  let apiServer: ManagedProcess | undefined;
  try {
    const credentials = await generateCredentials(dir);
    const ca = await readFile(credentials.certPath, "utf8");
    etcd = await startEtcd(dir, binaries.etcd, binaries.etcdctl);
    let spec: ApiServerSpec | undefined;
    let endpoint: KubeEndpoint | undefined;
    for (let attempt = 1; apiServer === undefined; attempt++) {
      const [port] = await freePorts(1);
      spec = {
        binaryPath: binaries.apiServer,
        dir,
        port: port!,
        etcdUrl: etcd.url,
        credentials,
        isWatchCacheEnabled: options.isWatchCacheEnabled ?? true,
        extraArgs: options.extraApiServerArgs ?? [],
      };
      endpoint = { url: `https://127.0.0.1:${port}`, token: credentials.adminToken, ca };
      try {
        apiServer = await startApiServer(spec, endpoint);
      } catch (err) {
        const isPortTaken = err instanceof Error && err.message.includes("address already in use");
        if (!isPortTaken || attempt >= API_SERVER_START_ATTEMPTS) throw err;
      }
    }
    return makeCluster(dir, etcd, apiServer, spec!, endpoint!, credentials.certPath);
  } catch (err) {
    await apiServer?.stop("SIGKILL");
    await etcd?.process.stop("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    throw err;
  }
}

function makeCluster(
  dir: string,
  etcd: EtcdServer,
  firstApiServer: ManagedProcess,
  spec: ApiServerSpec,
  endpoint: KubeEndpoint,
  caPath: string,
): Cluster {
  let apiServer = firstApiServer;
  let stopping: Promise<void> | undefined;
  let restarting: Promise<void> = Promise.resolve();

  const kubeconfigYaml = (): string =>
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "tabby-integration",
          cluster: {
            server: endpoint.url,
            "certificate-authority-data": Buffer.from(readFileSync(caPath)).toString("base64"),
          },
        },
      ],
      users: [{ name: "tabby-admin", user: { token: endpoint.token } }],
      contexts: [
        { name: "tabby-integration", context: { cluster: "tabby-integration", user: "tabby-admin" } },
      ],
      "current-context": "tabby-integration",
    });

  const restartOnce = async (options: RestartOptions): Promise<void> => {
    if (stopping !== undefined) throw new Error("cluster is stopped");
    await apiServer.stop(options.signal ?? "SIGTERM", options.gracePeriodMs ?? DEFAULT_GRACE_PERIOD_MS);
    await options.whileDown?.();
    apiServer = await startApiServer(spec, endpoint);
  };

  return {
    url: endpoint.url,
    token: endpoint.token,
    caPath,
    serviceAccountKeyPath: spec.credentials.serviceAccountKeyPath,
    etcdUrl: etcd.url,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromString(kubeconfigYaml());
      return kc;
    },
    kubeconfigYaml,
    request: <T>(method: string, apiPath: string, body?: unknown, contentType?: string) =>
      kubeRequest<T>(endpoint, method, apiPath, body, contentType === undefined ? {} : { contentType }),
    requestRaw: (method: string, apiPath: string, body?: unknown, contentType?: string) =>
      kubeRequestRaw(endpoint, method, apiPath, body, contentType === undefined ? {} : { contentType }),
    installCalicoCrds: () => installCalicoCrds(endpoint),
    compactEtcd: () => etcd.compact(),
    etcdctl: (args) => etcd.etcdctl(args),
    restartApiServer(options = {}) {
      // Serialised: a second restart waits for the first.
      const next = restarting.then(() => restartOnce(options));
      // The caller gets the error through `next`; the chain only has to stay usable for the next restart.
      restarting = next.catch(() => undefined);
      return next;
    },
    pids: () => ({ etcd: etcd.process.pid, apiServer: apiServer.pid }),
    stop() {
      stopping ??= (async () => {
        await restarting;
        try {
          await apiServer.stop("SIGTERM", DEFAULT_GRACE_PERIOD_MS);
        } finally {
          await etcd.stop();
          await rm(dir, { recursive: true, force: true });
          liveDirs.delete(dir);
        }
      })();
      return stopping;
    },
  };
}
