/**
 * The rules of Go's encoding/json (and metav1.Time) that Calico's conversions depend on when they unmarshal
 * a JSON annotation into a struct: keys matched to fields case-insensitively, `null` as a no-op or the zero
 * value, a type mismatch failing the whole Unmarshal, and timestamps as RFC 3339.
 */

/**
 * A JSON key folded as encoding/json folds it to find a struct field (bytes.EqualFold): ASCII upper-cased,
 * and the two non-ASCII letters whose fold set holds an ASCII one (ſ U+017F → S, K U+212A → K).
 */
export function goFoldKey(key: string): string {
  let out = "";
  for (const c of key) {
    if (c >= "a" && c <= "z") out += c.toUpperCase();
    else if (c === "\u017f") out += "S";
    else if (c === "\u212a") out += "K";
    else out += c;
  }
  return out;
}

/** What json.Unmarshal fails on: the struct field (as tabby names it) whose JSON value has the wrong type. */
export class GoJsonTypeError extends Error {}

/**
 * A map[string]string field decoded into `into` (Go decodes a map into the existing one, adding entries):
 * `null` clears it (returns undefined), a `null` value is "", any other non-string fails.
 */
export function decodeStringMap(
  field: string,
  value: unknown,
  into: Record<string, string> | undefined,
): Record<string, string> | undefined {
  if (value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) throw new GoJsonTypeError(`${field} is not a map`);
  const out = into ?? {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v !== null && typeof v !== "string") throw new GoJsonTypeError(`${field}.${k} is not a string`);
    out[k] = v ?? "";
  }
  return out;
}

/** A string field: `null` leaves the previous value, a non-string fails. */
export function decodeString(field: string, value: unknown, previous: string): string {
  if (value === null) return previous;
  if (typeof value !== "string") throw new GoJsonTypeError(`${field} is not a string`);
  return value;
}

// The layout's hour is `15`, read with getnum(value, false): one digit is enough.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{1,2}):(\d{2}):(\d{2})([.,]\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Go's zero time.Time, 0001-01-01T00:00:00Z, in JavaScript milliseconds. */
const ZERO_TIME_MS = ((): number => {
  const d = new Date(0);
  d.setUTCFullYear(1, 0, 1);
  return d.getTime();
})();

function isLeap(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/**
 * A metav1.Time as it unmarshals (time.Parse with RFC 3339: a fraction of a second, after `.` or `,`, is
 * accepted and dropped; the offset's hours up to 24 and minutes up to 60) and marshals back
 * (`t.UTC().Format(time.RFC3339)`): seconds in UTC. null for the zero time (Go's IsZero), undefined
 * when time.Parse fails.
 */
export function goRfc3339(text: string): string | null | undefined {
  const m = RFC3339.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12) return undefined;
  const days = month === 2 && isLeap(year) ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0);
  if (day < 1 || day > days || hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  const zone = m[8] ?? "Z";
  if (zone !== "Z") {
    const zh = Number(zone.slice(1, 3));
    const zm = Number(zone.slice(4, 6));
    if (zh > 24 || zm > 60) return undefined;
    offsetMinutes = (zone[0] === "-" ? -1 : 1) * (zh * 60 + zm);
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute - offsetMinutes, second, 0);
  // IsZero: 0001-01-01T00:00:00Z to the nanosecond.
  if (date.getTime() === ZERO_TIME_MS && !/[1-9]/.test(m[7] ?? "")) {
    return null;
  }
  const y = date.getUTCFullYear();
  const yearText = y < 0 ? `-${pad(-y, 4)}` : pad(y, 4);
  return (
    `${yearText}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)}T` +
    `${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}Z`
  );
}
