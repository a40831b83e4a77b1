import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { METADATA_ANNOTATION } from "../../src/server/datastore/convert/crd.js";
import { NODE_ANNOTATIONS } from "../../src/server/datastore/convert/node.js";
import {
  ANNOTATION_ALLOWED_SOURCE_PREFIXES,
  ANNOTATION_AWS_POD_IPS,
  ANNOTATION_CONTAINER_ID,
  ANNOTATION_FLOATING_IPS,
  ANNOTATION_NETWORK_STATUS,
  ANNOTATION_POD_IP,
  ANNOTATION_POD_IPS,
} from "../../src/server/datastore/convert/pod.js";
import { QOS_ANNOTATIONS } from "../../src/server/datastore/convert/qos.js";

const doc = readFileSync(new URL("../../docs/CALICO-CONFORMANCE.md", import.meta.url), "utf8");

/** The table rows: kind | field | Calico's rule | tabby | test. */
function rows(): string[][] {
  return doc
    .split("\n")
    .filter((l) => l.startsWith("| ") && !l.startsWith("| kind ") && !l.startsWith("|---"))
    .map((l) =>
      l
        .slice(2, -2)
        .split(" | ")
        .map((c) => c.trim()),
    );
}

describe("docs/CALICO-CONFORMANCE.md", () => {
  it("has five columns in every row, and a row for every converted kind", () => {
    const all = rows();
    expect(all.length).toBeGreaterThan(25);
    for (const r of all) expect(r, r.join(" | ")).toHaveLength(5);
    const kinds = new Set(all.flatMap((r) => (r[0] ?? "").split(", ")));
    for (const k of ["WorkloadEndpoint", "KubernetesNetworkPolicy", "Node", "Profile"])
      expect(kinds).toContain(k);
  });

  it("names only tests that exist", () => {
    for (const r of rows()) {
      const cell = r[4] ?? "";
      const file = /`([a-z-]+\.test\.ts)`/.exec(cell)?.[1];
      expect(file, cell).toBeDefined();
      const source = readFileSync(new URL(`./${file}`, import.meta.url), "utf8");
      const titles = [...cell.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
      expect(titles.length, cell).toBeGreaterThan(0);
      // A title may name a second file's test after `;`.
      for (const part of cell.split(";")) {
        const f = /`([a-z-]+\.test\.ts)`/.exec(part)?.[1] ?? file;
        const src = f === file ? source : readFileSync(new URL(`./${f}`, import.meta.url), "utf8");
        for (const m of part.matchAll(/"([^"]+)"/g)) {
          const title = m[1]!.replaceAll("`", "");
          expect(src.replaceAll("`", "").includes(title), `${f}: "${title}"`).toBe(true);
        }
      }
    }
  });

  it("lists every annotation the converters read", () => {
    const annotations = [
      ...Object.values(QOS_ANNOTATIONS),
      ...Object.values(NODE_ANNOTATIONS),
      ANNOTATION_POD_IP,
      ANNOTATION_POD_IPS,
      ANNOTATION_AWS_POD_IPS,
      ANNOTATION_FLOATING_IPS,
      ANNOTATION_ALLOWED_SOURCE_PREFIXES,
      ANNOTATION_CONTAINER_ID,
      ANNOTATION_NETWORK_STATUS,
      METADATA_ANNOTATION,
    ];
    const missing = annotations.filter((a) => !doc.includes(`\`${a}\``));
    expect(missing).toEqual([]);
  });
});
