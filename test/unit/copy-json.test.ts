import { describe, expect, it } from "vitest";
import { copyJson } from "../../src/server/datastore/convert/common.js";

describe("copyJson", () => {
  it("copies decoded JSON deeply: equal, and sharing nothing with the input", () => {
    const input = JSON.parse(
      '{"a":[1,"two",null,true,{"b":{"c":[3.5,-0,""]}}],"d":{},"e":[],"f":{"g":"h"}}',
    ) as Record<string, unknown>;
    const copy = copyJson(input);
    expect(copy).toEqual(input);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(input));
    ((input.a as unknown[])[4] as { b: { c: unknown[] } }).b.c.push("later");
    (input.f as Record<string, string>).g = "changed";
    expect(((copy.a as unknown[])[4] as { b: { c: unknown[] } }).b.c).toEqual([3.5, -0, ""]);
    expect((copy.f as Record<string, string>).g).toBe("h");
  });

  it("keeps a __proto__ key as data, as JSON.parse does, without changing the copy's prototype", () => {
    const input = JSON.parse('{"__proto__":{"polluted":true},"x":1}') as Record<string, unknown>;
    const copy = copyJson(input);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect((copy as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.keys(copy)).toEqual(["__proto__", "x"]);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(input));
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it("returns primitives as they are", () => {
    expect(copyJson(7)).toBe(7);
    expect(copyJson("s")).toBe("s");
    expect(copyJson(null)).toBeNull();
  });
});
