import { existsSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { spawnTabby } from "../src/cli/ipc.js";

const HERE = fileURLToPath(import.meta.url);
const IS_SOURCE = HERE.endsWith(".ts");
/** The repository root when running from source (this file is loadtest/server-entry.ts). */
const REPO_ROOT = join(dirname(HERE), "..");

/** How the server process runs: compiled JavaScript, or TypeScript through tsx's loader (which costs RSS). */
export type ServerRuntime = "compiled" | "tsx";

async function newestMtimeMs(dir: string, ext: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(ext)) continue;
    newest = Math.max(newest, (await stat(join(entry.parentPath, entry.name))).mtimeMs);
  }
  return newest;
}

/**
 * The spawnTabby to start the server with. Running from source, the compiled CLI (`npm run build`) is
 * used when it is newer than every source file: tsx's loader thread adds well over 100 MB to a process's
 * RSS, which would swamp the server's own memory figures. Otherwise the server runs through tsx.
 */
export async function serverSpawner(): Promise<{ spawn: typeof spawnTabby; runtime: ServerRuntime }> {
  if (!IS_SOURCE) return { spawn: spawnTabby, runtime: "compiled" };
  const compiledMain = join(REPO_ROOT, "dist", "src", "cli", "main.js");
  const compiledIpc = join(REPO_ROOT, "dist", "src", "cli", "ipc.js");
  if (!existsSync(compiledMain) || !existsSync(compiledIpc)) return { spawn: spawnTabby, runtime: "tsx" };
  const builtAtMs = (await stat(compiledMain)).mtimeMs;
  const sourceMs = Math.max(
    await newestMtimeMs(join(REPO_ROOT, "src"), ".ts"),
    await newestMtimeMs(join(REPO_ROOT, "proto"), ".ts"),
  );
  if (sourceMs > builtAtMs) return { spawn: spawnTabby, runtime: "tsx" };
  const compiled = (await import(pathToFileURL(compiledIpc).href)) as { spawnTabby: typeof spawnTabby };
  return { spawn: compiled.spawnTabby, runtime: "compiled" };
}
