/**
 * Calico's names for converted objects (libcalico-go lib/names and conversion.ConvertUID), so that keys
 * and `metadata.name` are what calicoctl shows.
 */

/** Why a name could not be built (the object is then rejected, as Calico rejects it). */
export class NameError extends Error {
  readonly code = "ERR_CONVERT_NAME";
}

/** One segment of a WorkloadEndpoint name: no leading or trailing dash, and every `-` doubled. */
function escapeSegment(field: string, value: string): string {
  if (value === "") throw new NameError(`${field} should be assigned`);
  if (value.startsWith("-")) throw new NameError(`${field} must not begin with a '-'`);
  if (value.endsWith("-")) throw new NameError(`${field} must not end with a '-'`);
  return value.replaceAll("-", "--");
}

/**
 * The name of a Kubernetes pod's WorkloadEndpoint: `<node>-k8s-<pod>-<endpoint>`, each part with its
 * dashes doubled (`node-1`, `web-0`, `eth0` → `node--1-k8s-web--0-eth0`). Throws NameError for an empty part
 * or one that begins or ends with a dash.
 */
export function workloadEndpointName(node: string, pod: string, endpoint = "eth0"): string {
  return [
    escapeSegment("node", node),
    "k8s",
    escapeSegment("pod", pod),
    escapeSegment("endpoint", endpoint),
  ].join("-");
}

function reverseBits(b: number): number {
  let out = 0;
  for (let i = 0; i < 8; i++) if ((b >> i) & 1) out |= 1 << (7 - i);
  return out;
}

/** The 16 bytes of a UUID in the forms Go's uuid.Parse accepts; undefined when malformed. */
function uuidBytes(text: string): number[] | undefined {
  let hex: string;
  let t = text;
  if (t.length === 45 && t.slice(0, 9).toLowerCase() === "urn:uuid:") t = t.slice(9);
  else if (t.length === 38 && t.startsWith("{") && t.endsWith("}")) t = t.slice(1, -1);
  if (t.length === 36) {
    if (t[8] !== "-" || t[13] !== "-" || t[18] !== "-" || t[23] !== "-") return undefined;
    hex = t.replaceAll("-", "");
  } else if (t.length === 32) {
    hex = t;
  } else {
    return undefined;
  }
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return undefined;
  const out: number[] = [];
  for (let i = 0; i < 32; i += 2) out.push(parseInt(hex.slice(i, i + 2), 16));
  return out;
}

/**
 * Calico's derived uid (conversion.ConvertUID): every byte of the source uid bit-reversed, except bytes 6
 * and 8 (UUID version and variant), so a Profile or policy never shares the uid of the object it comes
 * from. Undefined when the source uid is not a UUID (Calico then fails the conversion).
 */
export function convertUid(uid: string): string | undefined {
  const bytes = uuidBytes(uid);
  if (bytes === undefined) return undefined;
  const out = bytes.map((b, i) => (i === 6 || i === 8 ? b : reverseBits(b)));
  const hex = out.map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
