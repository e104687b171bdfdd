// @hostlink/sdk: typed wrappers over the host functions in ./env (generated from protocol/host-functions.json).
// Contracts import from here; ./env stays available for raw access.
export * from "./buffers";
export * from "./registers";
export * from "./io";
export * from "./logging";
export * from "./storage";
export * from "./context";
export * from "./panic";
export * from "./json";
export * from "./borsh";
export * from "./private";
export * from "./state";
export * from "./collections";
export * from "./blobs";
export * from "./governance";
export * from "./utility";
export * from "./nondet";
