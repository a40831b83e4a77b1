/**
 * docs/ERRORS.md lists every error code and close code, and nothing else: the close codes of
 * proto/close-codes.ts (with their names), the standard codes tabby does not define, and every `ERR_*`
 * code defined in src/, proto/ and loadtest/. PROTOCOL.md §10 has the same close codes.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../proto/close-codes.js";
import { ProtoErrorCode } from "../../proto/errors.js";
import { ClientErrorCode } from "../../src/client/errors.js";
import { FanoutErrorCode, INTERNAL_ERROR_CLOSE_CODE } from "../../src/server/fanout/errors.js";
import { HttpServerErrorCode } from "../../src/server/http/errors.js";
import { SimErrorCode } from "../../src/sim/errors.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const DOC = readFileSync(join(ROOT, "docs/ERRORS.md"), "utf8");
const PROTOCOL = readFileSync(join(ROOT, "proto/PROTOCOL.md"), "utf8");
/** `ERR_*` strings in the sources that are not tabby's: Node's own error codes tabby tests for. */
const NOT_OURS = new Set(["ERR_BUFFER_TOO_LARGE"]);
/** Standard close codes a peer may see although tabby's code never sends them (`ws` does, or nobody). */
const STANDARD_NOT_DEFINED = [1002, 1006, 1007];

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name));
}

/** Every `"ERR_..."` string literal (a code, not a prefix such as `WS_ERR_`) in the sources. */
function codesInSources(): Set<string> {
  const out = new Set<string>();
  for (const file of ["src", "proto", "loadtest"].flatMap(sourceFiles)) {
    for (const m of readFileSync(file, "utf8").matchAll(/["'`](ERR_[A-Z0-9_]+)["'`]/g)) {
      if (!NOT_OURS.has(m[1]!)) out.add(m[1]!);
    }
  }
  return out;
}

/** Rows `| 4001 | \`name\` | ...` of a Markdown close-code table. */
function namedCloseRows(text: string): (readonly [number, string])[] {
  return [...text.matchAll(/^\| (\d{4}) \| `(\w+)` \|/gm)].map((m) => [Number(m[1]), m[2]!] as const);
}

const docErrorCodes = [...DOC.matchAll(/^\| `(ERR_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]!);
const docCloseCodes = namedCloseRows(DOC);
const docStandardCodes = [...DOC.matchAll(/^\| (\d{4}) \| — /gm)].map((m) => Number(m[1]));

describe("docs/ERRORS.md", () => {
  it("lists every close code of CloseCode with its name, once, and no other", () => {
    const want = Object.entries(CloseCode)
      .map(([name, code]) => [code, name] as const)
      .sort((a, b) => a[0] - b[0]);
    expect(docCloseCodes).toEqual(want);
  });

  it("CloseCode has the 1011 the server sends on an internal error", () => {
    expect(CloseCode.internalError).toBe(INTERNAL_ERROR_CLOSE_CODE);
  });

  it("lists the standard codes tabby does not define, and none that CloseCode has", () => {
    expect(docStandardCodes).toEqual(STANDARD_NOT_DEFINED);
    const defined = new Set<number>(Object.values(CloseCode));
    for (const code of docStandardCodes) expect(defined.has(code)).toBe(false);
  });

  it("lists every error code defined in the sources, once, and no other", () => {
    expect(new Set(docErrorCodes).size).toBe(docErrorCodes.length);
    expect([...docErrorCodes].sort()).toEqual([...codesInSources()].sort());
  });

  it("includes every code of each error enum", () => {
    for (const e of [ProtoErrorCode, ClientErrorCode, FanoutErrorCode, HttpServerErrorCode, SimErrorCode]) {
      for (const code of Object.values(e)) expect(docErrorCodes).toContain(code);
    }
  });

  it("PROTOCOL.md §10 has the same close codes", () => {
    expect(namedCloseRows(PROTOCOL)).toEqual(docCloseCodes);
  });
});
