import { readFile } from "node:fs/promises";
import { describe, expect, expectTypeOf, it } from "vitest";
import { generateCrdTypes, OUTPUT_FILE } from "../../scripts/generate-client-types.js";
import { GENERATED_CRD_KINDS } from "../../src/client/index.js";
import type {
  CalicoKindName,
  IPPool,
  KubernetesNetworkPolicy,
  Node,
  TabbyClient,
  TypedUpdate,
  WorkloadEndpoint,
} from "../../src/client/index.js";
import type { ResourceValue } from "../../proto/messages.js";
import { CRD_KINDS } from "../../src/snapshot/kinds.js";
import type { CalicoKind } from "../../src/snapshot/kinds.js";

describe("the generated client types", () => {
  it("are what the generator makes from calico/crds today (run `npm run generate:types`)", async () => {
    expect(await readFile(OUTPUT_FILE, "utf8")).toBe(await generateCrdTypes());
  }, 120_000);

  it("cover every CRD kind and every kind the snapshot knows", () => {
    expect([...GENERATED_CRD_KINDS].sort()).toEqual([...CRD_KINDS].sort());
    expectTypeOf<CalicoKindName>().toEqualTypeOf<CalicoKind>();
  });

  it("type list, get and updates by kind (checked by the compiler)", () => {
    expectTypeOf<ReturnType<TabbyClient["list"]>>().toEqualTypeOf<ResourceValue[]>();
    const _typed = (client: TabbyClient) => ({
      pools: client.list("IPPool"),
      node: client.get("Node/node-1"),
      wep: client.get("WorkloadEndpoint/ns/pod"),
      any: client.get(String("IPPool/x")),
    });
    expectTypeOf<ReturnType<typeof _typed>["pools"]>().toEqualTypeOf<IPPool[]>();
    expectTypeOf<ReturnType<typeof _typed>["node"]>().toEqualTypeOf<Node | undefined>();
    expectTypeOf<ReturnType<typeof _typed>["wep"]>().toEqualTypeOf<WorkloadEndpoint | undefined>();
    expectTypeOf<ReturnType<typeof _typed>["any"]>().toEqualTypeOf<ResourceValue | undefined>();
    const _narrow = (u: TypedUpdate) => (u.kind === "IPPool" ? u.value : undefined);
    expectTypeOf<ReturnType<typeof _narrow>>().toEqualTypeOf<IPPool | null | undefined>();
    // Every typed value is a ResourceValue too (so untyped code keeps working).
    expectTypeOf<IPPool>().toExtend<ResourceValue>();
  });

  it("type the converted kinds as the converters write them (checked by the compiler)", () => {
    // WireGuard keys are in status, as in Calico; a TypeScript agent reading spec would find none.
    expectTypeOf<NonNullable<Node["status"]>>().toHaveProperty("wireguardPublicKey");
    expectTypeOf<NonNullable<Node["status"]>>().toHaveProperty("wireguardPublicKeyV6");
    expectTypeOf<Node["spec"]>().not.toHaveProperty("wireguardPublicKey");
    expectTypeOf<Node["spec"]>().toHaveProperty("interfaces");
    expectTypeOf<WorkloadEndpoint["spec"]>().toHaveProperty("qosControls");
    expectTypeOf<WorkloadEndpoint["metadata"]>().toHaveProperty("generateName");
    expectTypeOf<
      NonNullable<WorkloadEndpoint["spec"]["ports"]>[number]["hostPort"]
    >().toEqualTypeOf<number>();
    // A Kubernetes policy's value is a Calico NetworkPolicy: its kind is NetworkPolicy.
    expectTypeOf<KubernetesNetworkPolicy["kind"]>().toEqualTypeOf<"NetworkPolicy">();
  });

  it("are read-only all the way down, as the mirror's frozen values are (checked by the compiler)", () => {
    const _writes = (pool: IPPool, wep: WorkloadEndpoint, node: Node) => {
      // @ts-expect-error a field of the spec
      pool.spec.cidr = "10.0.0.0/8";
      // @ts-expect-error an array in the spec
      wep.spec.ipNetworks![0] = "10.0.0.1/32";
      // @ts-expect-error an element of an array of objects
      wep.spec.ports![0]!.port = 1;
      // @ts-expect-error a label
      pool.metadata.labels!["x"] = "y";
      // @ts-expect-error the status of a kind that keeps one
      node.status!.wireguardPublicKey = "k";
    };
    expectTypeOf(_writes).toBeFunction();
  });
});
