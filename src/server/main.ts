import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { SecureContextOptions } from "node:tls";
import { KubeConfig } from "./kube-config.js";
import type { Logger } from "pino";
import { collectDefaultMetrics, Registry } from "prom-client";
import { VIEW_NAMES } from "../../proto/messages.js";
import type { SyncState, ViewName } from "../../proto/messages.js";
import { Hub } from "../snapshot/hub.js";
import { ALL_KINDS, viewsOfKind } from "../snapshot/kinds.js";
import {
  KubeConfigApi,
  PolicyAuthenticator,
  TlsFileWatcher,
  TlsFilesError,
  TokenReviewer,
} from "./auth/index.js";
import type { AuthPolicy } from "./auth/index.js";
import { flagOf } from "./config-schema.js";
import { ConfigError, listOf } from "./config.js";
import type { ServeConfig } from "./config.js";
import { conversionId, Datastore } from "./datastore/index.js";
import { FanoutServer } from "./fanout/index.js";
import { registerStatusMetrics, startHttpServers } from "./http/index.js";
import { replicaDirectoryFor } from "./replicas/index.js";
import type { ReplicaDirectory } from "./replicas/index.js";

/** The Calico kinds at least one view includes: the ones worth watching. */
export const SERVED_KINDS: readonly string[] = ALL_KINDS.filter((kind) => viewsOfKind(kind).length > 0);

export interface RunningServer {
  readonly serverId: string;
  /** The bound WebSocket port (useful with port 0). */
  readonly port: number;
  readonly healthPort: number;
  readonly metricsPort: number;
  readonly hub: Hub;
  readonly fanout: FanoutServer;
  readonly datastore: Datastore;
  readonly registry: Registry;
  /** The other replicas of this server's Service (--service-name, --peers), as the balancer reads them. */
  readonly replicas: ReplicaDirectory;
  /**
   * Graceful stop: readiness false, listener closed, sessions closed spread over `drainMs` (default: the
   * configured drainMs), then the upstream and the HTTP side doors closed. Resolves within drainMs plus
   * the close grace. Idempotent (a later call returns the first promise); `destroy()` during it wins.
   */
  close(options?: { readonly drainMs?: number }): Promise<void>;
  /** Immediate stop: every session terminated, upstream and HTTP closed now. Idempotent; wins over close(). */
  destroy(err?: Error): Promise<void>;
}

export interface ServerDeps {
  readonly logger: Logger;
  /** Overrides the kubeconfig resolution (tests, demo). */
  readonly kubeConfig?: KubeConfig;
  readonly registry?: Registry;
  readonly clock?: () => number;
}

/**
 * Where the Kubernetes credentials come from, as kubectl resolves them: --kubeconfig, else $KUBECONFIG
 * (already folded into config.kubeconfig), else ~/.kube/config, else the in-cluster service account.
 */
export function loadKubeConfig(
  config: ServeConfig,
  env: Readonly<Record<string, string | undefined>> = process.env,
): KubeConfig {
  const kc = new KubeConfig();
  const home = join(homedir(), ".kube", "config");
  if (config.kubeconfig !== undefined) {
    if (!existsSync(config.kubeconfig))
      throw new ConfigError("kubeconfig", `kubeconfig ${config.kubeconfig} does not exist`);
    kc.loadFromFile(config.kubeconfig);
  } else if (existsSync(home)) {
    kc.loadFromFile(home);
  } else if (env.KUBERNETES_SERVICE_HOST !== undefined && env.KUBERNETES_SERVICE_HOST !== "") {
    kc.loadFromCluster();
  } else {
    throw new ConfigError(
      "kubeconfig",
      "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a cluster",
    );
  }
  if (kc.getCurrentCluster() === null)
    throw new ConfigError("kubeconfig", "the kubeconfig has no current cluster");
  return kc;
}

