/**
 * A paged list asks for the next page while it decodes and applies this one, when the page's head or tail
 * names the continue token (peekContinue); the decoded token decides, so a wrong guess is dropped and its
 * request ended, and a request made ahead that fails fails the list as the page itself would.
 */
import { afterEach, describe, expect, it } from "vitest";
import { DatastoreGoneError } from "../../src/server/datastore/errors.js";
import { findResource } from "../../src/server/datastore/index.js";
import type { KubeHttp } from "../../src/server/datastore/kube-http.js";
import { peekContinue } from "../../src/server/datastore/kube-http.js";
import type { SyncTracker } from "../../src/server/datastore/sync-tracker.js";
import { keySink, startedTracker, testLoop } from "../support/resource-loop.js";

const peek = (json: string): ReturnType<typeof peekContinue> => peekContinue(Buffer.from(json));

describe("peekContinue", () => {
  it("reads the token when metadata comes before items, as the API server writes a List", () => {
    expect(
      peek(
        '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"5","continue":"eyJ2Ijo1fQ"},"items":[{"a":1}]}',
      ),
    ).toEqual({ token: "eyJ2Ijo1fQ" });
    // Whitespace, other fields of any type before it, and braces or quotes inside strings.
    expect(
      peek(
        ' { "kind" : "L\\"}{[" , "n": -1.5e3, "x": [ {"}": "]"}, null ], "ok": true,\n "metadata" : { "remainingItemCount": 3, "continue": "t\\u00e9" } , "items": [',
      ),
    ).toEqual({ token: "té" });
  });

  it("reads it at the tail when metadata is the last field, as kube-apiserver writes a custom resource's list", () => {
    // A custom resource's list, fields sorted (captured from kube-apiserver 1.20 with limit=1, shortened).
    expect(
      peek(
        '{"apiVersion":"crd.projectcalico.org/v1","items":[{"kind":"IPPool","metadata":{"name":"p0","continue":"no"}}],"kind":"IPPoolList","metadata":{"continue":"eyJ2IjoxfQ","remainingItemCount":2,"resourceVersion":"264"}}\n',
      ),
    ).toEqual({ token: "eyJ2IjoxfQ" });
    expect(peek('{"kind":"PodList","items":[],"metadata":{"resourceVersion":"5"}}')).toEqual({
      token: undefined,
    });
  });

  it("says the last page when metadata has no continue token, or an empty one", () => {
    expect(peek('{"kind":"PodList","metadata":{"resourceVersion":"5"},"items":[]}')).toEqual({
      token: undefined,
    });
    expect(peek('{"metadata":{"resourceVersion":"5","continue":""},"items":[]}')).toEqual({
      token: undefined,
    });
  });

  it("cannot tell, and says so, when neither end is a List's it can read", () => {
    for (const body of [
      '{"items":[],"metadata":{"continue":"x"},"kind":"PodList"}', // after items, not last
      '{"items":[{"metadata":{"continue":"x"}}]}', // only an item's metadata
      '{"kind":"PodList","metadata":{"continue":"x"', // cut short
      '{"kind":"PodList","metadata":{"continue":"x",}}', // not JSON
      '{"kind":"PodList","metadata":"x"}',
      '{"kind":"PodList"}',
      "[1,2]",
      "",
      '{"kind" "PodList"}',
      `{"pad":"${"x".repeat(70 * 1024)}","metadata":{"continue":"x"},"items":[]}`, // past the 64 KiB read
      `{"items":[],"metadata":{"continue":"x"},"pad":"${"x".repeat(70 * 1024)}"}`,
    ]) {
      expect(peek(body), body.slice(0, 60)).toBeUndefined();
    }
  });
});

/** An IPPool list page body with `names` and the given metadata JSON (duplicated metadata allowed). */
function page(names: readonly string[], metadata: string, trailer = ""): Buffer {
  const items = names.map((name, i) =>
    JSON.stringify({
      apiVersion: "crd.projectcalico.org/v1",
      kind: "IPPool",
      metadata: { name, resourceVersion: String(i + 1) },
      spec: { cidr: `10.${i}.0.0/16` },
    }),
  );
  return Buffer.from(
    `{"kind":"IPPoolList","apiVersion":"crd.projectcalico.org/v1","metadata":${metadata},"items":[${items.join(",")}]${trailer}}`,
  );
}

