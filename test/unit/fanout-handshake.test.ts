import { describe, expect, it } from "vitest";
import { CloseCode } from "../../proto/close-codes.js";
import { encodeMessage, encodeValue } from "../../proto/codec.js";
import type { HelloMessage } from "../../proto/messages.js";
import { evaluateHello, readClientFrame } from "../../src/server/fanout/handshake.js";

const base: HelloMessage = {
  t: "hello",
  versions: [1, 1],
  view: "felix",
  client: { name: "t", version: "1" },
};

describe("hello evaluation", () => {
  it("accepts and keeps only the features both sides know, in the client's order", () => {
    const verdict = evaluateHello(
      { ...base, versions: [0, 7], features: ["move", "zstd", "deflate-snapshot", "move"] },
      ["deflate-snapshot", "move"],
    );
    expect(verdict).toMatchObject({
      ok: true,
      version: 1,
      view: "felix",
      features: ["move", "deflate-snapshot"],
    });
  });

  it.each<[Partial<HelloMessage>, number]>([
    [{ versions: [2, 5] }, CloseCode.unsupportedVersion],
    [{ versions: [0, 0] }, CloseCode.unsupportedVersion],
    [{ view: "Felix" }, CloseCode.unknownView],
    [{ view: "bgp" }, CloseCode.nodeRequired],
    [{ view: "node-status", node: "" }, CloseCode.nodeRequired],
  ])("rejects %o with close code %i", (overrides, code) => {
    expect(evaluateHello({ ...base, ...overrides }, [])).toMatchObject({ ok: false, code });
  });

  it("does not require a node for views without node-scoped kinds", () => {
    expect(evaluateHello({ ...base, view: "tunnel-ip-allocation" }, [])).toMatchObject({
      ok: true,
      node: undefined,
    });
  });
});

describe("client frame reading", () => {
  it("classifies bad frames", () => {
    expect(readClientFrame(Buffer.from("x"), false)).toMatchObject({ ok: false, reason: "text-frame" });
    expect(readClientFrame(Buffer.from([0xc1, 0, 0xff]), true)).toMatchObject({
      ok: false,
      reason: "not-msgpack",
    });
    expect(readClientFrame(encodeValue({ t: "hello" }), true)).toMatchObject({
      ok: false,
      reason: "bad-message",
    });
    expect(readClientFrame(encodeValue({ t: "welcome" }), true)).toMatchObject({
      ok: false,
      reason: "unknown-type",
    });
  });

  it("reads fragmented and ArrayBuffer payloads", () => {
    const frame = encodeMessage({ t: "pong", ts: 5 });
    const parts = [frame.subarray(0, 2), frame.subarray(2)];
    expect(readClientFrame(parts, true)).toEqual({ ok: true, message: { t: "pong", ts: 5 } });
    const ab = frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.byteLength) as ArrayBuffer;
    expect(readClientFrame(ab, true)).toEqual({ ok: true, message: { t: "pong", ts: 5 } });
  });
});
