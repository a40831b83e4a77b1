/**
 * The adaptive flush window: under load, batches grow instead of queues. The window starts at `baseMs`;
 * a flush that finds the server overloaded — the previous fan-out still being written, or the flush timer
 * firing late because the event loop is busy — doubles it (up to `maxMs`); a flush that finds the server
 * idle halves it back towards `baseMs`. A wider window means fewer, larger, better-compressed frames per
 * second for every session, which is what the server can still afford when it is behind. Pure: the caller
 * reports what it saw.
 */
export class FlushWindow {
  readonly baseMs: number;
  readonly maxMs: number;
  #currentMs: number;
  #widestMs: number;

  constructor(baseMs: number, maxMs: number) {
    this.baseMs = baseMs;
    this.maxMs = Math.max(baseMs, maxMs);
    this.#currentMs = baseMs;
    this.#widestMs = baseMs;
  }

  /** The window to wait before the next flush, ms. */
  get currentMs(): number {
    return this.#currentMs;
  }

  /** The widest window used since start, ms. */
  get widestMs(): number {
    return this.#widestMs;
  }

  /**
   * Records what a flush timer found when it fired: whether the previous fan-out was still running, and
   * how late the timer fired (ms past its window).
   */
  observe(isFanoutBusy: boolean, lateMs: number): void {
    const isOverloaded = isFanoutBusy || lateMs > Math.max(5, this.#currentMs / 2);
    if (isOverloaded) {
      this.#currentMs = Math.min(this.maxMs, Math.max(1, this.#currentMs * 2));
      if (this.#currentMs > this.#widestMs) this.#widestMs = this.#currentMs;
    } else if (this.#currentMs > this.baseMs) {
      this.#currentMs = Math.max(this.baseMs, Math.floor(this.#currentMs / 2));
    }
  }
}
