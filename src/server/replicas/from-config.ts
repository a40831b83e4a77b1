import type { Logger } from "pino";
import type { UpstreamSink } from "../../snapshot/sink.js";
import type { ServeConfig } from "../config.js";
import { ReplicaDirectory } from "./directory.js";
import type { StatusFetcher } from "./status-fetch.js";
import { EndpointSliceMembers } from "./endpoint-slices.js";
import { parseStaticPeers, urlHost } from "./static-peers.js";

export interface ReplicaWiring {
  readonly directory: ReplicaDirectory;
  /**
   * The sink the datastore should write into: `sink` itself, or (EndpointSlice source) a tap that also
   * feeds the directory from the datastore's EndpointSlice watch.
   */
  tap(sink: UpstreamSink): UpstreamSink;
}

export interface ReplicaWiringDeps {
  readonly serverId: () => string;
  /** The bound agent port (the configured one may be 0). */
  readonly port: () => number;
  readonly selfSessions: () => number;
  readonly isSelfReady: () => boolean;
  readonly logger: Logger;
  readonly clock?: () => number;
  readonly fetchStatus?: StatusFetcher;
}

type ReplicaSettings = Pick<
  ServeConfig,
  | "serviceName"
  | "serviceNamespace"
  | "servicePortName"
  | "peerStatusPortName"
  | "peers"
  | "podName"
  | "podIp"
  | "advertiseUrl"
  | "peerPollMs"
  | "peerPollTimeoutMs"
  | "tlsCertFile"
  | "httpTls"
  | "healthPort"
  | "host"
>;

/**
 * The replica directory the settings ask for: from the Service's EndpointSlices (--service-name), from a
 * static list (--peers), or this server alone. Throws ReplicaError for a bad --peers (loadServeConfig has
 * already checked it).
 */
export function replicaDirectoryFor(config: ReplicaSettings, deps: ReplicaWiringDeps): ReplicaWiring {
  const agentScheme = config.tlsCertFile !== undefined ? "wss" : "ws";
  const statusScheme = config.httpTls ? "https" : "http";
  const selfHost =
    config.podIp ?? (config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host);
  const advertised = config.advertiseUrl;
  const common = {
    serverId: deps.serverId,
    selfUrl: (): string => advertised ?? `${agentScheme}://${urlHost(selfHost)}:${deps.port()}`,
    selfSessions: deps.selfSessions,
    isSelfReady: deps.isSelfReady,
    logger: deps.logger,
    pollMs: config.peerPollMs,
    pollTimeoutMs: config.peerPollTimeoutMs,
    ...(deps.clock !== undefined && { clock: deps.clock }),
    ...(deps.fetchStatus !== undefined && { fetchStatus: deps.fetchStatus }),
  };
  if (config.serviceName !== undefined && config.serviceNamespace !== undefined) {
    const directory = new ReplicaDirectory({ ...common, source: "endpoint-slices", readinessFrom: "source" });
    const members = new EndpointSliceMembers(
      {
        namespace: config.serviceNamespace,
        service: config.serviceName,
        agentPortName: config.servicePortName,
        statusPortName: config.peerStatusPortName,
        agentScheme,
        statusScheme,
        self: {
          ...(config.podName !== undefined && { podName: config.podName }),
          ...(config.podIp !== undefined && { podIp: config.podIp }),
          ...(config.advertiseUrl !== undefined && { url: config.advertiseUrl }),
        },
      },
      (list) => directory.setMembers(list),
    );
    return { directory, tap: (sink) => members.tap(sink) };
  }
  const directory = new ReplicaDirectory({
    ...common,
    source: config.peers === undefined ? "none" : "static",
    readinessFrom: "status",
  });
  if (config.peers !== undefined) {
    directory.setMembers(
      parseStaticPeers(config.peers, config.healthPort, statusScheme).map((p) => ({
        url: p.url,
        statusUrl: p.statusUrl,
        isReady: false,
        isSelf: p.url === config.advertiseUrl,
      })),
    );
  }
  return { directory, tap: (sink) => sink };
}