describe("ResourceLoop's paged list", () => {
  const ippools = findResource("ippools")!;
  let abort: AbortController;
  let tracker: SyncTracker | undefined;
  afterEach(() => {
    abort.abort();
    tracker?.close();
  });

  /**
   * A loop (decoding on this thread) over `pages`: continue token ("" for the first page) → the body, or
   * an error to reject with. `log` has every page request by token and every upsert by key, in order;
   * `signals` each request's abort signal by token.
   */
  function startLoop(pages: Readonly<Record<string, Buffer | Error>>) {
    abort = new AbortController();
    const log: string[] = [];
    const signals = new Map<string, AbortSignal>();
    const sink = keySink((key) => log.push(key));
    tracker = startedTracker(ippools, sink);
    const http = {
      listBody: async (_path: string, query: Record<string, string>, signal: AbortSignal) => {
        const token = query.continue ?? "";
        log.push(`list ${token}`);
        signals.set(token, signal);
        await new Promise((r) => setTimeout(r, 5)); // the API server takes its time
        const body = pages[token];
        if (body === undefined) throw new Error(`no page ${token}`);
        if (body instanceof Error) throw body;
        return Buffer.from(body);
      },
      watch: (_path: string, _query: Record<string, string>, signal: AbortSignal) => {
        log.push("watch");
        return new Promise((_resolve, reject) =>
          signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true }),
        );
      },
    } as unknown as KubeHttp;
    const loop = testLoop({
      resource: ippools,
      http,
      sink,
      tracker,
      signal: abort.signal,
      ingest: undefined,
      options: { pageSize: 2 },
    });
    return { done: loop.run(), log, signals };
  }

  async function untilWatch(log: readonly string[]): Promise<void> {
    for (let i = 0; i < 400 && !log.includes("watch"); i++) await new Promise((r) => setTimeout(r, 5));
    expect(log).toContain("watch");
  }

  it("asks for the next page before it applies this one", async () => {
    const { done, log } = startLoop({
      "": page(["a", "b"], '{"resourceVersion":"9","continue":"p2"}'),
      p2: page(["c", "d"], '{"resourceVersion":"9","continue":"p3"}'),
      p3: page(["e"], '{"resourceVersion":"9"}'),
    });
    await untilWatch(log);
    expect(log).toEqual([
      "list ",
      "list p2",
      "IPPool/a",
      "IPPool/b",
      "list p3",
      "IPPool/c",
      "IPPool/d",
      "IPPool/e",
      "watch",
    ]);
    abort.abort();
    await done;
  });

  it("goes by the decoded token: a wrong guess is ended and its page never applied", async () => {
    // Two metadata fields: the peek reads the first, JSON.parse keeps the last.
    const { done, log, signals } = startLoop({
      "": page(
        ["a"],
        '{"resourceVersion":"9","continue":"guess"}',
        ',"metadata":{"resourceVersion":"9","continue":"p2"}',
      ),
      guess: page(["wrong"], '{"resourceVersion":"9"}'),
      p2: page(["b"], '{"resourceVersion":"9"}'),
    });
    await untilWatch(log);
    expect(log).toEqual(["list ", "list guess", "IPPool/a", "list p2", "IPPool/b", "watch"]);
    expect(signals.get("guess")?.aborted).toBe(true);
    abort.abort();
    await done;
  });

  it("a page that does not decode fails the list, and the request made ahead from its head is ended", async () => {
    // The head names p2, then the items are cut short: JSON.parse refuses the page.
    const broken = Buffer.from(
      '{"kind":"IPPoolList","metadata":{"resourceVersion":"9","continue":"p2"},"items":[{',
    );
    const pages: Record<string, Buffer | Error> = { "": broken, p2: page(["b"], '{"resourceVersion":"9"}') };
    const { done, log, signals } = startLoop(pages);
    for (let i = 0; i < 400 && !log.includes("list p2"); i++) await new Promise((r) => setTimeout(r, 5));
    pages[""] = page(["a"], '{"resourceVersion":"10"}');
    await untilWatch(log);
    expect(signals.get("p2")?.aborted).toBe(true);
    expect(log.slice(0, 2)).toEqual(["list ", "list p2"]);
    expect(log.filter((l) => l.startsWith("IPPool/"))).toEqual(["IPPool/a"]); // nothing of p2 applied
    abort.abort();
    await done;
  });

  it("a page asked for ahead that fails (410: the continue token expired) fails the list, which starts again", async () => {
    const gone = new DatastoreGoneError("continue token expired", { resource: "ippools", status: 410 });
    const pages: Record<string, Buffer | Error> = {
      "": page(["a"], '{"resourceVersion":"9","continue":"p2"}'),
      p2: gone,
    };
    const { done, log } = startLoop(pages);
    for (let i = 0; i < 400 && log.filter((l) => l === "list ").length < 2; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    pages[""] = page(["a"], '{"resourceVersion":"10"}');
    await untilWatch(log);
    expect(log.slice(0, 4)).toEqual(["list ", "list p2", "IPPool/a", "list "]);
    expect(log.slice(-2)).toEqual(["IPPool/a", "watch"]);
    abort.abort();
    await done;
  });
});
