import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WatchDecoder } from "../../src/server/datastore/watch-decoder.js";

const events = [
  { type: "ADDED", object: { metadata: { name: "a", resourceVersion: "1" } } },
  { type: "MODIFIED", object: { metadata: { name: "é-ü-漢", resourceVersion: "2" } } },
  { type: "BOOKMARK", object: { metadata: { resourceVersion: "3" } } },
  { type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } },
];
const body = Buffer.from(events.map((e) => JSON.stringify(e) + "\n").join(""));

describe("WatchDecoder", () => {
  it("decodes whatever way the body is chunked (UTF-8 split mid-character included)", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: body.length - 1 }), { maxLength: 20 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), body.length];
        const d = new WatchDecoder("pods", 1 << 20);
        const out: unknown[] = [];
        const onEvent = (e: unknown): number => out.push(e);
        for (let i = 0; i + 1 < points.length; i++) d.push(body.subarray(points[i], points[i + 1]), onEvent);
        d.end(onEvent);
        expect(out).toEqual(events);
      }),
    );
  });

  it("decodes a last line without newline at the end, and skips blank lines", () => {
    const d = new WatchDecoder("pods", 1 << 20);
    const out: unknown[] = [];
    const onEvent = (e: unknown): number => out.push(e);
    d.push(Buffer.from("\n\r\n"), onEvent);
    d.push(Buffer.from(JSON.stringify(events[0])), onEvent);
    expect(out).toEqual([]);
    d.end(onEvent);
    expect(out).toEqual([events[0]]);
  });

  const bad: [string, string][] = [
    ["bad JSON", '{"type":"ADDED","object":{\n'],
    ["not an object", "[1,2]\n"],
    ["an unknown type", '{"type":"UPSERTED","object":{}}\n'],
    ["no object", '{"type":"ADDED"}\n'],
  ];
  it.each(bad)("throws ERR_DATASTORE_DECODE on %s", (_name, text) => {
    const d = new WatchDecoder("pods", 1 << 20);
    const out: unknown[] = [];
    const good = JSON.stringify(events[0]) + "\n";
    expect(() => d.push(Buffer.from(good + text), (e) => out.push(e))).toThrow(
      expect.objectContaining({ code: "ERR_DATASTORE_DECODE" }),
    );
    expect(out).toEqual([events[0]]); // what came before the bad line was delivered
  });

  it("bounds a line: more than maxLineBytes without newline is a decode error", () => {
    const d = new WatchDecoder("pods", 100);
    const ignore = (): void => undefined;
    d.push(Buffer.alloc(60, 0x20), ignore);
    expect(d.pendingBytes).toBe(60);
    expect(() => d.push(Buffer.alloc(60, 0x20), ignore)).toThrow(
      expect.objectContaining({ code: "ERR_DATASTORE_DECODE" }),
    );
    expect(d.pendingBytes).toBe(0);
  });
});
