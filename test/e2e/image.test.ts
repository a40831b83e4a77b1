/**
 * The container image without a container engine (none can pull a base image here): the Dockerfile's
 * stages are played into temp directories (test/support/dockerfile.ts reads the Dockerfile and
 * .dockerignore), then the image's file set runs `tabby serve --help` and a short `tabby serve` against
 * the simulator, as the image's user (uid 65532 when the test runs as root), from a directory holding only
 * the production dependencies. A runtime import of a dev dependency (tsx, typescript, ...) fails here.
 *
 * Two shortcuts, both about cost: the build stage's full `npm ci` is the repository's own node_modules
 * (linked: the same lockfile), and the production `npm ci --omit=dev` reads the npm cache first
 * (`--prefer-offline`). The production install and the compile run once per test run (~20 s).
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { builtinModules } from "node:module";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loopbackServeArgs } from "../../src/cli/args.js";
import { SERVE_SETTINGS } from "../../src/server/config-schema.js";
import { seedCluster, startSimulator } from "../../src/sim/index.js";
import { FatalWaitError, waitFor } from "../integration/harness/wait.js";
import { linkDir, parseDockerfile, playDockerfile } from "../support/dockerfile.js";
import type { PlayedStage } from "../support/dockerfile.js";
import { SERVE_ENV, SERVE_NODE_OPTIONS } from "../../src/cli/node-flags.js";

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, "../..");
const IMAGE_UID = 65532;

interface PackageJson {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}
const pkg = JSON.parse(await readFile(path.join(REPO, "package.json"), "utf8")) as PackageJson;

let workDir: string;
let image: PlayedStage;
let stages: PlayedStage[];

/** The RUN lines tabby's Dockerfile has, done here (anything else is an error: extend this on purpose). */
async function runStep(command: string, stageDir: string): Promise<void> {
  const words = command.split(/\s+/);
  const env = { ...process.env };
  delete env.NODE_PATH;
  delete env.NODE_OPTIONS;
  if (words[0] === "npm" && words[1] === "ci" && !words.includes("--omit=dev")) {
    await linkDir(path.join(REPO, "node_modules"), path.join(stageDir, "node_modules"));
  } else if (words[0] === "npm" && words[1] === "ci") {
    await run("npm", [...words.slice(1), "--prefer-offline"], { cwd: stageDir, env, timeout: 150_000 });
  } else if (command === "npm run build") {
    await run("npm", ["run", "build"], { cwd: stageDir, env, timeout: 150_000 });
  } else {
    throw new Error(`the image test does not know how to run ${JSON.stringify(command)}`);
  }
}

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), "tabby-image-"));
  await chmod(workDir, 0o755); // the image's user must reach /app
  const dockerfile = parseDockerfile(await readFile(path.join(REPO, "Dockerfile"), "utf8"));
  stages = await playDockerfile(dockerfile, { contextDir: REPO, workDir, runCommand: runStep });
  image = stages.at(-1)!;
}, 240_000);
afterAll(async () => {
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Runs as the image would: its user (when we may switch to it), its ENV, HOME=/ as Docker sets for a uid without a passwd entry. */
function imageProcessOptions(): { cwd: string; env: NodeJS.ProcessEnv; uid?: number; gid?: number } {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: "/", ...image.env };
  const isRoot = process.getuid?.() === 0;
  return { cwd: image.dir, env, ...(isRoot ? { uid: IMAGE_UID, gid: IMAGE_UID } : {}) };
}

/** The image's command line with `args` for CMD; `node` is this Node 20. */
function imageCommand(args: readonly string[]): [string, string[]] {
  const [bin, ...rest] = image.entrypoint;
  expect(bin).toBe("node");
  return [process.execPath, [...rest, ...args]];
}

/** Every file under `dir` with its size and mtime: nothing may change while the server runs. */
async function tree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true })) {
    const st = await stat(path.join(dir, entry)).catch(() => undefined);
    out.set(entry, st === undefined ? "dangling" : `${st.size}:${st.mtimeMs}`);
  }
  return out;
}

