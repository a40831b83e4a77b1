import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { envOf, flagOf, SERVE_SETTINGS } from "../../src/server/config-schema.js";

describe("docs/OPERATIONS.md", () => {
  const doc = readFileSync(new URL("../../docs/OPERATIONS.md", import.meta.url), "utf8");

  it("documents every serve setting with its flag, variable and default", () => {
    for (const s of SERVE_SETTINGS) {
      const row = doc.split("\n").find((line) => line.startsWith(`| \`${flagOf(s.field)}\` |`));
      expect(row, flagOf(s.field)).toBeDefined();
      expect(row).toContain(`\`${envOf(s.field)}\``);
      expect(row).toContain(`| ${s.default === undefined ? "—" : String(s.default)} |`);
    }
  });

  it("documents every tabby_ metric the server registers", () => {
    const sources = [
      "../../src/server/fanout/metrics.ts",
      "../../src/server/datastore/metrics.ts",
      "../../src/server/http/status-metrics.ts",
      "../../src/server/auth/metrics.ts",
      "../../src/server/replicas/balancer-metrics.ts",
    ].map((f) => readFileSync(new URL(f, import.meta.url), "utf8"));
    const names = sources.flatMap((src) => [...src.matchAll(/name: "(tabby_[a-z_]+)"/g)].map((m) => m[1]!));
    expect(names.length).toBeGreaterThan(20);
    for (const name of names) expect(doc, name).toContain(`\`${name}`);
  });
});
