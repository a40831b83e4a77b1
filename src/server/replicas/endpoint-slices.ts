import type { ResourceValue } from "../../../proto/messages.js";
import type { PreparedValue } from "../../snapshot/prepared.js";
import type { UpstreamSink } from "../../snapshot/sink.js";
import { decodeStored } from "../../snapshot/store.js";
import type { KindState } from "../../snapshot/sync-state.js";
import type { Member } from "./directory.js";
import { urlHost } from "./static-peers.js";

const SLICE_KIND = "KubernetesEndpointSlice";
const SERVICE_LABEL = "kubernetes.io/service-name";

export interface ServiceSelector {
  readonly namespace: string;
  readonly service: string;
  /** The EndpointSlice port agents connect to (deploy/tabby.yaml: "tabby"). */
  readonly agentPortName: string;
  /** The EndpointSlice port that serves /status (deploy/tabby.yaml: "metrics"). */
  readonly statusPortName: string;
  readonly agentScheme: "ws" | "wss";
  readonly statusScheme: "http" | "https";
  /** How this server recognizes its own endpoint (any that matches). */
  readonly self: { readonly podName?: string; readonly podIp?: string; readonly url?: string };
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function portOf(ports: unknown, name: string): number | undefined {
  if (!Array.isArray(ports)) return undefined;
  for (const p of ports) {
    const r = record(p);
    // A slice port without a name is the Service's only port (the API server leaves it unnamed).
    if (r !== undefined && (r.name ?? "") === name && typeof r.port === "number") return r.port;
  }
  return undefined;
}

/**
 * The members an EndpointSlice value (the datastore's Calico-model `KubernetesEndpointSlice`, endpoints in
 * the v1 shape whichever API version served them) gives for the selected Service, or undefined when the
 * slice is another Service's. A slice without the agent port gives none. Ready is the endpoint's
 * `conditions.ready` (absent means ready, as the API documents), false while terminating.
 */
export function membersOfSlice(value: ResourceValue, selector: ServiceSelector): Member[] | undefined {
  const metadata = record(value.metadata);
  const labels = record(metadata?.labels);
  if (metadata?.namespace !== selector.namespace || labels?.[SERVICE_LABEL] !== selector.service) {
    return undefined;
  }
  const spec = record(value.spec);
  const agentPort = portOf(spec?.ports, selector.agentPortName);
  if (agentPort === undefined || !Array.isArray(spec?.endpoints)) return [];
  const statusPort = portOf(spec.ports, selector.statusPortName);
  const out: Member[] = [];
  for (const e of spec.endpoints) {
    const endpoint = record(e);
    const addresses = Array.isArray(endpoint?.addresses) ? endpoint.addresses : [];
    const address = addresses.find((a): a is string => typeof a === "string" && a !== "");
    if (endpoint === undefined || address === undefined) continue;
    const conditions = record(endpoint.conditions);
    const isReady = conditions?.ready !== false && conditions?.terminating !== true;
    const host = urlHost(address);
    const url = `${selector.agentScheme}://${host}:${agentPort}`;
    const podName = record(endpoint.targetRef)?.name;
    const isSelf =
      (selector.self.podName !== undefined && podName === selector.self.podName) ||
      (selector.self.podIp !== undefined && addresses.includes(selector.self.podIp)) ||
      (selector.self.url !== undefined && url === selector.self.url);
    out.push({
      url,
      isReady,
      isSelf,
      ...(statusPort !== undefined && {
        statusUrl: `${selector.statusScheme}://${host}:${statusPort}/status`,
      }),
      ...(typeof endpoint.nodeName === "string" && { node: endpoint.nodeName }),
      ...(typeof endpoint.zone === "string" && { zone: endpoint.zone }),
    });
  }
  return out;
}

/**
 * The members of a Service from its EndpointSlices, fed by the datastore's existing EndpointSlice watch
 * (no watch of its own): `tap()` wraps the sink the datastore writes into and sees every upsert and delete
 * of a `KubernetesEndpointSlice` key in the Service's namespace, relist deletes included.
 */
export class EndpointSliceMembers {
  readonly #selector: ServiceSelector;
  readonly #onChange: (members: readonly Member[]) => void;
  readonly #prefix: string;
  readonly #slices = new Map<string, readonly Member[]>();

  constructor(selector: ServiceSelector, onChange: (members: readonly Member[]) => void) {
    this.#selector = selector;
    this.#onChange = onChange;
    this.#prefix = `${SLICE_KIND}/${selector.namespace}/`;
  }

  upsert(key: string, value: ResourceValue): void {
    if (!key.startsWith(this.#prefix)) return;
    const members = membersOfSlice(value, this.#selector);
    if (members === undefined) {
      // Not (or no longer: its label changed) one of the Service's slices.
      if (this.#slices.delete(key)) this.#publish();
      return;
    }
    this.#slices.set(key, members);
    this.#publish();
  }

  delete(key: string): void {
    if (key.startsWith(this.#prefix) && this.#slices.delete(key)) this.#publish();
  }

  /** Every member, one per URL (an endpoint in two slices during a handover: ready wins). */
  members(): Member[] {
    const byUrl = new Map<string, Member>();
    for (const list of this.#slices.values()) {
      for (const m of list) {
        const had = byUrl.get(m.url);
        if (had === undefined || (!had.isReady && m.isReady)) byUrl.set(m.url, m);
      }
    }
    return [...byUrl.values()].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
  }

  /** A sink that forwards everything to `inner` and shows the Service's slices to this object. */
  tap(inner: UpstreamSink): UpstreamSink {
    return {
      upsert: (key: string, value: ResourceValue): void => {
        inner.upsert(key, value);
        this.upsert(key, value);
      },
      upsertPrepared: (key: string, prepared: PreparedValue): void => {
        inner.upsertPrepared(key, prepared);
        // Only this Service's slices are decoded: the other keys pass through as bytes.
        if (key.startsWith(this.#prefix)) this.upsert(key, decodeStored(prepared.encoded));
      },
      delete: (key: string): void => {
        inner.delete(key);
        this.delete(key);
      },
      keysOfKind: (kind: string): Iterable<string> => inner.keysOfKind(kind),
      setKindState: (kind: string, state: KindState): void => inner.setKindState(kind, state),
    };
  }

  #publish(): void {
    this.#onChange(this.members());
  }
}
