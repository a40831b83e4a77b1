export * from "./change-log.js";
export * from "./deep-equal.js";
export * from "./hub.js";
export * from "./keys.js";
export * from "./kinds.js";
export * from "./store.js";
export * from "./sync-state.js";
export * from "./sink.js";
