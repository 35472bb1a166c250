// Shared with the CLI (the demo), not part of the package's API: how to start the MCP servers the
// package ships or depends on. See docs/architecture.md, "Public API and internal barrels".
export { filesystemServerCommand, refundServerCommand } from './examples/commands.js';
export type { ServerCommand } from './examples/commands.js';
