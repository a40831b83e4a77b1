import { describe, expect, it } from "vitest";
import { ClientClosedError, ClientOptionsError, UpdateStream } from "../../src/client/index.js";
import type { TypedUpdate } from "../../src/client/index.js";

const pool = (name: string, cidr: string): TypedUpdate => ({
  key: `IPPool/${name}`,
  kind: "IPPool",
  value: {
    kind: "IPPool",
    apiVersion: "projectcalico.org/v3",
    metadata: { name, uid: "u", resourceVersion: "1" },
    spec: { cidr },
  },
});
const gone = (name: string): TypedUpdate => ({ key: `IPPool/${name}`, kind: "IPPool", value: null });

function stream(options: ConstructorParameters<typeof UpdateStream>[0] = {}): {
  s: UpdateStream;
  detached: () => number;
} {
  let detached = 0;
  const s = new UpdateStream(options, () => detached++);
  return { s, detached: () => detached };
}

describe("UpdateStream", () => {
  it("hands batches to a waiting consumer and queues them for a busy one, in order", async () => {
    const { s } = stream();
    const first = s.next();
    s.push([pool("a", "10.0.0.0/16")]);
    expect((await first).value).toEqual([pool("a", "10.0.0.0/16")]);
    s.push([pool("b", "10.1.0.0/16")]);
    s.push([gone("a")]);
    s.push([]);
    expect(s.pending).toBe(2);
    expect((await s.next()).value).toEqual([pool("b", "10.1.0.0/16")]);
    expect((await s.next()).value).toEqual([gone("a")]);
  });

  it("coalesces what a slow consumer has not taken into the latest update per key", async () => {
    const { s } = stream({ maxPendingBatches: 2 });
    s.push([pool("a", "10.0.0.0/16"), pool("b", "10.1.0.0/16")]);
    s.push([pool("a", "10.2.0.0/16")]);
    s.push([gone("b"), pool("c", "10.3.0.0/16")]);
    expect(s.pending).toBe(1);
    expect(s.coalesced).toBe(1);
    expect((await s.next()).value).toEqual([pool("a", "10.2.0.0/16"), gone("b"), pool("c", "10.3.0.0/16")]);
  });

  it("ends after the held batches when the client closes, and throws the client's error if it failed", async () => {
    const { s, detached } = stream();
    s.push([pool("a", "10.0.0.0/16")]);
    s.end(undefined);
    s.push([pool("late", "10.9.0.0/16")]);
    expect(detached()).toBe(1);
    const seen: (readonly TypedUpdate[])[] = [];
    for await (const batch of s) seen.push(batch);
    expect(seen).toEqual([[pool("a", "10.0.0.0/16")]]);

    const failed = stream().s;
    const waiting = failed.next();
    failed.end(new ClientClosedError("every server rejected the client"));
    await expect(waiting).rejects.toMatchObject({ code: "ERR_CLIENT_CLOSED" });
    expect(await failed.next()).toEqual({ value: undefined, done: true });
  });

  it("stops at once on abort and on break, detaching once", async () => {
    const abort = new AbortController();
    const { s, detached } = stream({ signal: abort.signal });
    s.push([pool("a", "10.0.0.0/16")]);
    abort.abort();
    expect(await s.next()).toEqual({ value: undefined, done: true });
    expect(detached()).toBe(1);

    const b = stream();
    b.s.push([pool("a", "10.0.0.0/16")]);
    b.s.push([pool("b", "10.1.0.0/16")]);
    for await (const _ of b.s) break;
    expect(b.detached()).toBe(1);
    expect(b.s.pending).toBe(0);
  });

  it("rejects a bad maxPendingBatches naming the option", () => {
    expect(() => new UpdateStream({ maxPendingBatches: 0 }, () => undefined)).toThrow(ClientOptionsError);
    expect(() => new UpdateStream({ maxPendingBatches: 1.5 }, () => undefined)).toThrow(/maxPendingBatches/);
  });
});
