import { describe, expect, it } from "vitest";
import { decodeValue } from "../../proto/codec.js";
import { formatKey, kindOfKey, parseKey } from "../../src/snapshot/keys.js";
import { Store } from "../../src/snapshot/store.js";

describe("keys", () => {
  it("formats and parses cluster-scoped and namespaced keys", () => {
    expect(formatKey("IPPool", "default")).toBe("IPPool/default");
    expect(formatKey("WorkloadEndpoint", "web-1", "shop")).toBe("WorkloadEndpoint/shop/web-1");
    expect(parseKey("IPPool/default")).toEqual({ kind: "IPPool", name: "default" });
    expect(parseKey("WorkloadEndpoint/shop/web-1")).toEqual({
      kind: "WorkloadEndpoint",
      namespace: "shop",
      name: "web-1",
    });
    expect(kindOfKey("Profile/kns.shop")).toBe("Profile");
  });

  it("rejects malformed keys and parts with a stable code", () => {
    for (const bad of ["", "IPPool", "IPPool/", "/x", "a/b/c/d", "a//b"]) {
      expect(() => parseKey(bad)).toThrow(expect.objectContaining({ code: "ERR_SNAPSHOT_BAD_KEY" }) as Error);
    }
    expect(() => formatKey("IPPool", "a/b")).toThrow(
      expect.objectContaining({ code: "ERR_SNAPSHOT_BAD_KEY" }) as Error,
    );
    expect(() => formatKey("", "a")).toThrow(
      expect.objectContaining({ code: "ERR_SNAPSHOT_BAD_KEY" }) as Error,
    );
  });
});

const pool = (cidr: string, rv: string) => ({ metadata: { name: "p", resourceVersion: rv }, spec: { cidr } });

describe("Store", () => {
  it("gives each real change the next revision and encodes it once", () => {
    const s = new Store();
    const c1 = s.upsert("IPPool/p", pool("10.0.0.0/16", "1"));
    const c2 = s.upsert("IPPool/q", pool("10.1.0.0/16", "2"));
    expect([c1?.revision, c2?.revision, s.revision, s.size]).toEqual([1, 2, 2, 2]);
    expect(decodeValue(c1!.encoded)).toEqual({ k: "IPPool/p", v: pool("10.0.0.0/16", "1") });
    expect(s.get("IPPool/p")?.encoded).toBe(c1!.encoded);
  });

  it("skips and counts an upsert whose value is unchanged, resourceVersion aside", () => {
    const s = new Store();
    s.upsert("IPPool/p", pool("10.0.0.0/16", "1"));
    expect(s.upsert("IPPool/p", pool("10.0.0.0/16", "1"))).toBeNull();
    expect(s.upsert("IPPool/p", pool("10.0.0.0/16", "7"))).toBeNull();
    expect([s.revision, s.skipped]).toEqual([1, 2]);
    expect(s.valueOf("IPPool/p")).toEqual(pool("10.0.0.0/16", "1"));
    expect(s.upsert("IPPool/p", pool("10.9.0.0/16", "8"))?.revision).toBe(2);
  });

  it("deletes present keys only, with a revision and an encoded tombstone", () => {
    const s = new Store();
    s.upsert("IPPool/p", pool("10.0.0.0/16", "1"));
    expect(s.delete("IPPool/absent")).toBeNull();
    const d = s.delete("IPPool/p");
    expect(d?.revision).toBe(2);
    expect(decodeValue(d!.encoded)).toEqual({ k: "IPPool/p", v: null });
    expect([s.size, s.countOfKind("IPPool"), [...s.keysOfKind("IPPool")]]).toEqual([0, 0, []]);
  });

  it("indexes node-scoped entries by node and reports an owner change", () => {
    const s = new Store();
    const aff = (node: string) => ({ metadata: { name: "b1" }, spec: { node, cidr: "10.0.0.0/26" } });
    expect(s.upsert("BlockAffinity/b1", aff("n1"))?.node).toBe("n1");
    expect([...s.entriesOfNode("n1")].map((e) => e.key)).toEqual(["BlockAffinity/b1"]);
    const moved = s.upsert("BlockAffinity/b1", aff("n2"));
    expect([moved?.node, moved?.prevNode]).toEqual(["n2", "n1"]);
    expect([...s.entriesOfNode("n1")]).toEqual([]);
    expect(s.delete("BlockAffinity/b1")?.node).toBe("n2");
    expect([...s.entriesOfNode("n2")]).toEqual([]);
    expect(s.upsert("IPPool/x", pool("10.0.0.0/8", "1"))?.node).toBeUndefined();
  });
});
