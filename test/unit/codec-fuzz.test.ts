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
    // JSON has no -0; resource values come from JSON. msgpackr reads a `__proto__` key as `__proto_` (its
    // guard against prototype pollution), so values with that key cannot round-trip; Kubernetes rejects
    // such keys in labels and annotations, and the Calico CRDs' structural schemas prune unknown fields.
    fc.dictionary(
      fc.string({ maxLength: 8 }),
      fc
        .jsonValue({ maxDepth: 2 })
        .map((j) => JSON.parse(JSON.stringify(j)) as unknown)
        .filter((j) => !JSON.stringify(j).includes('"__proto__":')),
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
  fc.record({ t: fc.constant("left" as const), revision: fc.nat() }),
  fc.record({
    t: fc.constant("left" as const),
    revision: fc.nat(),
    state: fc.record({
      conversion: fc.string({ maxLength: 20 }),
      view: fc.constantFrom("felix", "bgp"),
      node: fc.string({ maxLength: 10 }),
      kinds: fc.dictionary(
        fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,11}$/),
        fc.tuple(fc.nat(), fc.stringMatching(/^[0-9a-f]{16}$/)),
        { maxKeys: 4 },
      ),
    }),
  }),
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
  fc.constant({ t: "leave" as const }),
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
        if (msg.t === "left") expect(decoded).toEqual(msg);
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

// ---- every msgpack integer form (what Go, Rust and other encoders emit) ----

type IntForm = "fixint" | "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "f64";

/** The forms that can hold `n` exactly, per the msgpack spec. */
function formsFor(n: bigint): IntForm[] {
  const forms: IntForm[] = ["i64", "f64"];
  if (n >= 0n) forms.push("u64");
  if (n >= 0n && n <= 0xffffffffn) forms.push("u32");
  if (n >= 0n && n <= 0xffffn) forms.push("u16");
  if (n >= 0n && n <= 0xffn) forms.push("u8");
  if (n >= -(2n ** 31n) && n < 2n ** 31n) forms.push("i32");
  if (n >= -(2n ** 15n) && n < 2n ** 15n) forms.push("i16");
  if (n >= -128n && n < 128n) forms.push("i8");
  if (n >= -32n && n < 128n) forms.push("fixint");
  return forms;
}

function packInt(n: bigint, form: IntForm): Buffer {
  const b = Buffer.alloc(9);
  switch (form) {
    case "fixint":
      return Buffer.from([Number(BigInt.asUintN(8, n))]);
    case "u8":
      return Buffer.from([0xcc, Number(n)]);
    case "u16":
      b[0] = 0xcd;
      b.writeUInt16BE(Number(n), 1);
      return b.subarray(0, 3);
    case "u32":
      b[0] = 0xce;
      b.writeUInt32BE(Number(n), 1);
      return b.subarray(0, 5);
    case "u64":
      b[0] = 0xcf;
      b.writeBigUInt64BE(n, 1);
      return b;
    case "i8":
      return Buffer.from([0xd0, Number(BigInt.asUintN(8, n))]);
    case "i16":
      b[0] = 0xd1;
      b.writeInt16BE(Number(n), 1);
      return b.subarray(0, 3);
    case "i32":
      b[0] = 0xd2;
      b.writeInt32BE(Number(n), 1);
      return b.subarray(0, 5);
    case "i64":
      b[0] = 0xd3;
      b.writeBigInt64BE(n, 1);
      return b;
    case "f64":
      b[0] = 0xcb;
      b.writeDoubleBE(Number(n), 1);
      return b;
  }
}

const fixstr = (s: string): Buffer => Buffer.concat([Buffer.from([0xa0 | s.length]), Buffer.from(s)]);
const fixmap = (pairs: [string, Buffer][]): Buffer =>
  Buffer.concat([Buffer.from([0x80 | pairs.length]), ...pairs.flatMap(([k, v]) => [fixstr(k), v])]);

/** A hello encoded by hand, with each integer in the given form (as a Go or Rust encoder may write it). */
function handHello(min: bigint, max: bigint, rev: bigint, forms: [IntForm, IntForm, IntForm]): Buffer {
  return fixmap([
    ["t", fixstr("hello")],
    ["versions", Buffer.concat([Buffer.from([0x92]), packInt(min, forms[0]), packInt(max, forms[1])])],
    ["view", fixstr("felix")],
    [
      "client",
      fixmap([
        ["name", fixstr("go")],
        ["version", fixstr("1")],
      ]),
    ],
    [
      "resume",
      fixmap([
        ["server", fixstr("s")],
        ["revision", packInt(rev, forms[2])],
      ]),
    ],
  ]);
}

const intAndForm = (min: bigint, max: bigint): fc.Arbitrary<[bigint, IntForm]> =>
  fc
    .bigInt({ min, max })
    .chain((n) => fc.constantFrom(...formsFor(n)).map((f) => [n, f] as [bigint, IntForm]));

describe("integers in any msgpack form", () => {
  it("accepts a hello whose versions and resume revision use any form that holds the value", () => {
    const safe = BigInt(Number.MAX_SAFE_INTEGER);
    fc.assert(
      fc.property(
        intAndForm(0n, 300n),
        intAndForm(0n, 300n),
        intAndForm(0n, safe),
        ([a, fa], [b, fb], [r, fr]) => {
          const [min, max, fmin, fmax] = a <= b ? [a, b, fa, fb] : [b, a, fb, fa];
          const hello = decodeClientMessage(handHello(min, max, r, [fmin, fmax, fr]));
          expect(hello).toMatchObject({
            versions: [Number(min), Number(max)],
            resume: { revision: Number(r) },
          });
        },
      ),
      { numRuns: 2000 },
    );
    // The two frames a Go client was refused with: versions as uint64, pong ts as int64.
    expect(decodeClientMessage(handHello(1n, 2n, 0n, ["u64", "u64", "u64"])).t).toBe("hello");
    const ts = 1_764_669_600_000n;
    expect(
      decodeClientMessage(
        fixmap([
          ["t", fixstr("pong")],
          ["ts", packInt(ts, "i64")],
        ]),
      ),
    ).toEqual({
      t: "pong",
      ts: Number(ts),
    });
  });

  it("accepts a pong ts in any form, and refuses integers beyond 2^53 with badMessage", () => {
    fc.assert(
      fc.property(intAndForm(-(2n ** 53n) + 1n, 2n ** 53n - 1n), ([n, form]) => {
        const pong = decodeClientMessage(
          fixmap([
            ["t", fixstr("pong")],
            ["ts", packInt(n, form)],
          ]),
        );
        expect(pong).toEqual({ t: "pong", ts: Number(n) });
      }),
      { numRuns: 2000 },
    );
    for (const form of ["u64", "i64"] as const) {
      expect(() =>
        decodeClientMessage(handHello(1n, 2n ** 53n + 2n, 0n, ["fixint", form, "fixint"])),
      ).toThrow(expect.objectContaining({ code: ProtoErrorCode.badMessage }) as Error);
    }
    expect(() => decodeClientMessage(handHello(1n, 2n, 2n ** 64n - 1n, ["fixint", "fixint", "u64"]))).toThrow(
      expect.objectContaining({ code: ProtoErrorCode.badMessage }) as Error,
    );
  });
});
