/**
 * RSS of a process that loads tabby's KubeConfig (and uses it for a request's credentials), with the
 * lean-import hook of src/cli/lean-imports.ts and without it (TABBY_FULL_CLIENT_NODE=1).
 *   npx tsx bench/kubeconfig-import.ts
 * Each child runs the TypeScript sources through tsx, whose own loader costs the same in both columns.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const CHILD = fileURLToPath(new URL("../test/support/lean-imports-child.ts", import.meta.url));
const RUNS = 3;

function rssMiB(env: Record<string, string>): number {
  const out = execFileSync(process.execPath, ["--import", "tsx", CHILD], {
    env: { ...process.env, ...env },
    encoding: "utf8",
  });
  return (JSON.parse(out) as { rssBytes: number }).rssBytes / 1048576;
}

const lean: number[] = [];
const full: number[] = [];
for (let i = 0; i < RUNS; i++) {
  lean.push(rssMiB({}));
  full.push(rssMiB({ TABBY_FULL_CLIENT_NODE: "1" }));
}
const range = (xs: number[]) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
console.log("| KubeConfig import | RSS MiB (min–max of 3) |");
console.log("|---|---|");
console.log(`| lean (gen/index.js stood in for) | ${range(lean)} |`);
console.log(`| full client-node config.js | ${range(full)} |`);
