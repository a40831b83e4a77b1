import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_CLOSE_REASON_BYTES, truncateCloseReason } from "../../proto/close-codes.js";

describe("close reasons", () => {
  it("keeps a short reason as it is", () => {
    expect(truncateCloseReason("client closed")).toBe("client closed");
  });

  it("cuts a long one to 120 UTF-8 bytes without splitting a character (WebSocket allows 123)", () => {
    // 119 ASCII bytes, then a 3-byte character that does not fit whole.
    const reason = `${"x".repeat(119)}€ and more`;
    expect(truncateCloseReason(reason)).toBe("x".repeat(119));
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 200 }), (text) => {
        const cut = truncateCloseReason(text);
        expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
        expect(text.startsWith(cut)).toBe(true);
        if (!text.includes("\uFFFD")) expect(cut).not.toContain("\uFFFD");
      }),
    );
  });
});
