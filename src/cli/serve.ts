import { Command } from "commander";
import { SERVE_SETTINGS, envOf, flagOf } from "../server/config-schema.js";
import { ConfigError, checkAuthSettings, loadServeConfig } from "../server/config.js";
import { runServer } from "../server/main.js";
import { reportReady } from "./ipc.js";
import { createLogger } from "./logger.js";

export function serveCommand(): Command {
  const cmd = new Command("serve").description(
    "Watch the Kubernetes API once and stream the Calico views to node agents over WebSockets.",
  );
  for (const s of SERVE_SETTINGS) {
    const dflt = s.default === undefined ? "" : `, default ${String(s.default)}`;
    // A boolean flag alone means true (`--insecure-allow-anonymous`); `--flag false` still works.
    const value = s.type === "bool" ? "[value]" : "<value>";
    cmd.option(`${flagOf(s.field)} ${value}`, `${s.description} (env ${envOf(s.field)}${dflt})`);
  }
  cmd.action(async (raw: Record<string, string | boolean | undefined>) => {
    const opts = Object.fromEntries(
      Object.entries(raw).map(([k, v]) => [k, v === true ? "true" : v === false ? "false" : v]),
    );
    let config;
    try {
      config = loadServeConfig(opts);
      checkAuthSettings(config);
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error(`tabby serve: ${err.message}`);
        process.exitCode = 2;
        return;
      }
      throw err;
    }
    const logger = createLogger(config.logLevel);
    let server;
    try {
      server = await runServer(config, { logger });
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error(`tabby serve: ${err.message}`);
        process.exitCode = 2;
        return;
      }
      logger.fatal({ err }, "tabby serve could not start");
      process.exitCode = 1;
      return;
    }
    const running = server;
    reportReady("serve", {
      port: running.port,
      healthPort: running.healthPort,
      metricsPort: running.metricsPort,
      serverId: running.serverId,
    });
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        // The drain below then resolves as soon as everything is closed: destroy() wins over close().
        logger.warn({ signal }, "second signal: closing now");
        void running.destroy();
        return;
      }
      logger.info({ signal, drainMs: config.drainMs }, "draining sessions, then exiting");
      running.close().then(
        () => {
          logger.info("closed; exiting");
          logger.flush(() => process.exit(0));
        },
        (err: unknown) => {
          logger.error({ err }, "shutdown failed");
          logger.flush(() => process.exit(1));
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    if (typeof process.send === "function") {
      // A parent (demo, load test, chaos runner) that goes away takes the server with it, also one that
      // went away while the server was starting.
      if (process.connected) process.on("disconnect", () => onSignal("SIGTERM"));
      else onSignal("SIGTERM");
    }
  });
  return cmd;
}
