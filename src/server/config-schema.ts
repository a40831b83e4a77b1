/**
 * The table of `tabby serve` settings: each has a flag, a TABBY_* environment variable, a type with
 * bounds, a default and a description (shown by --help). config.ts turns flags + env into a typed,
 * validated ServeConfig.
 */

export type SettingType = "int" | "port" | "string" | "host" | "level" | "path" | "bool";

export interface Setting {
  /** Field of ServeConfig, camelCase with its unit (`pingIntervalMs`). */
  readonly field: string;
  readonly type: SettingType;
  readonly default: number | string | boolean | undefined;
  readonly min?: number;
  readonly max?: number;
  /** A string setting limited to these values. */
  readonly choices?: readonly string[];
  /** A string setting must match this (the description says what it means). */
  readonly pattern?: RegExp;
  readonly description: string;
}

const MiB = 1024 * 1024;

export const SERVE_SETTINGS = [
  { field: "port", type: "port", default: 5473, description: "WebSocket port agents connect to" },
  { field: "host", type: "host", default: "0.0.0.0", description: "address the WebSocket listener binds" },
  { field: "healthPort", type: "port", default: 9098, description: "port of /livez, /readyz and /status" },
  { field: "metricsPort", type: "port", default: 9093, description: "port of /metrics (and /status)" },
  {
    field: "httpHost",
    type: "host",
    default: "0.0.0.0",
    description: "address the health and metrics listeners bind",
  },
  {
    field: "kubeconfig",
    type: "path",
    default: undefined,
    description: "kubeconfig file (else $KUBECONFIG, else ~/.kube/config, else in-cluster config)",
  },
  {
    field: "logLevel",
    type: "level",
    default: "info",
    description: "log level: fatal, error, warn, info, debug, trace",
  },
  {
    field: "flushWindowMs",
    type: "int",
    default: 10,
    min: 0,
    max: 10_000,
    description: "changes arriving within this window become one delta frame per view",
  },
  {
    field: "flushWindowMaxMs",
    type: "int",
    default: 250,
    min: 0,
    max: 60_000,
    description: "under load the flush window doubles up to this, and shrinks back when the load is gone",
  },
  {
    field: "handshakeTimeoutMs",
    type: "int",
    default: 10_000,
    min: 100,
    max: 600_000,
    description: "a client must send its hello within this",
  },
  {
    field: "pingIntervalMs",
    type: "int",
    default: 10_000,
    min: 100,
    max: 600_000,
    description: "how often the server pings each session",
  },
  {
    field: "pongTimeoutMs",
    type: "int",
    default: 60_000,
    min: 200,
    max: 3_600_000,
    description: "close a session that has not answered a ping for this long",
  },
  {
    field: "maxInboundFrameBytes",
    type: "int",
    default: 1 * MiB,
    min: 1024,
    max: 64 * MiB,
    description: "largest frame a client may send (bigger: close 1009)",
  },
  {
    field: "maxConnections",
    type: "int",
    default: 10_000,
    min: 1,
    max: 1_000_000,
    description: "sessions beyond this are refused with close 4010",
  },
  {
    field: "listenBacklog",
    type: "int",
    default: 4096,
    min: 1,
    max: 65_535,
    description:
      "the agent port's TCP accept queue (the kernel caps it at net.core.somaxconn); connections beyond it wait for SYN retransmits, seconds in a connect storm",
  },
  {
    field: "maxHandshakingConnections",
    type: "int",
    default: 1000,
    min: 1,
    max: 1_000_000,
    description:
      "connections not yet authenticated (TLS, upgrade, hello, review) at once; beyond this the oldest is cut",
  },
  {
    field: "maxHandshakingPerSource",
    type: "int",
    default: 64,
    min: 0,
    max: 1_000_000,
    description: "connections not yet authenticated per source address (0: no cap, behind a trusted proxy)",
  },
  {
    field: "softBufferedBytes",
    type: "int",
    default: 1 * MiB,
    min: 1024,
    max: 1024 * MiB,
    description:
      "a session with more than this queued in user space stops getting live frames and is caught up later",
  },
  {
    field: "maxLagMs",
    type: "int",
    default: 30_000,
    min: 100,
    max: 3_600_000,
    description: "close a session (4005 too slow) that has been behind for this long",
  },
  {
    field: "drainMs",
    type: "int",
    default: 30_000,
    min: 0,
    max: 3_600_000,
    description: "on SIGTERM, close sessions spread over this period",
  },
  {
    field: "snapshotReuseMs",
    type: "int",
    default: 1000,
    min: 0,
    max: 600_000,
    description: "a cached snapshot younger than this is reused (then caught up) for new sessions",
  },
  {
    field: "snapshotReuseMaxMs",
    type: "int",
    default: 30_000,
    min: 0,
    max: 600_000,
    description:
      "while the latest snapshot is still being sent to a session (a connect or reconnect storm), it is reused up to this age",
  },
  {
    field: "snapshotSendConcurrency",
    type: "int",
    default: 0,
    min: 0,
    max: 100_000,
    description:
      "snapshots streamed at once (0: no limit); further sessions wait their turn (pings keep them), and one whose socket does not drain within a second gives its turn to the next. A limit brings most agents of a storm back sooner, the last one later",
  },
  {
    field: "resumeStateWaitMs",
    type: "int",
    default: 3000,
    min: 0,
    max: 600_000,
    description:
      "a resume from another replica naming a state this server has not reached yet waits up to this long for it (then a snapshot)",
  },
  {
    field: "initialSyncWaitMs",
    type: "int",
    default: 60_000,
    min: 0,
    max: 600_000,
    description:
      "a session that arrives before its view was listed once since the server started waits up to this long for the list (pings keep it), then starts with the syncing status; 0: no wait. With another replica ready, such a session is closed with 4007 (go there) instead",
  },
  {
    field: "maxLogEntries",
    type: "int",
    default: 100_000,
    min: 1,
    max: 100_000_000,
    description: "changes kept per view for resuming clients",
  },
  {
    field: "maxLogBytes",
    type: "int",
    default: 64 * MiB,
    min: 1024,
    max: 64 * 1024 * MiB,
    description: "bytes of changes kept per view for resuming clients",
  },
  {
    field: "snapshotCacheBytes",
    type: "int",
    default: 64 * MiB,
    min: 1 * MiB,
    max: 64 * 1024 * MiB,
    description:
      "bytes of encoded snapshots kept for reuse, at most (one that no new session can be given is let go)",
  },
  {
    field: "pageSize",
    type: "int",
    default: 500,
    min: 1,
    max: 100_000,
    description: "page size of upstream lists",
  },
  {
    field: "watchTimeoutSeconds",
    type: "int",
    default: 300,
    min: 10,
    max: 86_400,
    description: "server-side timeout of upstream watches (jittered up to twice this)",
  },
  {
    field: "watchdogMs",
    type: "int",
    default: 120_000,
    min: 1000,
    max: 3_600_000,
    description: "restart an upstream watch that has seen nothing, not even a bookmark, for this long",
  },
  {
    field: "staleAfterMs",
    type: "int",
    // 25 s: a frozen API server whose last answer came just before it froze is reported within 30 s.
    default: 25_000,
    min: 100,
    max: 3_600_000,
    description:
      "a kind whose upstream list/watch has failed for this long is stale (readiness false, clients told)",
  },
  {
    field: "upstreamProbeMs",
    type: "int",
    default: 5000,
    min: 100,
    max: 600_000,
    description:
      "when an upstream watch has been quiet this long, probe the API server (a list with limit=1); also the probe period",
  },
  {
    field: "upstreamProbeTimeoutMs",
    type: "int",
    default: 5000,
    min: 100,
    max: 600_000,
    description:
      "a probe not answered within this is a failure: a silent API server goes stale after staleAfterMs",
  },
  {
    field: "missingCrdRecheckMs",
    type: "int",
    default: 180_000,
    min: 1000,
    max: 86_400_000,
    description: "how often a CRD that is not installed is checked again",
  },
  {
    field: "ingestWorker",
    type: "bool",
    default: true,
    description:
      "decode and convert the upstream lists and watch events (JSON.parse, Kubernetes to Calico, msgpack encode) in a worker thread, off the fan-out's thread",
  },
  // Calico conversion (docs/CALICO-CONFORMANCE.md).
  {
    field: "interfacePrefix",
    type: "string",
    default: "cali",
    pattern: /^[A-Za-z0-9_.-]{1,4}(,[A-Za-z0-9_.-]{1,4})*$/,
    description:
      "Felix's FELIX_INTERFACEPREFIX: a WorkloadEndpoint's veth is this (the first of a comma list) + 11 hex chars",
  },
  {
    field: "usePodCidr",
    type: "bool",
    default: false,
    description: "calico-node's USE_POD_CIDR (host-local IPAM): node tunnel addresses come from the podCIDR",
  },
  {
    field: "calicoApiGroup",
    type: "string",
    default: "crd.projectcalico.org/v1",
    choices: ["crd.projectcalico.org/v1", "projectcalico.org/v3"],
    description: "Calico's CALICO_API_GROUP: read the Calico resources from the v1 CRDs or the native v3 API",
  },
  // Security (docs/OPERATIONS.md, "Security").
  {
    field: "tlsCertFile",
    type: "path",
    default: undefined,
    description: "PEM certificate (chain) of the agent port: serve wss:// (reloaded when the file changes)",
  },
  {
    field: "tlsKeyFile",
    type: "path",
    default: undefined,
    description: "PEM private key of --tls-cert-file (reloaded with it)",
  },
  {
    field: "clientCaFile",
    type: "path",
    default: undefined,
    description:
      "PEM CA bundle agents' client certificates must chain to (mTLS; needs --client-cn or --client-uri-san)",
  },
  {
    field: "clientCn",
    type: "string",
    default: undefined,
    pattern: /^[^,\s][^,]*(,[^,\s][^,]*)*$/,
    description: "allowed client certificate common names, comma-separated (Typha's TYPHA_CLIENTCN)",
  },
  {
    field: "clientUriSan",
    type: "string",
    default: undefined,
    pattern: /^[a-z][a-z0-9+.-]*:[^,\s]+(,[a-z][a-z0-9+.-]*:[^,\s]+)*$/,
    description:
      "allowed client certificate URI SANs (SPIFFE IDs), comma-separated (Typha's TYPHA_CLIENTURISAN)",
  },
  {
    field: "tokenAudience",
    type: "string",
    default: undefined,
    pattern: /^[^\s,]{1,253}$/,
    description: "accept ServiceAccount tokens issued for this audience, checked with TokenReview",
  },
  {
    field: "allowedServiceAccounts",
    type: "string",
    default: undefined,
    pattern: /^[a-z0-9.-]{1,253}\/[a-z0-9.-]{1,253}(,[a-z0-9.-]{1,253}\/[a-z0-9.-]{1,253})*$/,
    description: "namespace/name of the ServiceAccounts whose tokens may connect, comma-separated",
  },
  {
    field: "tokenCacheMs",
    type: "int",
    default: 60_000,
    min: 0,
    max: 3_600_000,
    description: "a TokenReview answer is reused this long (never past the token's expiry)",
  },
  {
    field: "tokenGraceMs",
    type: "int",
    default: 600_000,
    min: 0,
    max: 86_400_000,
    description:
      "while the API cannot review tokens, a token accepted before is still accepted this long after its last review",
  },
  {
    field: "tlsPollIntervalMs",
    type: "int",
    default: 60_000,
    min: 100,
    max: 3_600_000,
    description: "the TLS files are also re-read this often (the directory watch is the fast path)",
  },
  {
    field: "httpTls",
    type: "bool",
    default: false,
    description: "serve the health and metrics ports over HTTPS with the agent port's certificate",
  },
  {
    field: "insecureAllowAnonymous",
    type: "bool",
    default: false,
    description:
      "let agents in without credentials (loopback tools and tests only): tabby serve refuses to start with no authentication otherwise",
  },
  // Replicas (docs/OPERATIONS.md, "Replicas").
  {
    field: "serviceName",
    type: "string",
    default: undefined,
    pattern: /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/,
    description:
      "this server's Service: its replicas are read from the Service's EndpointSlices (needs --service-namespace)",
  },
  {
    field: "serviceNamespace",
    type: "string",
    default: undefined,
    pattern: /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/,
    description: "namespace of --service-name (the Deployment sets it from the pod's namespace)",
  },
  {
    field: "servicePortName",
    type: "string",
    default: "tabby",
    pattern: /^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/,
    description: "the Service port agents connect to, as named in its EndpointSlices",
  },
  {
    field: "peerStatusPortName",
    type: "string",
    default: "metrics",
    pattern: /^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/,
    description:
      "the Service port where each replica serves /status (its load), as named in its EndpointSlices",
  },
  {
    field: "peers",
    type: "string",
    default: undefined,
    pattern: /^wss?:\/\/[^,\s]+(,wss?:\/\/[^,\s]+)*$/,
    description:
      "static replica list off Kubernetes: ws://host:port[=http://host:statusport], comma-separated, this server included or not",
  },
  {
    field: "podName",
    type: "string",
    default: undefined,
    pattern: /^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$/,
    description: "this server's pod (downward API): finds its own endpoint in the EndpointSlices",
  },
  {
    field: "podIp",
    type: "string",
    default: undefined,
    pattern: /^[0-9a-fA-F.:]{2,45}$/,
    description: "this server's pod IP (downward API): finds its own endpoint in the EndpointSlices",
  },
  {
    field: "advertiseUrl",
    type: "string",
    default: undefined,
    pattern: /^wss?:\/\/[^,\s]+$/,
    description: "the agent address of this server (ws://host:port), when its peers know it by another name",
  },
  {
    field: "peerPollMs",
    type: "int",
    default: 5000,
    min: 100,
    max: 600_000,
    description: "read each peer replica's /status (readiness, session count) this often",
  },
  {
    field: "peerPollTimeoutMs",
    type: "int",
    default: 2000,
    min: 100,
    max: 60_000,
    description: "a peer's /status not answered within this counts as unreachable",
  },
] as const satisfies readonly Setting[];

export type SettingField = (typeof SERVE_SETTINGS)[number]["field"];

/** `flushWindowMs` → `--flush-window-ms`. */
export function flagOf(field: string): string {
  return `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** `flushWindowMs` → `TABBY_FLUSH_WINDOW_MS`. */
export function envOf(field: string): string {
  return `TABBY_${field.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}
