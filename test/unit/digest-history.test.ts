import { describe, expect, it } from "vitest";
import { DigestHistory } from "../../src/snapshot/digest-history.js";
import { EMPTY_DIGEST } from "../../src/snapshot/state-digest.js";
import type { Hash64 } from "../../src/snapshot/state-digest.js";
import type { Change } from "../../src/snapshot/store.js";

const KIND = "BlockAffinity";

/** A change of a BlockAffinity owned by `node` (only the fields DigestHistory reads matter). */
function change(
  revision: number,
  node: string,
  before: Hash64 | undefined,
  after: Hash64 | undefined,
): Change {
  return {
    revision,
    key: `${KIND}/${node}-block`,
    kind: KIND,
    value: undefined,
    prevValue: undefined,
    node,
    prevNode: undefined,
    encoded: Buffer.alloc(0),
    prevEncoded: undefined,
    hash: after,
    prevHash: before,
    ownerBefore: before === undefined ? undefined : node,
  };
}

const H1 = { hi: 1, lo: 2 };
const H2 = { hi: 3, lo: 4 };

describe("DigestHistory: domains that became empty", () => {
  it("keeps an emptied node's entry while a log reaches below the emptying, then lets it go", () => {
    const h = new DigestHistory(16);
    h.apply(change(1, "gone", undefined, H1));
    h.apply(change(2, "gone", H1, undefined));
    h.apply(change(3, "stays", undefined, H2));
    expect(h.domains).toBe(2);
    // Empty since revision 2: a log whose floor is 1 can still start while it held H1.
    expect(h.spanOf(`${KIND}/gone`, 0, EMPTY_DIGEST)).toEqual({ enter: 2, leave: Infinity });
    h.forgetBelow(KIND, 1);
    expect(h.domains).toBe(2);
    h.forgetBelow(KIND, 2);
    expect(h.domains).toBe(1);
    expect(h.spanOf(`${KIND}/gone`, 0, EMPTY_DIGEST)).toBeUndefined();
    expect(h.current(`${KIND}/gone`)).toEqual(EMPTY_DIGEST);
    // The node that still holds its block is untouched.
    expect(h.spanOf(`${KIND}/stays`, 1, { hi: 3, lo: 4 })).toEqual({ enter: 3, leave: Infinity });
  });

  it("gives a released domain that fills again the same resume point as before (the log's floor)", () => {
    const kept = new DigestHistory(16);
    const released = new DigestHistory(16);
    for (const h of [kept, released]) {
      h.apply(change(1, "n", undefined, H1));
      h.apply(change(2, "n", H1, undefined));
    }
    released.forgetBelow(KIND, 5);
    for (const h of [kept, released]) h.apply(change(9, "n", undefined, H2));
    // Empty from 2 (kept) or "from 0" (released) until 9. A resume of the empty state starts at the
    // later of the span's start and the log's floor (replica-resume.ts): 5 for both.
    const floor = 5;
    const kSpan = kept.spanOf(`${KIND}/n`, 0, EMPTY_DIGEST);
    const rSpan = released.spanOf(`${KIND}/n`, 0, EMPTY_DIGEST);
    expect(kSpan).toEqual({ enter: 2, leave: 9 });
    expect(rSpan).toEqual({ enter: 0, leave: 9 });
    expect(Math.max(rSpan!.enter, floor)).toBe(Math.max(kSpan!.enter, floor));
  });

  it("does not release a domain touched again after it was emptied", () => {
    const h = new DigestHistory(16);
    h.apply(change(1, "n", undefined, H1));
    h.apply(change(2, "n", H1, undefined));
    h.apply(change(3, "n", undefined, H2));
    h.forgetBelow(KIND, 10);
    expect(h.domains).toBe(1);
    expect(h.spanOf(`${KIND}/n`, 1, H2)).toEqual({ enter: 3, leave: Infinity });
  });

  it("stays bounded when nodes come and go for ever", () => {
    const h = new DigestHistory(64);
    let rv = 0;
    for (let i = 0; i < 10_000; i++) {
      const node = `node-${i}`;
      h.apply(change(++rv, node, undefined, H1));
      h.apply(change(++rv, node, H1, undefined));
      // The views' logs keep the last 100 revisions.
      h.forgetBelow(KIND, rv - 100);
    }
    expect(h.domains).toBeLessThanOrEqual(51);
    expect(h.size).toBeLessThanOrEqual(64);
  });
});
