/** tabby's client library: a mirror of one view, kept current over WebSockets. */
export { TabbyClient } from "./tabby-client.js";
export type { ClientStats } from "./stats.js";
export type { ClientEventMap, ClientEventName } from "./client-events.js";
export type { ClientState, ClientStatus } from "./status.js";
export type { Update } from "./mirror.js";
export { DEFAULT_MAX_PENDING_BATCHES, UpdateStream } from "./update-stream.js";
export type { UpdateStreamOptions } from "./update-stream.js";
export type * from "./types/index.js";
export { GENERATED_CRD_KINDS } from "./types/index.js";
export { Mirror } from "./mirror.js";
export { Backoff } from "./backoff.js";
export { kubernetesDiscovery, SERVICE_ACCOUNT_DIR } from "./discovery.js";
export type { DiscoveredEndpoint, KubernetesDiscovery, KubernetesDiscoveryOptions } from "./discovery.js";
export { CLIENT_VERSION, NOOP_LOGGER, isServerAddress } from "./options.js";
export type {
  ClientLogger,
  ClientTlsOptions,
  ServerDiscovery,
  TabbyClientOptions,
  TokenSource,
} from "./options.js";
export {
  ClientClosedError,
  ClientConnectError,
  ClientDiscoveryError,
  ClientErrorCode,
  ClientListenerError,
  ClientOptionsError,
  ClientProtocolError,
  ClientRejectedError,
  ClientTimeoutError,
  ClientTokenError,
  TabbyClientError,
} from "./errors.js";
export type { ClientErrorCodeValue, TimeoutKind } from "./errors.js";
export type { ResourceValue, ViewName } from "../../proto/messages.js";
