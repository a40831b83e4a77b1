import { SERVE_SETTINGS, envOf, flagOf } from "./config-schema.js";
import type { Setting } from "./config-schema.js";
import { ReplicaError } from "./replicas/errors.js";
import { parseStaticPeers } from "./replicas/static-peers.js";

/** Every `tabby serve` setting, typed and validated. See config-schema.ts for units and defaults. */
export interface ServeConfig {
  readonly port: number;
  readonly host: string;
  readonly healthPort: number;
  readonly metricsPort: number;
  readonly httpHost: string;
  readonly kubeconfig: string | undefined;
  readonly logLevel: string;
  readonly flushWindowMs: number;
  readonly flushWindowMaxMs: number;
  readonly handshakeTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly pongTimeoutMs: number;
  readonly maxInboundFrameBytes: number;
  readonly maxConnections: number;
  readonly listenBacklog: number;
  readonly maxHandshakingConnections: number;
  readonly maxHandshakingPerSource: number;
  readonly softBufferedBytes: number;
  readonly maxLagMs: number;
  readonly drainMs: number;
  readonly snapshotReuseMs: number;
  readonly snapshotReuseMaxMs: number;
  readonly snapshotSendConcurrency: number;
  readonly resumeStateWaitMs: number;
  readonly initialSyncWaitMs: number;
  readonly maxLogEntries: number;
  readonly maxLogBytes: number;
  readonly snapshotCacheBytes: number;
  readonly pageSize: number;
  readonly watchTimeoutSeconds: number;
  readonly watchdogMs: number;
  readonly staleAfterMs: number;
  readonly upstreamProbeMs: number;
  readonly upstreamProbeTimeoutMs: number;
  readonly missingCrdRecheckMs: number;
  /** Decode and convert upstream objects in a worker thread (DatastoreOptions.ingestWorker). */
  readonly ingestWorker: boolean;
  readonly interfacePrefix: string;
  readonly usePodCidr: boolean;
  readonly calicoApiGroup: "crd.projectcalico.org/v1" | "projectcalico.org/v3";
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  readonly clientCaFile: string | undefined;
  readonly clientCn: string | undefined;
  readonly clientUriSan: string | undefined;
  readonly tokenAudience: string | undefined;
  readonly allowedServiceAccounts: string | undefined;
  readonly tokenCacheMs: number;
  readonly tokenGraceMs: number;
  readonly tlsPollIntervalMs: number;
  readonly httpTls: boolean;
  readonly insecureAllowAnonymous: boolean;
  readonly serviceName: string | undefined;
  readonly serviceNamespace: string | undefined;
  readonly servicePortName: string;
  readonly peerStatusPortName: string;
  readonly peers: string | undefined;
  readonly podName: string | undefined;
  readonly podIp: string | undefined;
  readonly advertiseUrl: string | undefined;
  readonly peerPollMs: number;
  readonly peerPollTimeoutMs: number;
}

/** The comma list of a string setting ("a,b" → ["a", "b"]; undefined → []). */
export function listOf(value: string | undefined): string[] {
  return value === undefined
    ? []
    : value
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "");
}

/** How clients are authenticated, derived from the settings. */
export interface AuthSettings {
  readonly isTls: boolean;
  readonly isMtls: boolean;
  readonly isTokenReview: boolean;
  /** No method configured (only with insecureAllowAnonymous). */
  readonly isAnonymousOnly: boolean;
}

/**
 * Checks the security settings together (as Typha: a client CA needs an allowed CN or URI SAN, and the
 * reverse), and refuses a server with no client authentication unless insecureAllowAnonymous is set.
 * `tabby serve` calls it; runServer (the library entry) trusts its caller.
 */
