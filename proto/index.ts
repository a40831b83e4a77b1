export * from "./close-codes.js";
export * from "./codec.js";
export * from "./errors.js";
export * from "./frame-builder.js";
export * from "./messages.js";
export * from "./version.js";
