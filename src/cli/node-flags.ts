/**
 * Node options `tabby serve` is meant to run with (the image sets them as NODE_OPTIONS; the load test's
 * servers get them too, so that they run as deployed).
 *
 * `--max-semi-space-size=2` (MB; Node 20's default on 64-bit is 16): V8's young generation is three
 * semi-spaces, and a server that decodes every upstream object keeps all of it committed. With 2 MB the
 * compiled server holding the 1000 × 30 cluster settles at ~224 MB RSS instead of ~322 MB, and ~90 MB less
 * under 1000 agents, for about the same CPU (docs/BENCHMARKS.md, "Server memory: the young generation").
 */
export const SERVE_NODE_OPTIONS: readonly string[] = ["--max-semi-space-size=2"];

/**
 * Environment `tabby serve` is meant to run with (the image sets it; the load test's servers get it unless
 * the load test's own environment sets the same variable).
 *
 * `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates its own malloc arena, up to 8 per core, and
 * the server has a main thread, the ingest worker and libuv's pool (zlib). With 2 the server holding the
 * 1000 × 30 cluster settled 14–22 MB lower without agents, and 38–75 MiB lower before and under 1000
 * agents, for about the same CPU (docs/BENCHMARKS.md, "Server memory: malloc arenas").
 */
export const SERVE_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" };
