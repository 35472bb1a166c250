import { MemoryApprovalRepository } from '../../src/gates/index.js';
import { SqliteDatabase } from '../../src/store/sqlite-database.js';
import {
  GATES_MIGRATION_SQL,
  SqliteApprovalRepository,
} from '../../src/store/sqlite-gate-repositories.js';
import { runApprovalRepositoryContract } from './approval-repository-contract.js';

runApprovalRepositoryContract('memory', () => ({ repository: new MemoryApprovalRepository() }));
runApprovalRepositoryContract('sqlite', () => {
  // The lead gives the migration its place in SQLITE_MIGRATIONS (9); alone here, any version will do.
  const database = new SqliteDatabase(':memory:', [
    { version: 1, name: 'gates', sql: GATES_MIGRATION_SQL },
  ]);
  return {
    repository: new SqliteApprovalRepository(database),
    close: () => {
      database.close();
    },
  };
});
