import { loadServeConfig } from "../../src/server/config.js";
import type { ServeConfig } from "../../src/server/config.js";

/**
 * A serve config for tests: every port ephemeral, every listener on 127.0.0.1, no environment variables;
 * `settings` (flag-style strings, as `tabby serve` gets them) are added on top.
 */
export function loopbackServeConfig(settings: Readonly<Record<string, string>> = {}): ServeConfig {
  return loadServeConfig(
    { host: "127.0.0.1", httpHost: "127.0.0.1", port: "0", healthPort: "0", metricsPort: "0", ...settings },
    {},
  );
}
