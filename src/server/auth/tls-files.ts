import { watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { createSecureContext } from "node:tls";
import type { SecureContextOptions } from "node:tls";
import type { Logger } from "pino";

export interface TlsFilePaths {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA bundle client certificates must chain to (mTLS). */
  readonly caFile?: string;
}

export interface TlsFilesDeps {
  readonly paths: TlsFilePaths;
  readonly logger: Logger;
  /** Called with the new files' contents after they changed and still form a valid key pair. */
  readonly onReload: (context: SecureContextOptions) => void;
  /** Called after each reload attempt (metrics). */
  readonly onResult?: (isOk: boolean) => void;
  /** Files are re-read this often in case a change was not seen by the directory watch. Default 60,000 ms. */
  readonly pollIntervalMs?: number;
  /** Changes within this many ms become one reload (a Secret update touches several entries). Default 200 ms. */
  readonly debounceMs?: number;
}

/** The error when the TLS files cannot be read or do not form a valid key pair; `field` names the setting. */
export class TlsFilesError extends Error {
  override readonly name = "TlsFilesError";
  readonly code = "ERR_TLS_FILES";
  constructor(
    readonly field: "tlsCertFile" | "tlsKeyFile" | "clientCaFile",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

async function readOne(field: TlsFilesError["field"], file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new TlsFilesError(
      field,
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      {
        cause: err,
      },
    );
  }
}

/** Reads the three files and checks that they make a secure context (key matches cert, PEM valid). */
export async function loadTlsFiles(paths: TlsFilePaths): Promise<SecureContextOptions> {
  const [cert, key, ca] = await Promise.all([
    readOne("tlsCertFile", paths.certFile),
    readOne("tlsKeyFile", paths.keyFile),
    paths.caFile === undefined ? Promise.resolve(undefined) : readOne("clientCaFile", paths.caFile),
  ]);
  const context: SecureContextOptions = { cert, key, ...(ca !== undefined && { ca }) };
  try {
    createSecureContext(context);
  } catch (err) {
    throw new TlsFilesError(
      "tlsCertFile",
      `the TLS files do not form a valid key pair: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  return context;
}

function sameBytes(a: SecureContextOptions, b: SecureContextOptions): boolean {
  const eq = (x: unknown, y: unknown): boolean =>
    Buffer.isBuffer(x) && Buffer.isBuffer(y) ? x.equals(y) : x === y;
  return eq(a.cert, b.cert) && eq(a.key, b.key) && eq(a.ca, b.ca);
}

/**
 * Keeps a server's TLS files current without a restart. A mounted Secret changes by swapping its
 * `..data` symlink, so the files' directories are watched (not the files, whose watch would follow the
 * old inode); a poll catches what a watch misses (some volume types send no events). A change that
 * does not form a valid key pair (a half-written update) is logged and skipped: the last good context
 * stays until the next change.
 */
export class TlsFileWatcher {
  readonly #deps: TlsFilesDeps;
  #current: SecureContextOptions;
  readonly #watchers: FSWatcher[] = [];
  #pollTimer: NodeJS.Timeout | undefined;
  #debounceTimer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #isRecheckWanted = false;
  #isClosed = false;

  private constructor(deps: TlsFilesDeps, initial: SecureContextOptions) {
    this.#deps = deps;
    this.#current = initial;
  }

  /** Loads the files (throws TlsFilesError when they are unusable) and starts watching them. */
  static async start(deps: TlsFilesDeps): Promise<TlsFileWatcher> {
    const initial = await loadTlsFiles(deps.paths);
    const watcher = new TlsFileWatcher(deps, initial);
    watcher.#watch();
    return watcher;
  }

  /** The last good secure context (cert, key, ca). */
  get current(): SecureContextOptions {
    return this.#current;
  }

  /** Re-reads the files now; resolves once a reload (if any) was applied. */
  check(): Promise<void> {
    if (this.#checking !== undefined) {
      this.#isRecheckWanted = true;
      return this.#checking;
    }
    this.#checking = this.#check().finally(() => {
      this.#checking = undefined;
      if (this.#isRecheckWanted && !this.#isClosed) {
        this.#isRecheckWanted = false;
        void this.check();
      }
    });
    return this.#checking;
  }

  async #check(): Promise<void> {
    let next: SecureContextOptions;
    try {
      next = await loadTlsFiles(this.#deps.paths);
    } catch (err) {
      if (this.#isClosed) return;
      this.#deps.logger.warn(
        { err: (err as Error).message },
        "TLS files changed but cannot be used; keeping the current certificate",
      );
      this.#deps.onResult?.(false);
      return;
    }
    if (this.#isClosed || sameBytes(next, this.#current)) return;
    this.#current = next;
    this.#deps.onReload(next);
    this.#deps.onResult?.(true);
    this.#deps.logger.info({ certFile: this.#deps.paths.certFile }, "TLS certificate reloaded");
  }

  #watch(): void {
    const p = this.#deps.paths;
    const dirs = new Set(
      [p.certFile, p.keyFile, ...(p.caFile === undefined ? [] : [p.caFile])].map((f) => path.dirname(f)),
    );
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => this.#schedule());
        w.on("error", (err) => this.#deps.logger.debug({ err, dir }, "TLS directory watch failed; polling"));
        this.#watchers.push(w);
      } catch (err) {
        this.#deps.logger.debug({ err, dir }, "cannot watch the TLS directory; polling");
      }
    }
    this.#pollTimer = setInterval(() => void this.check(), this.#deps.pollIntervalMs ?? 60_000);
    this.#pollTimer.unref();
  }

  #schedule(): void {
    if (this.#isClosed) return;
    if (this.#debounceTimer !== undefined) clearTimeout(this.#debounceTimer);
    this.#debounceTimer = setTimeout(() => {
      this.#debounceTimer = undefined;
      void this.check();
    }, this.#deps.debounceMs ?? 200);
  }

  /** Stops watching and polling. Idempotent. */
  close(): void {
    this.#isClosed = true;
    for (const w of this.#watchers) w.close();
    this.#watchers.length = 0;
    clearInterval(this.#pollTimer);
    clearTimeout(this.#debounceTimer);
    this.#pollTimer = undefined;
    this.#debounceTimer = undefined;
  }
}
