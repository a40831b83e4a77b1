import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeClientMessage, decodeServerMessage, encodeMessage, encodeValue } from "../../proto/codec.js";
import { ProtoError, ProtoErrorCode } from "../../proto/errors.js";
import type { ClientMessage, ServerMessage } from "../../proto/messages.js";

const CODES = new Set<string>(Object.values(ProtoErrorCode));

const entryArb = fc.record({
  k: fc.string({ maxLength: 40 }),
  v: fc.oneof(
    fc.constant(null),
    // JSON has no -0; resource values come from JSON.
    fc.dictionary(
      fc.string({ maxLength: 8 }),
      fc.jsonValue({ maxDepth: 2 }).map((j) => JSON.parse(JSON.stringify(j)) as unknown),
      { maxKeys: 4 },
    ),
  ),
});

const serverArb: fc.Arbitrary<ServerMessage> = fc.oneof(
  fc.record({
    t: fc.constant("welcome" as const),
    version: fc.nat(5),
    server: fc.string({ maxLength: 20 }),
    view: fc.constantFrom(
      "felix" as const,
      "bgp" as const,
      "tunnel-ip-allocation" as const,
      "node-status" as const,
    ),
    mode: fc.constantFrom("resume" as const, "snapshot" as const),
    revision: fc.nat(),
    features: fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  }),
  fc.record({ t: fc.constant("snap-begin" as const), revision: fc.nat(), count: fc.nat(), chunks: fc.nat() }),
  fc.record({
    t: fc.constant("snap-chunk" as const),
    index: fc.nat(),
    entries: fc.array(entryArb, { maxLength: 5 }),
  }),
  fc.record({ t: fc.constant("snap-chunk" as const), index: fc.nat(), z: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ t: fc.constant("snap-end" as const), revision: fc.nat() }),
  fc
    .record({ from: fc.nat(1000), d: fc.nat(1000), changes: fc.array(entryArb, { maxLength: 5 }) })
    .map(({ from, d, changes }) => ({ t: "deltas" as const, from, to: from + d, changes })),
  fc.record({
    t: fc.constant("status" as const),
    state: fc.constantFrom("syncing" as const, "in-sync" as const, "stale" as const),
    since: fc.nat(),
    reason: fc.string({ maxLength: 30 }),
  }),
  fc.record({ t: fc.constant("ping" as const), ts: fc.nat() }),
  fc.record({ t: fc.constant("move" as const), reason: fc.string({ maxLength: 10 }), delayMs: fc.nat() }),
  fc.record({
    t: fc.constant("error" as const),
    code: fc.integer({ min: 4000, max: 4999 }),
    reason: fc.string({ maxLength: 20 }),
  }),
);

const clientArb: fc.Arbitrary<ClientMessage> = fc.oneof(
  fc.record({
    t: fc.constant("hello" as const),
    versions: fc.tuple(fc.nat(3), fc.nat(3)).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const),
    view: fc.string({ maxLength: 20 }),
    node: fc.string({ maxLength: 20 }),
    client: fc.record({ name: fc.string({ maxLength: 10 }), version: fc.string({ maxLength: 10 }) }),
    resume: fc.record({ server: fc.string({ maxLength: 10 }), revision: fc.nat() }),
    features: fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  }),
  fc.record({ t: fc.constant("pong" as const), ts: fc.nat() }),
);

type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "replace"; at: number; byte: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), byte: fc.nat(255) }),
);

function mutate(frame: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(frame);
  for (const m of mutations) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.kind === "flip") b[at] = (b[at] as number) ^ (1 << m.bit);
    else if (m.kind === "truncate") b = b.subarray(0, at);
    else if (m.kind === "insert") b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else b[at] = m.byte;
  }
  return b;
}

/** Decodes with both decoders; each must return a message or throw a ProtoError with a known code. */
function decodeBoth(frame: Uint8Array): void {
  for (const decode of [decodeServerMessage, decodeClientMessage]) {
    try {
      const msg = decode(frame);
      expect(typeof msg.t).toBe("string");
    } catch (err) {
      if (!(err instanceof ProtoError)) throw err;
      expect(CODES.has(err.code)).toBe(true);
    }
  }
}

describe("codec fuzzing", () => {
  it("round-trips valid messages", () => {
    fc.assert(
      fc.property(serverArb, (msg) => {
        const decoded = decodeServerMessage(encodeMessage(msg));
        expect(decoded.t).toBe(msg.t);
        if (msg.t === "deltas" && decoded.t === "deltas") expect(decoded.changes).toEqual(msg.changes);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(clientArb, (msg) => {
        expect(decodeClientMessage(encodeMessage(msg))).toEqual(msg);
      }),
      { numRuns: 1000 },
    );
  });

  it("decodes 6,000 mutated frames to a message or a typed error", () => {
    fc.assert(
      fc.property(
        fc.oneof(serverArb, clientArb),
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        (msg, ms) => decodeBoth(mutate(encodeMessage(msg), ms)),
      ),
      { numRuns: 6000 },
    );
  });

  it("decodes 4,000 random byte strings and random msgpack values to a message or a typed error", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => decodeBoth(bytes)),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        fc.anything({
          withBigInt: false,
          withMap: true,
          withSet: true,
          withDate: true,
          withTypedArray: true,
        }),
        (v) => {
          let frame: Buffer;
          try {
            frame = encodeValue(v);
          } catch {
            return; // not encodable: nothing to decode
          }
          decodeBoth(frame);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("classifies the typical bad frames with stable codes", () => {
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(), ProtoErrorCode.badFrame],
      [Buffer.from([0xc1]), ProtoErrorCode.badMessage], // the never-used byte decodes to a non-map
      [encodeMessage({ t: "ping", ts: 1 }).subarray(0, 3), ProtoErrorCode.badFrame],
      [encodeValue([1, 2, 3]), ProtoErrorCode.badMessage],
      [encodeValue({ t: 7 }), ProtoErrorCode.badMessage],
      [encodeValue({ t: "ping" }), ProtoErrorCode.badMessage],
      [encodeValue({ t: "launch-missiles" }), ProtoErrorCode.unknownType],
      [encodeValue({ t: "deltas", from: 5, to: 4, changes: [] }), ProtoErrorCode.badMessage],
      [encodeValue({ t: "deltas", from: 1, to: 2, changes: [{ k: 1, v: null }] }), ProtoErrorCode.badMessage],
    ];
    for (const [frame, code] of cases) {
      expect(() => decodeServerMessage(frame)).toThrow(expect.objectContaining({ code }) as Error);
    }
    expect(() =>
      decodeClientMessage(
        encodeValue({ t: "hello", versions: [2, 1], view: "felix", client: { name: "a", version: "1" } }),
      ),
    ).toThrow(expect.objectContaining({ code: ProtoErrorCode.badMessage }) as Error);
  });
});
