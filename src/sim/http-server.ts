import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { apiGroup, apiGroupList, apiResourceList, apiVersions, VERSION_INFO } from "./discovery.js";
import { httpStatusOf, SimError, SimErrorCode, statusOf } from "./errors.js";
import type { RequestFaults } from "./faults.js";
import { jsonPatch, mergePatch } from "./objects.js";
import type { ResourceDef, ResourceRegistry } from "./resources.js";
import {
  decodeContinue,
  encodeContinue,
  parseListWatchQuery,
  parseRoute,
  parseRv,
  type ListWatchQuery,
  type Route,
} from "./routes.js";
import type { ObjectStore } from "./store.js";
import { isJsonObject, type JsonObject } from "./types.js";
import type { WatchHub } from "./watch.js";
import { parseLabelSelector } from "./label-selector.js";

export interface HttpDeps {
  readonly registry: ResourceRegistry;
  readonly store: ObjectStore;
  readonly hub: WatchHub;
  readonly faults: RequestFaults;
  /** Requests by "<verb> <resource id>" (and "discovery <path>"); mutated here. */
  readonly counts: Record<string, number>;
  readonly stats: { badRequests: number; internalErrors: number };
  /** "host:port", for /api. */
  readonly serverAddress: () => string;
  readonly logger: Logger | undefined;
  readonly maxBodyBytes: number;
  /** Watch duration when the request has no timeoutSeconds. */
  readonly defaultWatchTimeoutSeconds: number;
}

type ResourceRoute = Extract<Route, { type: "resource" }>;
type Verb = "list" | "watch" | "get" | "create" | "update" | "patch" | "delete";

