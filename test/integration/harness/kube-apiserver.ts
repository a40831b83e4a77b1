import path from "node:path";
import { kubeRequestRaw } from "./kube-request.js";
import type { KubeEndpoint } from "./kube-request.js";
import { ManagedProcess } from "./managed-process.js";
import type { ApiServerCredentials } from "./pki.js";
import { FatalWaitError, waitFor } from "./wait.js";

/** Shared cores make a cold start slow; a warm one takes about 4 s. */
const READY_TIMEOUT_MS = 120_000;

export interface ApiServerSpec {
  readonly binaryPath: string;
  /** Working directory (cert-dir lives under it). */
  readonly dir: string;
  readonly port: number;
  readonly etcdUrl: string;
  readonly credentials: ApiServerCredentials;
  /** False: `--watch-cache=false`, watches go straight to etcd (so etcd compaction reaches them). */
  readonly isWatchCacheEnabled: boolean;
  readonly extraArgs: readonly string[];
}

/**
 * The kube-apiserver 1.20 command line: loopback only (no insecure port), the self-signed serving
 * certificate, static token authentication, RBAC, service-account token keys. The ServiceAccount
 * admission plugin is off: no controller-manager runs to create the `default` service accounts and their
 * token secrets, so it would reject every pod.
 */
export function apiServerArgs(spec: ApiServerSpec): string[] {
  const c = spec.credentials;
  return [
    `--etcd-servers=${spec.etcdUrl}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${spec.port}`,
    "--insecure-port=0",
    `--cert-dir=${path.join(spec.dir, "cert-dir")}`,
    `--tls-cert-file=${c.certPath}`,
    `--tls-private-key-file=${c.keyPath}`,
    `--token-auth-file=${c.tokenFilePath}`,
    "--authorization-mode=RBAC",
    `--service-account-key-file=${c.serviceAccountPublicKeyPath}`,
    `--service-account-signing-key-file=${c.serviceAccountKeyPath}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    "--service-cluster-ip-range=10.96.0.0/16",
    "--disable-admission-plugins=ServiceAccount",
    `--watch-cache=${spec.isWatchCacheEnabled ? "true" : "false"}`,
    "--profiling=false",
    ...spec.extraArgs,
  ];
}

/** Starts kube-apiserver and waits until `/readyz` answers 200. Rejects early if the process exits. */
export async function startApiServer(spec: ApiServerSpec, endpoint: KubeEndpoint): Promise<ManagedProcess> {
  const proc = new ManagedProcess("kube-apiserver", spec.binaryPath, apiServerArgs(spec), spec.dir);
  try {
    await waitFor(
      async () => {
        if (!proc.isRunning)
          throw new FatalWaitError(
            `kube-apiserver exited early (${JSON.stringify(proc.exitInfo)}):\n${proc.outputTail()}`,
          );
        const res = await kubeRequestRaw(endpoint, "GET", "/readyz", undefined, { timeoutMs: 5_000 });
        return res.status === 200 ? true : undefined;
      },
      {
        what: `kube-apiserver /readyz at ${endpoint.url}`,
        timeoutMs: READY_TIMEOUT_MS,
        intervalMs: 200,
        describeFailure: () => proc.outputTail(),
      },
    );
  } catch (err) {
    await proc.stop("SIGKILL");
    throw err;
  }
  return proc;
}