/** Bare module specifiers imported by a compiled file: `import`/`export ... from`, `import "x"`, `import("x")`. */
function bareImports(js: string): string[] {
  const statics = [
    ...js.matchAll(/^\s*(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']/gm),
    ...js.matchAll(/^\s*import\s*["']([^"']+)["']/gm),
  ].map((m) => m[1]!);
  const dynamics = [...js.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]!);
  return [...statics, ...dynamics].filter((s) => !s.startsWith(".") && !s.startsWith("/"));
}

function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

describe("the image (Dockerfile)", () => {
  it("is built FROM a Node 20 slim image pinned by tag, and runs tabby serve as a non-root user", () => {
    for (const s of stages) expect(s.stage.image, s.stage.name).toMatch(/^node:20\.\d+\.\d+-[a-z]+-slim$/);
    expect(new Set(stages.map((s) => s.stage.image)).size).toBe(1);
    expect(image.user).toBe(`${IMAGE_UID}:${IMAGE_UID}`);
    expect(image.env.NODE_ENV).toBe("production");
    // The Node options the load test runs its servers with (src/cli/node-flags.ts).
    expect(image.env.NODE_OPTIONS).toBe(SERVE_NODE_OPTIONS.join(" "));
    for (const [name, value] of Object.entries(SERVE_ENV)) expect(image.env[name], name).toBe(value);
    expect([...image.entrypoint, ...image.cmd]).toEqual(["node", "bin/tabby.js", "serve"]);
    const defaultPort = (field: string): unknown => SERVE_SETTINGS.find((s) => s.field === field)?.default;
    expect([...image.exposed].sort()).toEqual(
      [defaultPort("port"), defaultPort("healthPort"), defaultPort("metricsPort")].sort(),
    );
  });

  it("matches deploy/tabby.yaml: the same user, a read-only root, the exposed ports", async () => {
    interface Container {
      args: string[];
      ports: { containerPort: number }[];
      securityContext: { runAsUser: number; runAsNonRoot: boolean; readOnlyRootFilesystem: boolean };
    }
    const docs = parseAllDocuments(await readFile(path.join(REPO, "deploy/tabby.yaml"), "utf8")).map(
      (d) => d.toJS() as { kind: string; spec?: { template?: { spec: { containers: Container[] } } } },
    );
    const container = docs.find((d) => d.kind === "Deployment")!.spec!.template!.spec.containers[0]!;
    expect(container.args).toEqual(image.cmd);
    expect(container.securityContext).toMatchObject({
      runAsUser: IMAGE_UID,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
    });
    expect(container.ports.map((p) => p.containerPort).sort()).toEqual([...image.exposed].sort());
  });

  it("holds the compiled CLI and production dependencies only; dist/ imports nothing else", async () => {
    expect((await readdir(image.dir)).sort()).toEqual(["bin", "dist", "node_modules", "package.json"]);
    const lock = JSON.parse(await readFile(path.join(REPO, "package-lock.json"), "utf8")) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const isInstalled = (name: string): boolean => existsSync(path.join(image.dir, "node_modules", name));
    const devOnly = Object.keys(pkg.devDependencies).filter(
      // A dev dependency that is also a transitive production one (lock entry without `dev`) may be there.
      (dev) => lock.packages[`node_modules/${dev}`]?.dev === true,
    );
    expect(devOnly).toEqual(expect.arrayContaining(["tsx", "typescript", "vitest"]));
    expect(devOnly.filter(isInstalled)).toEqual([]);

    const allowed = new Set([...Object.keys(pkg.dependencies), ...builtinModules]);
    const files = (await readdir(path.join(image.dir, "dist"), { recursive: true })).filter((f) =>
      f.endsWith(".js"),
    );
    expect(files).toContain(path.join("src", "cli", "main.js"));
    const offending: string[] = [];
    for (const f of files) {
      for (const spec of bareImports(await readFile(path.join(image.dir, "dist", f), "utf8"))) {
        const name = spec.startsWith("node:") ? spec.slice(5) : packageOf(spec);
        if (!allowed.has(name)) offending.push(`${f}: ${spec}`);
      }
    }
    expect(offending).toEqual([]);

    // Nothing above /app lends it a package: a dev dependency cannot be found from the image's directory.
    const [node, args] = [process.execPath, ["--input-type=module", "-e", 'await import("tsx")']];
    await expect(run(node, args, imageProcessOptions())).rejects.toMatchObject({
      stderr: expect.stringContaining("ERR_MODULE_NOT_FOUND") as unknown,
    });
  });

  it("runs `tabby serve --help` from the compiled dist/", async () => {
    const [node, args] = imageCommand(["serve", "--help"]);
    const { stdout } = await run(node, args, imageProcessOptions());
    expect(stdout).toContain("--kubeconfig");
    expect(stdout).toContain("TABBY_HEALTH_PORT");
  });

  it("serves the simulator until ready, exits 0 on SIGTERM, and writes nothing in /app", async () => {
    const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => sim.close());
    seedCluster(sim, { nodes: 3, podsPerNode: 2 });
    const kubeDir = await mkdtemp(path.join(os.tmpdir(), "tabby-image-kube-"));
    cleanups.push(() => rm(kubeDir, { recursive: true, force: true }));
    await chmod(kubeDir, 0o755);
    const kubeconfig = path.join(kubeDir, "kubeconfig");
    await writeFile(kubeconfig, sim.kubeconfigYaml(), { mode: 0o644 });
    const before = await tree(image.dir);

    const [node, args] = imageCommand(loopbackServeArgs(kubeconfig));
    const child = spawn(node, args, { ...imageProcessOptions(), stdio: ["ignore", "ignore", "pipe", "ipc"] });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    });
    const ready = await new Promise<{ healthPort: number }>((resolve, reject) => {
      child.on("message", (m: { type?: string; healthPort?: number }) => {
        if (m.type === "ready" && typeof m.healthPort === "number") resolve({ healthPort: m.healthPort });
      });
      child.once("exit", (code) => reject(new Error(`tabby serve exited (${String(code)}): ${stderr}`)));
    });
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new FatalWaitError(`tabby serve exited: ${stderr}`);
        const res = await fetch(`http://127.0.0.1:${ready.healthPort}/readyz`);
        return res.status === 200 ? true : undefined;
      },
      { what: "/readyz 200 from the image's tabby serve", timeoutMs: 20_000, describeFailure: () => stderr },
    );
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(await tree(image.dir)).toEqual(before);
  });
});
