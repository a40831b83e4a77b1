import cliProgress from "cli-progress";

/** What the bar shows besides its value. */
export interface ProgressPayload {
  readonly inSync: number;
  readonly agents: number;
  readonly updates: number;
  readonly latencies: number;
}

/**
 * One bar per phase on stderr while the load test runs (a TTY only; elsewhere one line per phase), and
 * plain log lines in between.
 */
export class Progress {
  readonly #isBar: boolean;
  readonly #log: (line: string) => void;
  #bar: cliProgress.SingleBar | undefined;
  #phase = "";

  constructor(options: { isEnabled: boolean; log?: (line: string) => void }) {
    this.#isBar = options.isEnabled && process.stderr.isTTY;
    this.#log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
  }

  /** Starts a phase whose value goes from 0 to `total` (`unit`: "s" or "agents"). */
  begin(phase: string, total: number, unit: string): void {
    this.end();
    this.#phase = phase;
    if (!this.#isBar) {
      this.#log(`loadtest: ${phase} (${total} ${unit})`);
      return;
    }
    this.#bar = new cliProgress.SingleBar(
      {
        format: `${phase.padEnd(22)} |{bar}| {value}/{total} ${unit} | in sync {inSync}/{agents} | updates {updates} | latencies {latencies}`,
        hideCursor: true,
        barsize: 24,
        fps: 4,
      },
      cliProgress.Presets.shades_classic,
    );
    this.#bar.start(total, 0, { inSync: 0, agents: 0, updates: 0, latencies: 0 });
  }

  update(value: number, payload: ProgressPayload): void {
    this.#bar?.update(Math.round(value), { ...payload });
  }

  /** A log line (the bar, if any, is finished first). */
  log(line: string): void {
    this.end();
    this.#log(`loadtest: ${line}`);
  }

  end(): void {
    if (this.#bar === undefined) return;
    this.#bar.stop();
    this.#bar = undefined;
  }

  get phase(): string {
    return this.#phase;
  }
}
