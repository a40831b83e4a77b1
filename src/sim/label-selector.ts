import { SimError, SimErrorCode } from "./errors.js";
import type { KubeObject } from "./types.js";

/** One requirement of a label selector: `key=value` / `key==value`, `key!=value`, `key`, `!key`. */
type Requirement =
  | { readonly op: "=" | "!="; readonly key: string; readonly value: string }
  | { readonly op: "exists" | "!exists"; readonly key: string };

/** A parsed `labelSelector` query parameter (equality-based, comma = and); matches every object when empty. */
export type LabelSelector = (obj: KubeObject) => boolean;

const KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

function requirement(text: string): Requirement {
  const t = text.trim();
  const m = /^([^!=]+?)\s*(==|!=|=)\s*(.*)$/.exec(t);
  let r: Requirement;
  if (m !== null) {
    r = { op: m[2] === "!=" ? "!=" : "=", key: (m[1] ?? "").trim(), value: (m[3] ?? "").trim() };
    if (!VALUE.test(r.value)) throw bad(text);
  } else if (t.startsWith("!")) {
    r = { op: "!exists", key: t.slice(1).trim() };
  } else {
    r = { op: "exists", key: t };
  }
  if (!KEY.test(r.key)) throw bad(text);
  return r;
}

function bad(text: string): SimError {
  return new SimError(SimErrorCode.badRequest, `unable to parse requirement: "${text}"`);
}

/** Parses `labelSelector` (set-based `in (...)` forms are not supported: a 400, as for any bad selector). */
export function parseLabelSelector(value: string | undefined): LabelSelector | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const reqs = value.split(",").map(requirement);
  return (obj) => {
    const labels = (obj.metadata as { labels?: Record<string, string> } | undefined)?.labels ?? {};
    return reqs.every((r) => {
      const has = Object.hasOwn(labels, r.key);
      switch (r.op) {
        case "=":
          return has && labels[r.key] === r.value;
        case "!=":
          return !has || labels[r.key] !== r.value;
        case "exists":
          return has;
        default:
          return !has;
      }
    });
  };
}
