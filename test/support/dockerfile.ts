/**
 * Makes an image's file set without a container engine: reads the repository's Dockerfile and
 * .dockerignore and plays the stages into temp directories (one per stage, standing for its WORKDIR).
 * Only the instructions tabby's Dockerfile uses are understood; anything else throws, so a change to the
 * Dockerfile that this emulation would silently get wrong fails the image test instead.
 */
import { execFile } from "node:child_process";
import { cp, lstat, mkdir, readdir, readFile, symlink } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly line: number;
}

export interface Stage {
  readonly image: string;
  readonly name: string;
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  readonly globalArgs: ReadonlyMap<string, string>;
  readonly stages: readonly Stage[];
}

/** Parses a Dockerfile (comments, `\` continuations, ARG before FROM, `FROM image AS name`). */
export function parseDockerfile(text: string): Dockerfile {
  const globalArgs = new Map<string, string>();
  const stages: { image: string; name: string; instructions: Instruction[] }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i]!.trim();
    while (line.endsWith("\\") && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (m === null) throw new Error(`Dockerfile:${lineNo}: cannot parse ${JSON.stringify(line)}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === "FROM") {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (from === null) throw new Error(`Dockerfile:${lineNo}: cannot parse FROM ${args}`);
      const image = from[1]!.replace(/\$\{(\w+)\}/g, (_, name: string) => {
        const v = globalArgs.get(name);
        if (v === undefined) throw new Error(`Dockerfile:${lineNo}: ARG ${name} has no default`);
        return v;
      });
      stages.push({ image, name: from[2] ?? String(stages.length), instructions: [] });
    } else if (stages.length === 0) {
      const arg = /^(\w+)=(\S+)$/.exec(args);
      if (op !== "ARG" || arg === null)
        throw new Error(`Dockerfile:${lineNo}: only ARG name=default before FROM`);
      globalArgs.set(arg[1]!, arg[2]!);
    } else {
      stages.at(-1)!.instructions.push({ op, args, line: lineNo });
    }
  }
  return { globalArgs, stages };
}

/** A JSON-array (exec form) argument: `["node", "bin/tabby.js"]`. */
export function execForm(ins: Instruction): string[] {
  const v: unknown = JSON.parse(ins.args);
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
    throw new Error(`Dockerfile:${ins.line}: ${ins.op} must be in exec form (a JSON array of strings)`);
  return v;
}

/** `.dockerignore` as Docker applies it: the last matching pattern wins, and a match on a parent counts. */
export function dockerignoreMatcher(text: string): (relPath: string) => boolean {
  const patterns = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const isNegated = l.startsWith("!");
      const glob = path.posix.normalize(isNegated ? l.slice(1) : l).replace(/^\/+|\/+$/g, "");
      const re = glob
        .split(/(\*\*\/|\*\*|\*|\?)/)
        .map((part) => {
          if (part === "**/") return "(?:.*/)?";
          if (part === "**") return ".*";
          if (part === "*") return "[^/]*";
          if (part === "?") return "[^/]";
          return part.replace(/[.+^${}()|[\]\\]/g, "\\$&");
        })
        .join("");
      return { isNegated, re: new RegExp(`^${re}$`) };
    });
  return (relPath: string): boolean => {
    const parts = relPath.split("/");
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
    let isExcluded = false;
    for (const p of patterns) if (prefixes.some((x) => p.re.test(x))) isExcluded = !p.isNegated;
    return isExcluded;
  };
}

/** Copies `src` (a file or directory of the build context) to `dest`, leaving out what .dockerignore excludes. */
async function copyContext(
  contextDir: string,
  rel: string,
  dest: string,
  isIgnored: (rel: string) => boolean,
): Promise<void> {
  if (isIgnored(rel)) throw new Error(`COPY ${rel}: excluded from the build context by .dockerignore`);
  const src = path.join(contextDir, rel);
  const st = await lstat(src);
  if (!st.isDirectory()) {
    await mkdir(path.dirname(dest), { recursive: true });
    await cp(src, dest);
    return;
  }
  await mkdir(dest, { recursive: true });
  for (const entry of await readdir(src)) {
    const childRel = `${rel}/${entry}`;
    if (!isIgnored(childRel)) await copyContext(contextDir, childRel, path.join(dest, entry), isIgnored);
  }
}

export interface PlayOptions {
  readonly contextDir: string;
  /** Where the stage directories go (`<workDir>/<stage name>`). */
  readonly workDir: string;
  /**
   * Runs one RUN instruction in its stage directory. The default runs it with `sh -c`; the image test
   * overrides it to use the npm cache offline and to reuse the repository's full install.
   */
  readonly runCommand?: (command: string, stageDir: string) => Promise<void>;
  readonly env?: NodeJS.ProcessEnv;
}

export interface PlayedStage {
  readonly stage: Stage;
  readonly dir: string;
  readonly env: Readonly<Record<string, string>>;
  readonly user: string | undefined;
  readonly exposed: readonly number[];
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
}

/** Plays every stage of the Dockerfile in order; resolves with them, the last one being the image. */
export async function playDockerfile(file: Dockerfile, options: PlayOptions): Promise<PlayedStage[]> {
  const isIgnored = dockerignoreMatcher(
    await readFile(path.join(options.contextDir, ".dockerignore"), "utf8").catch(() => ""),
  );
  const runCommand =
    options.runCommand ??
    (async (command: string, cwd: string) => {
      await run("sh", ["-c", command], { cwd, env: options.env ?? process.env });
    });
  // Stages run concurrently, as BuildKit runs them: a stage waits only for those it copies from.
  const played = new Map<string, Promise<PlayedStage>>();
  const playStage = async (stage: Stage): Promise<PlayedStage> => {
    const dir = path.join(options.workDir, stage.name);
    await mkdir(dir, { recursive: true });
    const env: Record<string, string> = {};
    let user: string | undefined;
    const exposed: number[] = [];
    let entrypoint: string[] = [];
    let cmd: string[] = [];
    for (const ins of stage.instructions) {
      const where = `Dockerfile:${ins.line}`;
      switch (ins.op) {
        case "WORKDIR":
          if (ins.args !== "/app") throw new Error(`${where}: the emulation expects WORKDIR /app`);
          break;
        case "ENV": {
          const kv = /^(\w+)=(\S+)$/.exec(ins.args);
          if (kv === null) throw new Error(`${where}: ENV name=value expected`);
          env[kv[1]!] = kv[2]!;
          break;
        }
        case "COPY": {
          const words = ins.args.split(/\s+/);
          const fromFlag = words[0]?.startsWith("--from=") === true ? words.shift()!.slice(7) : undefined;
          const dest = words.pop();
          if (dest === undefined || words.length === 0) throw new Error(`${where}: COPY src... dest`);
          const destIsDir = dest.endsWith("/") || words.length > 1;
          const destPath = path.join(dir, dest);
          const fromStage = fromFlag === undefined ? undefined : played.get(fromFlag);
          if (fromFlag !== undefined && fromStage === undefined)
            throw new Error(`${where}: no earlier stage ${fromFlag}`);
          const from = await fromStage;
          for (const src of words) {
            if (from !== undefined && !src.startsWith("/app/"))
              throw new Error(`${where}: COPY --from expects a path under /app`);
            const rel = from === undefined ? src.replace(/^\.\//, "") : src.slice("/app/".length);
            const srcPath = path.join(from === undefined ? options.contextDir : from.dir, rel);
            // As Docker: a file goes into a directory dest under its own name; a directory's contents go to dest.
            const isDir = (await lstat(srcPath)).isDirectory();
            const target = destIsDir && !isDir ? path.join(destPath, path.basename(rel)) : destPath;
            if (from === undefined) await copyContext(options.contextDir, rel, target, isIgnored);
            else await cp(srcPath, target, { recursive: true, verbatimSymlinks: true });
          }
          break;
        }
        case "RUN":
          await runCommand(ins.args, dir);
          break;
        case "USER":
          user = ins.args;
          break;
        case "EXPOSE":
          exposed.push(...ins.args.split(/\s+/).map(Number));
          break;
        case "ENTRYPOINT":
          entrypoint = execForm(ins);
          break;
        case "CMD":
          cmd = execForm(ins);
          break;
        default:
          throw new Error(`${where}: ${ins.op} is not understood by the image emulation`);
      }
    }
    return { stage, dir, env, user, exposed, entrypoint, cmd };
  };
  for (const stage of file.stages) {
    const p = playStage(stage);
    p.catch(() => undefined); // awaited below (and by the stages that copy from it)
    played.set(stage.name, p);
  }
  return Promise.all(played.values());
}

/** Makes `link` a symlink to `target` (a stage that reuses an install made elsewhere). */
export async function linkDir(target: string, link: string): Promise<void> {
  await symlink(target, link, "dir");
}
