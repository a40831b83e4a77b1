import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { SecureContextOptions } from "node:tls";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { HttpServerError, HttpServerErrorCode } from "./errors.js";

/** Typha's health port. */
export const DEFAULT_HEALTH_PORT = 9098;
/** Typha's metrics port. */
export const DEFAULT_METRICS_PORT = 9093;

export interface HttpServersDeps {
  /** Interface to bind. Default: all interfaces. */
  readonly host?: string;
  /** Port of /livez, /readyz and /status (0: ephemeral). */
  readonly healthPort: number;
  /** Port of /metrics and /status (0: ephemeral). Equal to healthPort: one server serves everything. */
  readonly metricsPort: number;
  readonly registry: Registry;
  isReady(): boolean;
  isLive(): boolean;
  /** The /status body (serialized as JSON). */
  status(): unknown;
  /** Why the server is not ready, for the /readyz 503 body. Optional. */
  notReadyReason?(): string | undefined;
  readonly logger: Logger;
  /** Serve HTTPS with this certificate and key (no client certificates asked). Default plain HTTP. */
  readonly tls?: SecureContextOptions;
}

export interface HttpServers {
  readonly healthPort: number;
  readonly metricsPort: number;
  /** Replaces the certificate of HTTPS listeners (a rotated Secret). No-op on plain HTTP. */
  setSecureContext(context: SecureContextOptions): void;
  /** Closes the listeners and every open connection. Idempotent. */
  close(): Promise<void>;
}

type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/**
 * Starts the health server (/livez, /readyz, /status) and the metrics server (/metrics, /status). When
 * both ports are the same number (0 included), one server on one port serves every route.
 */
export async function startHttpServers(deps: HttpServersDeps): Promise<HttpServers> {
  checkPort("healthPort", deps.healthPort);
  checkPort("metricsPort", deps.metricsPort);
  const health: Record<string, Route> = {
    "/livez": (_req, res) => {
      const isLive = deps.isLive();
      json(res, isLive ? 200 : 503, { live: isLive });
    },
    "/readyz": (_req, res) => {
      if (deps.isReady()) {
        json(res, 200, { ready: true });
        return;
      }
      json(res, 503, { ready: false, reason: deps.notReadyReason?.() ?? "not ready" });
    },
    "/status": (_req, res) => json(res, 200, deps.status()),
  };
  const metrics: Record<string, Route> = {
    "/metrics": async (_req, res) => {
      const body = await deps.registry.metrics();
      res.writeHead(200, { "content-type": deps.registry.contentType, "cache-control": "no-store" });
      res.end(body);
    },
    "/status": health["/status"] as Route,
  };
  const servers: Server[] = [];
  try {
    if (deps.healthPort === deps.metricsPort) {
      const server = await listen(deps, { ...health, ...metrics }, deps.healthPort);
      servers.push(server);
      const port = portOf(server);
      return handle(servers, port, port);
    }
    servers.push(await listen(deps, health, deps.healthPort));
    servers.push(await listen(deps, metrics, deps.metricsPort));
    return handle(servers, portOf(servers[0] as Server), portOf(servers[1] as Server));
  } catch (err) {
    await closeAll(servers);
    throw err;
  }
}

function checkPort(field: string, port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new HttpServerError(
      HttpServerErrorCode.invalidPort,
      `${field} must be an integer 0..65535, got ${port}`,
    );
  }
}

function handle(servers: Server[], healthPort: number, metricsPort: number): HttpServers {
  let closing: Promise<void> | undefined;
  return {
    healthPort,
    metricsPort,
    close: () => (closing ??= closeAll(servers)),
    setSecureContext: (context) => {
      for (const server of servers) {
        if ("setSecureContext" in server && typeof server.setSecureContext === "function") {
          (server as unknown as { setSecureContext(c: SecureContextOptions): void }).setSecureContext(
            context,
          );
        }
      }
    },
  };
}

async function listen(deps: HttpServersDeps, routes: Record<string, Route>, port: number): Promise<Server> {
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void serve(deps, routes, req, res);
  };
  const timeouts = { headersTimeout: 10_000, requestTimeout: 30_000 };
  const server: Server =
    deps.tls === undefined
      ? createServer(timeouts, onRequest)
      : createHttpsServer(
          { ...timeouts, cert: deps.tls.cert, key: deps.tls.key, minVersion: "TLSv1.2" },
          onRequest,
        );
  server.on("clientError", (err, socket) => {
    deps.logger.debug({ err }, "bad HTTP request");
    socket.destroy();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, deps.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    throw new HttpServerError(HttpServerErrorCode.listen, `cannot listen on ${deps.host ?? "*"}:${port}`, {
      cause: err,
    });
  }
  return server;
}

async function serve(
  deps: HttpServersDeps,
  routes: Record<string, Route>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = (req.url ?? "/").split("?", 1)[0] ?? "/";
  const route = routes[path];
  if (route === undefined) {
    json(res, 404, { error: "not found", paths: Object.keys(routes) });
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    json(res, 405, { error: "method not allowed" });
    return;
  }
  try {
    await route(req, res);
  } catch (err) {
    deps.logger.error({ err, path }, "HTTP handler failed");
    if (!res.headersSent) json(res, 500, { error: "internal error" });
    else res.destroy();
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(text);
}

function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}

async function closeAll(servers: readonly Server[]): Promise<void> {
  await Promise.all(
    servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    ),
  );
}
