import { request as httpRequest } from "node:http";
import type { IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { ReplicaError, ReplicaErrorCode } from "./errors.js";

/** What the directory reads from a peer's /status: its server id, readiness and session count. */
export interface PeerStatus {
  readonly server: string;
  readonly isReady: boolean;
  /** `connections.active` of its /status: sessions past the handshake. */
  readonly sessions: number;
}

/** Reads one peer's status; rejects with a ReplicaError (ERR_REPLICA_STATUS_READ). Must honour `signal`. */
export type StatusFetcher = (url: string, signal: AbortSignal) => Promise<PeerStatus>;

/** A /status answer larger than this is refused (a 1000-session server answers a few KiB). */
export const MAX_STATUS_BYTES = 4 * 1024 * 1024;

function fail(url: string, why: string, cause?: unknown): ReplicaError {
  return new ReplicaError(ReplicaErrorCode.statusRead, `${url}: ${why}`, { cause });
}

/** The three fields the directory uses, checked; anything else in the answer is ignored. */
export function parsePeerStatus(url: string, body: unknown): PeerStatus {
  if (body === null || typeof body !== "object") throw fail(url, "not a JSON object");
  const b = body as Record<string, unknown>;
  const connections = b.connections as Record<string, unknown> | null | undefined;
  const active = typeof connections === "object" && connections !== null ? connections.active : undefined;
  if (typeof b.server !== "string" || typeof b.ready !== "boolean" || typeof active !== "number") {
    throw fail(url, "not a tabby /status answer");
  }
  return { server: b.server, isReady: b.ready, sessions: active };
}

/**
 * GET a peer's /status with node:http(s) (one request, no keep-alive), bounded by `signal` and
 * MAX_STATUS_BYTES. HTTPS peers are checked against the system roots plus `ca`.
 */
export function fetchPeerStatus(
  url: string,
  signal: AbortSignal,
  options: { readonly ca?: string | Buffer } = {},
): Promise<PeerStatus> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(fail(url, "aborted", signal.reason));
      return;
    }
    const isHttps = url.startsWith("https:");
    const onResponse = (res: IncomingMessage): void => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(fail(url, `HTTP ${res.statusCode ?? 0}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_STATUS_BYTES) {
          req.destroy(fail(url, `answer larger than ${MAX_STATUS_BYTES} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on("end", () => {
        try {
          resolve(parsePeerStatus(url, JSON.parse(Buffer.concat(chunks).toString("utf8"))));
        } catch (err) {
          reject(err instanceof ReplicaError ? err : fail(url, "not JSON", err));
        }
      });
      res.on("error", (err) => reject(fail(url, "response error", err)));
    };
    const req = isHttps
      ? httpsRequest(
          url,
          { signal, agent: false, ...(options.ca !== undefined && { ca: options.ca }) },
          onResponse,
        )
      : httpRequest(url, { signal, agent: false }, onResponse);
    req.on("error", (err) => reject(err instanceof ReplicaError ? err : fail(url, err.message, err)));
    req.end();
  });
}
