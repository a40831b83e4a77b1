/** Helpers for the client e2e tests: event recording and waiting (with a timeout, never a sleep). */
import { createServer } from "node:net";
import { onTestFinished } from "vitest";
import { TabbyClient } from "../../src/client/index.js";
import type {
  ClientEventMap,
  ClientEventName,
  ClientStatus,
  TabbyClientError,
  TabbyClientOptions,
  Update,
} from "../../src/client/index.js";
import { TestServer } from "./client-test-server.js";
import type { TestServerOptions } from "./client-test-server.js";

/** Everything a client emitted, in order. */
export interface Recorded {
  readonly updates: (readonly Update[])[];
  readonly statuses: ClientStatus[];
  readonly errors: TabbyClientError[];
}

export function record(client: TabbyClient): Recorded {
  const r: Recorded = { updates: [], statuses: [], errors: [] };
  client.on("updates", (batch) => r.updates.push(batch));
  client.on("status", (s) => r.statuses.push(s));
  client.on("error", (e) => r.errors.push(e));
  return r;
}

/** Resolves with the first `event` argument that satisfies `predicate`; rejects after `timeoutMs`. */
export function nextEvent<E extends ClientEventName>(
  client: TabbyClient,
  event: E,
  predicate: (arg: ClientEventMap[E]) => boolean = () => true,
  timeoutMs = 5000,
): Promise<ClientEventMap[E]> {
  return new Promise((resolve, reject) => {
    const listener = (arg: ClientEventMap[E]): void => {
      if (!predicate(arg)) return;
      clearTimeout(timer);
      client.off(event, listener);
      resolve(arg);
    };
    const timer = setTimeout(() => {
      client.off(event, listener);
      reject(new Error(`no matching "${event}" event within ${timeoutMs} ms`));
    }, timeoutMs);
    client.on(event, listener);
  });
}

export function inSync(client: TabbyClient, server?: string, timeoutMs?: number): Promise<ClientStatus> {
  return nextEvent(
    client,
    "status",
    (s) => s.state === "in-sync" && (server === undefined || s.server === server),
    timeoutMs,
  );
}

/** Resolves when `condition()` holds (checked every 5 ms); rejects after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A client that is closed when the test finishes. */
export function makeClient(options: TabbyClientOptions): TabbyClient {
  const client = new TabbyClient(options);
  onTestFinished(() => client.close());
  return client;
}

/** A test server that is closed when the test finishes. */
export async function makeServer(options: TestServerOptions = {}): Promise<TestServer> {
  const server = await TestServer.start(options);
  onTestFinished(() => server.close());
  return server;
}

/** A ws:// address on which nothing listens (connections are refused). */
export async function refusingAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return `ws://127.0.0.1:${address.port}`;
}

/** Values with some nesting, so that deep equality matters. */
export function pool(cidr: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { metadata: { name: cidr, uid: `uid-${cidr}` }, spec: { cidr, ipipMode: "Never", ...extra } };
}
