//! The storage contract against the in-memory store.

use lms_in_memory::InMemoryStore;

async fn fresh_store() -> (InMemoryStore, ()) {
    (InMemoryStore::new(), ())
}

lms_storage_contract::storage_contract_tests!(fresh_store());
