export { HttpServerError, HttpServerErrorCode } from "./errors.js";
export type { HttpServerErrorCodeValue } from "./errors.js";
export { DEFAULT_HEALTH_PORT, DEFAULT_METRICS_PORT, startHttpServers } from "./server.js";
export type { HttpServers, HttpServersDeps } from "./server.js";
export { registerStatusMetrics } from "./status-metrics.js";
export type { StatusMetricSources } from "./status-metrics.js";
