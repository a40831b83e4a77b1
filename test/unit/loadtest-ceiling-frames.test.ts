import { describe, expect, it } from "vitest";
import { decodeServerMessage } from "../../proto/codec.js";
import type { DeltasMessage } from "../../proto/messages.js";
import { frameTemplate, smallestFrameBytes, stampFrame } from "../../loadtest/ceiling-frames.js";
import { changeStampOf } from "../../loadtest/agent-pool.js";
import { skimDeltas } from "../../src/client/delta-skimmer.js";

function decode(frame: Buffer): DeltasMessage {
  const m = decodeServerMessage(frame);
  if (m.t !== "deltas") throw new Error(`want deltas, got ${m.t}`);
  return m;
}

describe("ceiling frames", () => {
  it("are exactly the size asked, for every size from the smallest on, and decode as deltas", () => {
    for (const changes of [1, 2, 10, 17]) {
      const smallest = smallestFrameBytes(changes);
      const sizes = [
        ...Array.from({ length: 320 }, (_, i) => smallest + i),
        smallest + 65_530,
        smallest + 65_545,
        smallest + 70_000,
      ];
      for (const bytes of sizes) {
        const t = frameTemplate(bytes, changes);
        const frame = stampFrame(t, 41, 41 + changes, 0, 1_700_000_000_123);
        expect(frame.byteLength, `${changes} changes in ${bytes} bytes`).toBe(bytes);
        expect(t.isOverSize).toBe(false);
        const m = decode(frame);
        expect(m.changes).toHaveLength(changes);
        expect(skimDeltas(frame)).toEqual({ from: 41, to: 41 + changes, count: changes });
      }
    }
  });

  it("carry the stamp, the revisions and distinct cycling keys; a size too small gives the smallest", () => {
    const t = frameTemplate(10, 3);
    expect(t.isOverSize).toBe(true);
    expect(t.bytes.byteLength).toBe(smallestFrameBytes(3));
    const frame = stampFrame(t, 7, 10, 0xfffe, 1_700_000_000_456);
    const m = decode(frame);
    expect(m.from).toBe(7);
    expect(m.to).toBe(10);
    expect(m.changes.map((c) => c.k)).toEqual(["C/fffe", "C/ffff", "C/0000"]);
    expect(m.changes.map((c) => c.v?.r)).toEqual([10, 10, 10]);
    expect(changeStampOf(m.changes[0]?.v ?? null)).toBe(1_700_000_000_456);
    expect(changeStampOf(m.changes[1]?.v ?? null)).toBeUndefined();
    // The template is not touched: another send gets its own bytes.
    const again = decode(stampFrame(t, 10, 13, 3, 1_700_000_000_999));
    expect(again.changes.map((c) => c.k)).toEqual(["C/0003", "C/0004", "C/0005"]);
    expect(decode(frame).to).toBe(10);
    expect(() => frameTemplate(100, 0)).toThrow(RangeError);
  });
});