/** The only place that wires the parts together: Hub ← Datastore, Hub → FanoutServer, HTTP side doors. */
export async function runServer(config: ServeConfig, deps: ServerDeps): Promise<RunningServer> {
  const logger = deps.logger;
  const registry = deps.registry ?? new Registry();
  if (deps.registry === undefined) collectDefaultMetrics({ register: registry });
  const kubeConfig = deps.kubeConfig ?? loadKubeConfig(config);
  const clock = deps.clock ?? Date.now;
  let onTlsReload: (context: SecureContextOptions) => void = () => undefined;
  let onTlsResult: (isOk: boolean) => void = () => undefined;
  let tlsFiles: TlsFileWatcher | undefined;
  if (config.tlsCertFile !== undefined && config.tlsKeyFile !== undefined) {
    try {
      tlsFiles = await TlsFileWatcher.start({
        paths: {
          certFile: config.tlsCertFile,
          keyFile: config.tlsKeyFile,
          ...(config.clientCaFile !== undefined && { caFile: config.clientCaFile }),
        },
        logger: logger.child({ component: "tls" }),
        pollIntervalMs: config.tlsPollIntervalMs,
        onReload: (context) => onTlsReload(context),
        onResult: (isOk) => onTlsResult(isOk),
      });
    } catch (err) {
      if (err instanceof TlsFilesError) {
        throw new ConfigError(err.field, `${err.field} (${flagOf(err.field)}): ${err.message}`);
      }
      throw err;
    }
  }
  const kubeApi = config.tokenAudience !== undefined ? new KubeConfigApi(kubeConfig, 10_000) : undefined;
  // With no method configured, runServer (the library entry) lets everyone in, as before: `tabby serve`
  // refuses that configuration unless --insecure-allow-anonymous (checkAuthSettings).
  const isAnonymousOnly = config.clientCaFile === undefined && kubeApi === undefined;
  const policy: AuthPolicy = {
    isAnonymousAllowed: config.insecureAllowAnonymous || isAnonymousOnly,
    ...(config.clientCaFile !== undefined && {
      certificate: { commonNames: listOf(config.clientCn), uriSans: listOf(config.clientUriSan) },
    }),
    ...(kubeApi !== undefined &&
      config.tokenAudience !== undefined && {
        tokens: new TokenReviewer({
          api: kubeApi,
          logger: logger.child({ component: "token-review" }),
          clock,
          options: {
            audience: config.tokenAudience,
            allowedServiceAccounts: listOf(config.allowedServiceAccounts),
            cacheTtlMs: config.tokenCacheMs,
            graceMs: config.tokenGraceMs,
          },
        }),
      }),
  };
  if (policy.isAnonymousAllowed) {
    logger.warn(
      "no client authentication: agents without credentials are let in (loopback tools and tests only)",
    );
  }
  const hub = new Hub({
    maxLogEntries: config.maxLogEntries,
    maxLogBytes: config.maxLogBytes,
    snapshotCacheBytes: config.snapshotCacheBytes,
    conversionId: conversionId({
      interfacePrefix: config.interfacePrefix,
      usePodCidr: config.usePodCidr,
      calicoApiGroup: config.calicoApiGroup,
    }),
  });
  let boundPort = config.port;
  const replicas = replicaDirectoryFor(config, {
    serverId: () => fanout.serverId,
    port: () => boundPort,
    selfSessions: () => fanout.status().connections.active,
    isSelfReady: () => fanout.isReady(),
    logger: logger.child({ component: "replicas" }),
    clock,
  });
  const fanout = new FanoutServer({
    hub,
    peers: replicas.directory,
    logger: logger.child({ component: "fanout" }),
    registry,
    clock,
    authenticator: new PolicyAuthenticator(policy),
    ...(tlsFiles !== undefined && {
      tls: { context: tlsFiles.current, isClientCertRequested: config.clientCaFile !== undefined },
    }),
    options: {
      flushWindowMs: config.flushWindowMs,
      flushWindowMaxMs: config.flushWindowMaxMs,
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      pingIntervalMs: config.pingIntervalMs,
      pongTimeoutMs: config.pongTimeoutMs,
      maxInboundFrameBytes: config.maxInboundFrameBytes,
      maxConnections: config.maxConnections,
      maxHandshakingConnections: config.maxHandshakingConnections,
      listenBacklog: config.listenBacklog,
      maxHandshakingPerSource: config.maxHandshakingPerSource,
      softBufferedBytes: config.softBufferedBytes,
      maxLagMs: config.maxLagMs,
      snapshotReuseMs: config.snapshotReuseMs,
      snapshotReuseMaxMs: config.snapshotReuseMaxMs,
      snapshotSendConcurrency: config.snapshotSendConcurrency,
      resumeStateWaitMs: config.resumeStateWaitMs,
      initialSyncWaitMs: config.initialSyncWaitMs,
    },
  });
  const datastore = new Datastore({
    kubeConfig,
    // With --service-name, a tap shows the datastore's EndpointSlice events to the replica directory.
    sink: replicas.tap(fanout),
    logger: logger.child({ component: "datastore" }),
    registry,
    clock,
    options: {
      pageSize: config.pageSize,
      watchTimeoutSeconds: config.watchTimeoutSeconds,
      watchdogMs: config.watchdogMs,
      staleAfterMs: config.staleAfterMs,
      upstreamProbeMs: config.upstreamProbeMs,
      upstreamProbeTimeoutMs: config.upstreamProbeTimeoutMs,
      missingCrdRecheckMs: config.missingCrdRecheckMs,
      ingestWorker: config.ingestWorker,
      convert: {
        interfacePrefix: config.interfacePrefix,
        usePodCidr: config.usePodCidr,
        calicoApiGroup: config.calicoApiGroup,
      },
      // Kinds no view serves (IPAMHandle: one object per pod, IPAMConfig, IPReservation,
      // KubeControllersConfiguration) would only cost memory and API load.
      kinds: SERVED_KINDS,
    },
  });
  registerStatusMetrics(registry, {
    isReady: () => fanout.isReady(),
    viewStates: () => {
      const views = fanout.status().views;
      return Object.fromEntries(VIEW_NAMES.map((v) => [v, views[v].status.state])) as Record<
        ViewName,
        SyncState
      >;
    },
    lagP99Ms: () => fanout.status().lag.laggingMs.p99,
    readyReplicas: () => replicas.directory.readyReplicas(),
  });
  let http: Awaited<ReturnType<typeof startHttpServers>> | undefined;
  try {
    const address = await fanout.listen(config.port, config.host);
    boundPort = address.port;
    http = await startHttpServers({
      host: config.httpHost,
      healthPort: config.healthPort,
      metricsPort: config.metricsPort,
      registry,
      isReady: () => fanout.isReady(),
      notReadyReason: () => fanout.notReadyReason(),
      isLive: () => true,
      status: () => ({
        ...fanout.status(),
        upstreamWatches: datastore.upstreamWatches,
        replicas: replicas.directory.report(),
      }),
      logger: logger.child({ component: "http" }),
      ...(config.httpTls && tlsFiles !== undefined && { tls: tlsFiles.current }),
    });
    const httpForReload = http;
    onTlsReload = (context) => {
      fanout.setSecureContext(context);
      if (config.httpTls) httpForReload.setSecureContext(context);
    };
    onTlsResult = (isOk) => fanout.authMetrics.reloaded(isOk);
    datastore.start();
    replicas.directory.start();
    logger.info(
      {
        serverId: fanout.serverId,
        port: address.port,
        healthPort: http.healthPort,
        metricsPort: http.metricsPort,
      },
      "tabby serving",
    );
    const httpServers = http;
    let closing: Promise<void> | undefined;
    let destroying: Promise<void> | undefined;
    const destroy = (err?: Error): Promise<void> => {
      destroying ??= (async () => {
        tlsFiles?.close();
        replicas.directory.close();
        await Promise.all([fanout.destroy(err), datastore.close()]);
        await httpServers.close();
        kubeApi?.close();
      })();
      return destroying;
    };
    const close = (options: { readonly drainMs?: number } = {}): Promise<void> => {
      if (destroying !== undefined) return destroying;
      closing ??= (async () => {
        // Resolves early when destroy() is called meanwhile (the fan-out's destroy wins over its close).
        await fanout.close({ drainMs: options.drainMs ?? config.drainMs });
        await destroy();
      })();
      return closing;
    };
    return {
      serverId: fanout.serverId,
      port: address.port,
      healthPort: http.healthPort,
      metricsPort: http.metricsPort,
      hub,
      fanout,
      datastore,
      registry,
      replicas: replicas.directory,
      close,
      destroy,
    };
  } catch (err) {
    tlsFiles?.close();
    kubeApi?.close();
    replicas.directory.close();
    await Promise.allSettled([fanout.destroy(), datastore.close(), http?.close()]);
    throw err;
  }
}
