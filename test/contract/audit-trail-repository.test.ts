import { MemoryAuditTrailRepository } from '../../src/audit/index.js';
import { openSqliteStore } from '../../src/store/open-sqlite-store.js';
import { runAuditTrailRepositoryContract } from './audit-trail-repository-contract.js';

runAuditTrailRepositoryContract('memory', () => ({ repository: new MemoryAuditTrailRepository() }));
runAuditTrailRepositoryContract('sqlite', () => {
  const store = openSqliteStore(':memory:');
  return {
    repository: store.auditTrail,
    close: () => {
      store.close();
    },
  };
});
