import http from "node:http";
import https from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

/** A JSON response of the Kubernetes API. */
export interface KubeJsonResponse {
  readonly status: number;
  readonly body: unknown;
}

/** The two calls authentication needs (tests pass a fake). Rejects on transport errors and timeouts. */
export interface KubeApi {
  request(
    method: "GET" | "POST",
    path: string,
    body: unknown,
    signal: AbortSignal,
  ): Promise<KubeJsonResponse>;
}

/** Largest response body read, in bytes (a TokenReview or a Pod). */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * KubeApi over node:http(s), authenticated as the datastore is (`kubeConfig.applyToHTTPSOptions`), with
 * one keep-alive agent and a deadline per request.
 */
export class KubeConfigApi implements KubeApi {
  readonly #kubeConfig: KubeConfig;
  readonly #base: URL;
  readonly #agent: http.Agent;
  readonly #timeoutMs: number;

  constructor(kubeConfig: KubeConfig, timeoutMs: number) {
    const cluster = kubeConfig.getCurrentCluster();
    if (cluster === null) throw new TypeError("kubeConfig: no current cluster");
    this.#kubeConfig = kubeConfig;
    this.#base = new URL(cluster.server);
    this.#timeoutMs = timeoutMs;
    const agentOptions = { keepAlive: true, maxSockets: 8 };
    this.#agent =
      this.#base.protocol === "https:" ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  async request(
    method: "GET" | "POST",
    path: string,
    body: unknown,
    signal: AbortSignal,
  ): Promise<KubeJsonResponse> {
    const opts: https.RequestOptions = {};
    await this.#kubeConfig.applyToHTTPSOptions(opts);
    const isHttps = this.#base.protocol === "https:";
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const requestOptions: https.RequestOptions = {
      ...opts,
      agent: this.#agent,
      protocol: this.#base.protocol,
      hostname: this.#base.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: this.#base.port === "" ? (isHttps ? 443 : 80) : Number(this.#base.port),
      method,
      path: `${this.#base.pathname.replace(/\/+$/, "")}${path}`,
      headers: {
        ...(opts.headers ?? {}),
        Accept: "application/json",
        "User-Agent": "tabby-auth",
        ...(payload !== undefined && {
          "Content-Type": "application/json",
          "Content-Length": String(payload.byteLength),
        }),
      },
      signal: AbortSignal.any([signal, timeout]),
    };
    return new Promise<KubeJsonResponse>((resolve, reject) => {
      const req = (isHttps ? https : http).request(requestOptions, (res) => {
        const parts: Buffer[] = [];
        let total = 0;
        res.on("data", (chunk: Buffer) => {
          total += chunk.byteLength;
          if (total > MAX_BODY_BYTES) {
            res.destroy(new RangeError(`response larger than ${MAX_BODY_BYTES} bytes`));
            return;
          }
          parts.push(chunk);
        });
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(parts).toString("utf8");
          let parsed: unknown;
          try {
            parsed = text === "" ? undefined : JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on("error", reject);
      req.end(payload);
    });
  }

  /** Destroys the agent's sockets. */
  close(): void {
    this.#agent.destroy();
  }
}
