import { describe, expect, it } from "vitest";
import { decodeServerMessage, encodeMessage } from "../../proto/codec.js";

describe("snap-end head (PROTOCOL.md §6.2)", () => {
  it("round-trips when present and is absent when not sent", () => {
    expect(decodeServerMessage(encodeMessage({ t: "snap-end", revision: 5, head: 9 }))).toEqual({
      t: "snap-end",
      revision: 5,
      head: 9,
    });
    expect(decodeServerMessage(encodeMessage({ t: "snap-end", revision: 5 }))).toEqual({
      t: "snap-end",
      revision: 5,
    });
  });

  it("rejects a head behind the revision, or one that is not a uint", () => {
    expect(() => decodeServerMessage(encodeMessage({ t: "snap-end", revision: 5, head: 4 }))).toThrow(/head/);
    const bad = encodeMessage({ t: "snap-end", revision: 5, head: -1 });
    expect(() => decodeServerMessage(bad)).toThrow(/head/);
  });
});
