/** Helpers of the simulator tests: start a simulator that is closed after the test, read watch streams. */
import { request } from "node:http";
import { onTestFinished } from "vitest";
import { startSimulator, type Simulator, type SimulatorOptions } from "../../src/sim/index.js";

export async function startTestSim(options: SimulatorOptions = {}): Promise<Simulator> {
  const sim = await startSimulator(options);
  onTestFinished(() => sim.close());
  return sim;
}

export interface WatchEvent {
  readonly type: string;
  readonly object: {
    kind?: string;
    apiVersion?: string;
    code?: number;
    reason?: string;
    metadata: {
      name?: string;
      namespace?: string;
      resourceVersion?: string;
      annotations?: Record<string, string>;
    };
    [k: string]: unknown;
  };
}

export interface WatchStream {
  /** The HTTP status of the response. */
  readonly status: Promise<number>;
  /** The body when the status is not 200 (a Status JSON). */
  readonly errorBody: Promise<unknown>;
  readonly events: WatchEvent[];
  /** Resolves when the server ends the response (cleanly or not). */
  readonly ended: Promise<void>;
  /** Resolves with the first event (from index `from`) matching `pred`, or rejects after timeoutMs. */
  next(pred: (e: WatchEvent) => boolean, timeoutMs?: number, from?: number): Promise<WatchEvent>;
  /** Resolves once `n` events arrived. */
  count(n: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Opens a watch (GET with watch=1 added) and parses its JSON lines. */
export function openWatch(url: string): WatchStream {
  const events: WatchEvent[] = [];
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of [...waiters]) w();
  };
  let resolveStatus!: (n: number) => void;
  let resolveError!: (b: unknown) => void;
  let resolveEnded!: () => void;
  const status = new Promise<number>((r) => (resolveStatus = r));
  const errorBody = new Promise<unknown>((r) => (resolveError = r));
  const ended = new Promise<void>((r) => (resolveEnded = r));
  let isEnded = false;
  const u = new URL(url);
  if (!u.searchParams.has("watch")) u.searchParams.set("watch", "1");
  const req = request(u, { headers: { authorization: "Bearer test" } }, (res) => {
    resolveStatus(res.statusCode ?? 0);
    let buf = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim() === "") continue;
        if (res.statusCode === 200) events.push(JSON.parse(line) as WatchEvent);
      }
      notify();
    });
    const end = (): void => {
      if (res.statusCode !== 200) resolveError(buf === "" ? undefined : (JSON.parse(buf) as unknown));
      isEnded = true;
      resolveEnded();
      notify();
    };
    res.on("end", end);
    res.on("close", end);
    res.on("error", end);
  });
  req.on("error", () => {
    isEnded = true;
    resolveStatus(0);
    resolveEnded();
    notify();
  });
  req.end();

  const waitFor = <T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const attempt = (): void => {
        const v = check();
        if (v !== undefined) {
          cleanup();
          resolve(v);
        } else if (isEnded) {
          cleanup();
          reject(new Error(`watch ended before ${what}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; got ${events.length} events`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(attempt);
      };
      waiters.add(attempt);
      attempt();
    });

  return {
    status,
    errorBody,
    events,
    ended,
    next: (pred, timeoutMs = 5000, from = 0) =>
      waitFor(() => events.slice(from).find(pred), timeoutMs, "an event"),
    count: (n, timeoutMs = 5000) =>
      waitFor(() => (events.length >= n ? true : undefined), timeoutMs, `${n} events`).then(() => {}),
    close: () => req.destroy(),
  };
}

/** A parsed JSON response body, navigated freely by assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyJson = any;

export async function http(
  method: string,
  url: string,
  body?: unknown,
  contentType = "application/json",
): Promise<{ status: number; body: AnyJson; headers: Headers }> {
  const init: RequestInit = {
    method,
    headers: { authorization: "Bearer anything", "content-type": contentType },
  };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: the test sees the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export function podBody(
  name: string,
  ns = "default",
  labels: Record<string, string> = { app: name },
): object {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, labels },
    spec: { nodeName: "node-1", containers: [{ name: "c", image: "nginx" }] },
    status: { phase: "Running", podIP: "10.48.0.5", podIPs: [{ ip: "10.48.0.5" }] },
  };
}

interface Named {
  readonly name: string;
  readonly [k: string]: unknown;
}

/** The metadata.name of each item of a list body. */
export function itemNames(body: AnyJson): string[] {
  return (body as { items: { metadata: Named }[] }).items.map((i) => i.metadata.name);
}

export function itemNamespaces(body: AnyJson): string[] {
  return (body as { items: { metadata: { namespace: string } }[] }).items.map((i) => i.metadata.namespace);
}

/** The entries of a discovery list (`resources` of an APIResourceList, `groups` of an APIGroupList). */
export function entries(body: AnyJson, field: "resources" | "groups"): Named[] {
  return (body as Record<string, Named[]>)[field]!;
}
