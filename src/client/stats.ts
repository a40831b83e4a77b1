/** Counters of a client's work since it was created. */
export interface ClientStats {
  /** Complete snapshots received. */
  readonly snapshots: number;
  /** Of those, snapshots older than their server's head: the updates waited for the catch-up (§6.2). */
  readonly heldSnapshots: number;
  /** Payload bytes of the snapshot frames received (snap-begin, snap-chunk, snap-end). */
  readonly snapshotBytes: number;
  /** snap-chunk frames received (of complete and of cut snapshots). */
  readonly snapshotChunks: number;
  /** Sessions that resumed from the client's revision (no snapshot). */
  readonly resumes: number;
  /** Of those, sessions resumed by another server than the mirror's, from its digests (§5.2). */
  readonly replicaResumes: number;
  /** Connection attempts after the first. */
  readonly reconnects: number;
  /** `move` messages received (the server asked the client to go to another replica). */
  readonly moves: number;
  /** Frames received, and their bytes (payloads). */
  readonly frames: number;
  readonly bytes: number;
  /**
   * Bytes read from the sockets: every payload plus the WebSocket frame headers, control frames (pings,
   * closes) and the HTTP upgrade responses. Counted as messages arrive and when a socket closes.
   */
  readonly wireBytes: number;
  /** Delta frames received. */
  readonly deltas: number;
  /** Updates emitted to the application. */
  readonly updates: number;
  /** Errors reported (emitted, or logged when there was no error listener). */
  readonly errors: number;
  /** Delta frames refused because they could not be applied (a patch for a value the client does not hold). */
  readonly rejectedFrames: number;
}

export type MutableClientStats = { -readonly [K in keyof ClientStats]: ClientStats[K] };

export function newClientStats(): MutableClientStats {
  return {
    snapshots: 0,
    heldSnapshots: 0,
    snapshotBytes: 0,
    snapshotChunks: 0,
    resumes: 0,
    replicaResumes: 0,
    reconnects: 0,
    moves: 0,
    frames: 0,
    bytes: 0,
    wireBytes: 0,
    deltas: 0,
    updates: 0,
    errors: 0,
    rejectedFrames: 0,
  };
}

/** A promise with its resolve and reject (Promise.withResolvers is Node 22+). */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