/** The request handler of the simulated API server. Every error becomes a Kubernetes Status response. */
export function createRequestHandler(deps: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const count = (key: string): void => {
    deps.counts[key] = (deps.counts[key] ?? 0) + 1;
  };

  const fail = (res: ServerResponse, err: unknown): void => {
    let e: SimError;
    if (err instanceof SimError) {
      e = err;
      if (httpStatusOf(e) < 500) deps.stats.badRequests++;
    } else {
      deps.stats.internalErrors++;
      deps.logger?.error({ err }, "sim: internal error");
      e = new SimError(SimErrorCode.internal, "Internal error occurred", { cause: err });
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (httpStatusOf(e) === 429) headers["retry-after"] = "1";
    if (e.code === SimErrorCode.tooLarge) headers.connection = "close";
    res.writeHead(httpStatusOf(e), headers).end(JSON.stringify(statusOf(e)));
  };

  const notFoundError = (): SimError =>
    new SimError(SimErrorCode.resourceNotFound, "the server could not find the requested resource");

  const discovery = (route: Route, pathname: string, res: ServerResponse): void => {
    const installed = deps.registry.installed();
    let body: object | undefined;
    switch (route.type) {
      case "core-versions":
        body = apiVersions(deps.serverAddress());
        break;
      case "group-list":
        body = apiGroupList(installed);
        break;
      case "group":
        body = apiGroup(route.group, installed);
        break;
      case "resource-list":
        body = apiResourceList(route.group, route.version, installed);
        break;
      case "version":
        body = VERSION_INFO;
        break;
      default:
        body = undefined;
    }
    if (body === undefined) throw notFoundError();
    count(`discovery ${pathname}`);
    const injected = deps.faults.check(undefined);
    if (injected !== undefined) throw injected;
    sendJson(res, 200, JSON.stringify(body));
  };

  const list = (def: ResourceDef, route: ResourceRoute, q: ListWatchQuery): string => {
    const c = deps.store.collection(def);
    const nowRv = deps.store.rv;
    let listRv = nowRv;
    let afterKey: string | undefined;
    if (q.continueToken !== undefined) {
      if (q.resourceVersion !== undefined) {
        throw new SimError(
          SimErrorCode.badRequest,
          "specifying resource version is not allowed when using continue",
        );
      }
      const t = decodeContinue(q.continueToken);
      listRv = t.rv;
      afterKey = t.start;
    } else if (q.resourceVersion !== undefined && q.resourceVersionMatch === "Exact") {
      listRv = Math.min(parseRv(q.resourceVersion), nowRv);
    }
    const prefix = route.namespace === undefined ? undefined : `${route.namespace}/`;
    let page;
    try {
      page = c.page(
        listRv === nowRv ? undefined : listRv,
        afterKey,
        q.limit === 0 ? undefined : q.limit,
        prefix,
      );
    } catch (err) {
      if (err instanceof SimError && err.code === SimErrorCode.expired && q.continueToken !== undefined) {
        throw new SimError(
          SimErrorCode.expired,
          "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
          { cause: err },
        );
      }
      throw err;
    }
    const cont =
      page.nextAfterKey === undefined ? "" : `,"continue":"${encodeContinue(listRv, page.nextAfterKey)}"`;
    const selector = parseLabelSelector(q.labelSelector);
    const kept = selector === undefined ? page.items : page.items.filter((s) => selector(s.obj));
    const items = kept.map((s) => s.json).join(",");
    return `{"kind":"${def.listKind}","apiVersion":"${def.apiVersion}","metadata":{"resourceVersion":"${listRv}"${cont}},"items":[${items}]}`;
  };

  const watch = (def: ResourceDef, route: ResourceRoute, q: ListWatchQuery, res: ServerResponse): void => {
    if (q.labelSelector !== undefined) {
      throw new SimError(SimErrorCode.badRequest, "the simulator serves labelSelector on lists only");
    }
    const c = deps.store.collection(def);
    const lines: string[] = [];
    const rv = q.resourceVersion;
    if (rv === undefined || rv === "0" || q.sendInitialEvents) {
      const prefix = route.namespace === undefined ? undefined : `${route.namespace}/`;
      for (const s of c.current(prefix)) lines.push(`{"type":"ADDED","object":${s.json}}\n`);
      if (q.sendInitialEvents && q.allowWatchBookmarks) {
        const metadata = {
          resourceVersion: String(deps.store.rv),
          annotations: { "k8s.io/initial-events-end": "true" },
        };
        const obj = { kind: def.kind, apiVersion: def.apiVersion, metadata };
        lines.push(`{"type":"BOOKMARK","object":${JSON.stringify(obj)}}\n`);
      }
    } else {
      const from = parseRv(rv);
      c.checkRetained(from);
      for (const ev of c.eventsAfter(from)) {
        if (route.namespace === undefined || ev.namespace === route.namespace) lines.push(ev.line);
      }
    }
    const timeoutSeconds =
      q.timeoutSeconds === undefined || q.timeoutSeconds === 0
        ? deps.defaultWatchTimeoutSeconds
        : q.timeoutSeconds;
    deps.hub.open(res, {
      def,
      namespace: route.namespace,
      allowBookmarks: q.allowWatchBookmarks,
      timeoutMs: timeoutSeconds * 1000,
      initialLines: lines,
    });
  };

  const write = async (
    verb: Verb,
    def: ResourceDef,
    route: ResourceRoute,
    req: IncomingMessage,
  ): Promise<string> => {
    const body = await readJsonBody(req, deps.maxBodyBytes);
    const target = { namespace: route.namespace, name: route.name };
    switch (verb) {
      case "create":
        return deps.store.create(def, body, target).json;
      case "update":
        return deps.store.update(def, body, target).json;
      case "patch": {
        const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
        const apply = patcherFor(type, body);
        return deps.store.patch(def, route.namespace, route.name!, apply).json;
      }
      default: {
        const pre = isJsonObject(body) && isJsonObject(body.preconditions) ? body.preconditions : {};
        return deps.store.remove(def, route.namespace, route.name!, {
          resourceVersion: typeof pre.resourceVersion === "string" ? pre.resourceVersion : undefined,
          uid: typeof pre.uid === "string" ? pre.uid : undefined,
        }).json;
      }
    }
  };

  const resource = async (
    route: ResourceRoute,
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
  ): Promise<void> => {
    const def = deps.registry.atPath(route.group, route.version, route.plural);
    const isAddressable =
      def !== undefined &&
      (route.subresource === undefined || route.subresource === "status") &&
      (route.namespace === undefined || def.isNamespaced);
    if (!isAddressable) throw notFoundError();
    const q = parseListWatchQuery(url.searchParams);
    const verb = verbOf(req.method ?? "GET", route, q);
    count(`${verb} ${def.id}`);
    const injected = deps.faults.check(def.id);
    if (injected !== undefined) throw injected;
    switch (verb) {
      case "list":
        sendJson(res, 200, list(def, route, q));
        return;
      case "watch":
        watch(def, route, q, res);
        return;
      case "get":
        sendJson(res, 200, deps.store.get(def, route.namespace, route.name!).json);
        return;
      default: {
        const json = await write(verb, def, route, req);
        sendJson(res, verb === "create" ? 201 : 200, json);
      }
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://sim.invalid");
    const route = parseRoute(url.pathname);
    if (route.type === "health") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      return;
    }
    if (route.type === "resource") return resource(route, req, res, url);
    if (req.method !== "GET")
      throw new SimError(SimErrorCode.methodNotAllowed, `${req.method} is not allowed here`);
    discovery(route, url.pathname, res);
  };

  return (req, res) => {
    req.on("error", (err) => {
      deps.stats.badRequests++;
      deps.logger?.debug({ err }, "sim: request stream error");
    });
    handle(req, res).catch((err: unknown) => fail(res, err));
  };
}

function verbOf(method: string, route: ResourceRoute, q: ListWatchQuery): Verb {
  const hasName = route.name !== undefined;
  switch (method) {
    case "GET":
      if (q.isWatch || route.isWatchPath) {
        if (hasName) throw new SimError(SimErrorCode.badRequest, "watching a single object is not supported");
        return "watch";
      }
      return hasName ? "get" : "list";
    case "POST":
      if (!hasName) return "create";
      break;
    case "PUT":
      if (hasName) return "update";
      break;
    case "PATCH":
      if (hasName) return "patch";
      break;
    case "DELETE":
      if (hasName) return "delete";
      break;
  }
  throw new SimError(SimErrorCode.methodNotAllowed, `${method} is not supported on this path`);
}

function patcherFor(contentType: string, body: unknown): (cur: JsonObject) => unknown {
  switch (contentType) {
    case "application/merge-patch+json":
    case "application/strategic-merge-patch+json": // approximated by a JSON merge patch
      if (!isJsonObject(body))
        throw new SimError(SimErrorCode.badRequest, "a merge patch must be a JSON object");
      return (cur) => mergePatch(cur, body);
    case "application/json-patch+json":
      return (cur) => jsonPatch(cur, body);
    default:
      throw new SimError(
        SimErrorCode.unsupportedMediaType,
        `the media type ${contentType || "(none)"} is not supported for PATCH`,
      );
  }
}

async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes)
      throw new SimError(SimErrorCode.tooLarge, `the request body exceeds ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new SimError(SimErrorCode.badRequest, "the request body is not valid JSON", { cause: err });
  }
}

function sendJson(res: ServerResponse, status: number, body: string): void {
  res
    .writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
    .end(body);
}
