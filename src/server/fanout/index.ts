export { FanoutError, FanoutErrorCode, FanoutOptionError } from "./errors.js";
export type { FanoutErrorCodeValue } from "./errors.js";
export type { BadFrameReason, DropReason } from "./metrics.js";
export { DEFAULT_FANOUT_PORT, resolveFanoutOptions } from "./options.js";
export type { FanoutOptions, ResolvedFanoutOptions } from "./options.js";
export { FanoutServer } from "./server.js";
export type { FanoutServerDeps, FanoutTls } from "./server.js";
export type { Percentiles, StatusReport, ViewReport } from "./status-report.js";
