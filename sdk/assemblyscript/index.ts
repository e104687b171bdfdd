// Package entry for `import { ... } from "@hostlink/sdk"`: the AssemblyScript compiler resolves a package import
// to <package>/index.ts (it does not read `ascMain` for bare imports), so this file re-exports the SDK.
export * from "./assembly/index";