export function checkAuthSettings(config: ServeConfig): AuthSettings {
  const hasCert = config.tlsCertFile !== undefined;
  if (hasCert !== (config.tlsKeyFile !== undefined)) {
    throw new ConfigError(
      hasCert ? "tlsKeyFile" : "tlsCertFile",
      "--tls-cert-file and --tls-key-file go together",
    );
  }
  const hasIds = config.clientCn !== undefined || config.clientUriSan !== undefined;
  if (config.clientCaFile !== undefined && !hasIds) {
    throw new ConfigError(
      "clientCn",
      "--client-ca-file needs --client-cn or --client-uri-san (the identities allowed)",
    );
  }
  if (hasIds && config.clientCaFile === undefined) {
    throw new ConfigError("clientCaFile", "--client-cn / --client-uri-san need --client-ca-file");
  }
  if (config.clientCaFile !== undefined && !hasCert) {
    throw new ConfigError("tlsCertFile", "--client-ca-file (mTLS) needs --tls-cert-file and --tls-key-file");
  }
  if ((config.tokenAudience === undefined) !== (config.allowedServiceAccounts === undefined)) {
    throw new ConfigError(
      config.tokenAudience === undefined ? "tokenAudience" : "allowedServiceAccounts",
      "--token-audience and --allowed-service-accounts go together",
    );
  }
  const isTokenReview = config.tokenAudience !== undefined;
  if (isTokenReview && !hasCert && !config.insecureAllowAnonymous) {
    throw new ConfigError(
      "tlsCertFile",
      "tokens travel in the hello: --token-audience needs TLS (--tls-cert-file)",
    );
  }
  if (config.httpTls && !hasCert) {
    throw new ConfigError("httpTls", "--http-tls needs --tls-cert-file and --tls-key-file");
  }
  const isMtls = config.clientCaFile !== undefined;
  if (!isMtls && !isTokenReview && !config.insecureAllowAnonymous) {
    throw new ConfigError(
      "insecureAllowAnonymous",
      "no client authentication configured: set --client-ca-file with --client-cn / --client-uri-san, " +
        "or --token-audience with --allowed-service-accounts (or, for local tools only, --insecure-allow-anonymous)",
    );
  }
  return { isTls: hasCert, isMtls, isTokenReview, isAnonymousOnly: !isMtls && !isTokenReview };
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = "ERR_CONFIG_INVALID";
  /** The config field at fault. */
  readonly field: string;

  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

const LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

function parseSetting(s: Setting, raw: string, source: string): number | string | boolean {
  const where = `${s.field} (${source})`;
  switch (s.type) {
    case "int":
    case "port": {
      if (!/^-?\d+$/.test(raw.trim()))
        throw new ConfigError(s.field, `${where}: "${raw}" is not a whole number`);
      const n = Number(raw);
      const min = s.type === "port" ? 0 : (s.min ?? Number.MIN_SAFE_INTEGER);
      const max = s.type === "port" ? 65535 : (s.max ?? Number.MAX_SAFE_INTEGER);
      if (n < min || n > max) throw new ConfigError(s.field, `${where}: ${n} is outside ${min}..${max}`);
      return n;
    }
    case "level":
      if (!LEVELS.has(raw))
        throw new ConfigError(s.field, `${where}: "${raw}" is not one of ${[...LEVELS].join(", ")}`);
      return raw;
    case "host":
      if (raw.trim() === "" || /\s/.test(raw))
        throw new ConfigError(s.field, `${where}: "${raw}" is not a host address`);
      return raw;
    case "bool":
      if (raw !== "true" && raw !== "false")
        throw new ConfigError(s.field, `${where}: "${raw}" is not true or false`);
      return raw === "true";
    default:
      if (raw === "") throw new ConfigError(s.field, `${where}: must not be empty`);
      if (s.choices !== undefined && !s.choices.includes(raw))
        throw new ConfigError(s.field, `${where}: "${raw}" is not one of ${s.choices.join(", ")}`);
      if (s.pattern !== undefined && !s.pattern.test(raw))
        throw new ConfigError(s.field, `${where}: "${raw}" is not valid (${s.description})`);
      return raw;
  }
}

/**
 * Builds the config from command-line values (already split by the CLI: field → string) and the
 * environment. A flag beats its TABBY_* variable, which beats the default. Throws ConfigError naming the
 * field on the first invalid value. The only reader of the environment for the server.
 */
export function loadServeConfig(
  flags: Readonly<Record<string, string | undefined>>,
  env: Readonly<Record<string, string | undefined>> = process.env,
): ServeConfig {
  const out: Record<string, number | string | boolean | undefined> = {};
  const known = new Set<string>(SERVE_SETTINGS.map((s) => s.field));
  for (const name of Object.keys(flags)) {
    if (!known.has(name) && flags[name] !== undefined)
      throw new ConfigError(name, `unknown setting "${name}"`);
  }
  for (const s of SERVE_SETTINGS as readonly Setting[]) {
    const flag = flags[s.field];
    const fromEnv = env[envOf(s.field)];
    if (flag !== undefined) out[s.field] = parseSetting(s, flag, flagOf(s.field));
    else if (fromEnv !== undefined && fromEnv !== "") out[s.field] = parseSetting(s, fromEnv, envOf(s.field));
    else out[s.field] = s.default;
  }
  if (out.kubeconfig === undefined && env.KUBECONFIG !== undefined && env.KUBECONFIG !== "") {
    out.kubeconfig = env.KUBECONFIG.split(":")[0];
  }
  const config = out as unknown as ServeConfig;
  if (config.pongTimeoutMs < 2 * config.pingIntervalMs) {
    throw new ConfigError(
      "pongTimeoutMs",
      `pongTimeoutMs (${config.pongTimeoutMs}) must be at least twice pingIntervalMs (${config.pingIntervalMs})`,
    );
  }
  const ports = [
    ["port", config.port],
    ["healthPort", config.healthPort],
    ["metricsPort", config.metricsPort],
  ] as const;
  if (config.port !== 0 && (config.port === config.healthPort || config.port === config.metricsPort)) {
    throw new ConfigError(
      "port",
      `port ${config.port} is also used by ${ports.find(([n, p]) => n !== "port" && p === config.port)?.[0]}`,
    );
  }
  checkReplicaSettings(config);
  return out as unknown as ServeConfig;
}

/** The replica directory's settings together: one source at most, a Service needs its namespace. */
function checkReplicaSettings(config: ServeConfig): void {
  if (config.serviceName !== undefined && config.peers !== undefined) {
    throw new ConfigError("peers", "--peers and --service-name are two sources of replicas: set one");
  }
  if ((config.serviceName === undefined) !== (config.serviceNamespace === undefined)) {
    throw new ConfigError(
      config.serviceName === undefined ? "serviceName" : "serviceNamespace",
      "--service-name and --service-namespace go together",
    );
  }
  if (config.peers !== undefined) {
    try {
      parseStaticPeers(config.peers, config.healthPort);
    } catch (err) {
      if (err instanceof ReplicaError) throw new ConfigError("peers", `peers (--peers): ${err.message}`);
      throw err;
    }
  }
}
