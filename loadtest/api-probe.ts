import { request } from "node:http";
import type { ClientRequest } from "node:http";
import type { Histogram } from "hdr-histogram-js";
import { CHANGED_AT_ANNOTATION } from "../src/server/datastore/index.js";
import { newLatencyHistogram, summarize } from "./histogram.js";
import type { LatencySummary } from "./histogram.js";

/** Longest line kept while waiting for its end (a pod event is a few KB). */
const MAX_LINE_BYTES = 4 * 1024 * 1024;
const RETRY_MS = 500;

/**
 * One direct watch of pods on the simulator, in the parent process: the latency from a change's stamp to
 * its watch event, i.e. the API side's share of the end-to-end latency (the simulator's write, its watch
 * fan-out, loopback). Re-watches when the watch ends; stops on close().
 */
export class ApiWatchProbe {
  readonly #url: string;
  readonly #token: string;
  #histogram: Histogram = newLatencyHistogram();
  #request: ClientRequest | undefined;
  #timer: NodeJS.Timeout | undefined;
  #isClosed = false;
  #errors = 0;

  constructor(url: string, token: string) {
    this.#url = url;
    this.#token = token;
  }

  start(): void {
    this.#watch("");
  }

  /** Starts a new window: the histogram from zero. */
  window(): void {
    this.#histogram.destroy();
    this.#histogram = newLatencyHistogram();
  }

  summary(): LatencySummary {
    return summarize(this.#histogram);
  }

  /** Watch requests that failed (each is retried). */
  get errors(): number {
    return this.#errors;
  }

  close(): void {
    this.#isClosed = true;
    clearTimeout(this.#timer);
    this.#request?.destroy();
    this.#histogram.destroy();
  }

  #retry(rv: string): void {
    if (this.#isClosed) return;
    this.#timer = setTimeout(() => this.#watch(rv), RETRY_MS);
  }

  #watch(fromRv: string): void {
    if (this.#isClosed) return;
    // No resourceVersion: the watch starts with ADDED events for every pod; those carry old stamps, so
    // the probe starts from the current resourceVersion, read with a one-item list.
    if (fromRv === "") {
      const req = request(
        `${this.#url}/api/v1/pods?limit=1`,
        { headers: { authorization: `Bearer ${this.#token}` }, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            try {
              const body = JSON.parse(Buffer.concat(chunks).toString()) as {
                metadata?: { resourceVersion?: string };
              };
              const rv = body.metadata?.resourceVersion;
              if (rv === undefined) throw new Error("list without a resourceVersion");
              this.#watch(rv);
            } catch (err) {
              this.#errors++;
              if (this.#errors === 1) console.error(`loadtest: API probe: ${String(err)}`);
              this.#retry("");
            }
          });
        },
      );
      req.on("error", () => {
        this.#errors++;
        this.#retry("");
      });
      this.#request = req;
      req.end();
      return;
    }
    let rv = fromRv;
    let pending = "";
    const req = request(
      `${this.#url}/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=600&resourceVersion=${encodeURIComponent(rv)}`,
      { headers: { authorization: `Bearer ${this.#token}` }, agent: false },
      (res) => {
        if (res.statusCode !== 200) {
          this.#errors++;
          res.resume();
          this.#retry(res.statusCode === 410 ? "" : rv);
          return;
        }
        res.setEncoding("utf8");
        res.on("data", (text: string) => {
          const now = Date.now();
          pending += text;
          let nl: number;
          while ((nl = pending.indexOf("\n")) >= 0) {
            const line = pending.slice(0, nl);
            pending = pending.slice(nl + 1);
            rv = this.#onEvent(line, now) ?? rv;
          }
          if (pending.length > MAX_LINE_BYTES) pending = "";
        });
        res.on("end", () => this.#retry(rv));
        res.on("error", () => undefined); // "end" or the request's "error" follows
      },
    );
    req.on("error", () => {
      this.#errors++;
      this.#retry(rv);
    });
    this.#request = req;
    req.end();
  }

  /** Records the latency of one event; returns its resourceVersion. */
  #onEvent(line: string, nowMs: number): string | undefined {
    if (line.trim() === "") return undefined;
    let event: {
      type?: string;
      object?: { metadata?: { resourceVersion?: string; annotations?: Record<string, string> } };
    };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      this.#errors++;
      return undefined;
    }
    const meta = event.object?.metadata;
    const stamp = meta?.annotations?.[CHANGED_AT_ANNOTATION];
    if ((event.type === "ADDED" || event.type === "MODIFIED") && stamp !== undefined) {
      const ms = Number(stamp);
      if (Number.isFinite(ms)) this.#histogram.recordValue(Math.max(0, nowMs - ms));
    }
    return meta?.resourceVersion;
  }
}
