// The public API of `mandate/store`: the embedded SQLite store. Its repositories, database
// wrapper and migrations are internals (tests import their files directly).
export { openSqliteStore } from './open-sqlite-store.js';
export type { SqliteStore } from './open-sqlite-store.js';
