import https from "node:https";

/** A non-2xx answer from the API server; `status` is the HTTP status, `reason` the Status reason. */
export class KubeApiError extends Error {
  override readonly name = "KubeApiError";
  readonly code = "ERR_KUBE_API_STATUS";
  readonly status: number;
  readonly reason: string | undefined;
  readonly body: unknown;

  constructor(method: string, path: string, status: number, body: unknown) {
    const reason = isRecord(body) && typeof body.reason === "string" ? body.reason : undefined;
    const message = isRecord(body) && typeof body.message === "string" ? body.message : "";
    super(`${method} ${path}: HTTP ${status}${reason === undefined ? "" : ` ${reason}`} ${message}`.trim());
    this.status = status;
    this.reason = reason;
    this.body = body;
  }
}

export interface KubeEndpoint {
  /** `https://127.0.0.1:PORT` */
  readonly url: string;
  readonly token: string;
  /** PEM of the CA that signed the serving certificate. */
  readonly ca: string;
}

export interface KubeResponse {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** Most bytes of one response body (the integration tests never list more than a few MB). */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

/**
 * One HTTP request to the API server, JSON in and out, without client-node's typed models (tests compare
 * the raw JSON the datastore sees). Resolves with any status; network errors reject.
 */
export function kubeRequestRaw(
  endpoint: KubeEndpoint,
  method: string,
  path: string,
  body?: unknown,
  options: { timeoutMs?: number; contentType?: string } = {},
): Promise<KubeResponse> {
  const url = new URL(path, endpoint.url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise<KubeResponse>((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: endpoint.ca,
        agent: false,
        timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        headers: {
          authorization: `Bearer ${endpoint.token}`,
          accept: "application/json",
          ...(payload === undefined
            ? {}
            : {
                "content-type": options.contentType ?? "application/json",
                "content-length": String(payload.byteLength),
              }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on("data", (chunk: Buffer) => {
          bytes += chunk.byteLength;
          if (bytes > MAX_BODY_BYTES) {
            req.destroy(new Error(`${method} ${path}: response larger than ${MAX_BODY_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          if ((res.headers["content-type"] ?? "").includes("json") && text !== "") {
            try {
              parsed = JSON.parse(text);
            } catch (err) {
              reject(new Error(`${method} ${path}: invalid JSON in the response`, { cause: err }));
              return;
            }
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** Like kubeRequestRaw, but a non-2xx status rejects with a KubeApiError. */
export async function kubeRequest<T = unknown>(
  endpoint: KubeEndpoint,
  method: string,
  path: string,
  body?: unknown,
  options: { timeoutMs?: number; contentType?: string } = {},
): Promise<T> {
  const res = await kubeRequestRaw(endpoint, method, path, body, options);
  if (res.status < 200 || res.status > 299) throw new KubeApiError(method, path, res.status, res.body);
  return res.body as T;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}
