//! Node ids on a real PostgreSQL: one node per id, the id free again when its node ends.

use std::time::Duration;

use confab_store_postgres::NodeClaim;

use confab_store_postgres::test_db::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_id_is_held_by_one_node_at_a_time() {
    let Some(db) = TestDb::new().await else { return };
    let first = NodeClaim::claim(&db.url, 3).await.expect("id 3 is free");
    assert_eq!(first.id(), 3);
    assert!(first.is_held());
    // a second node asking for it is refused, clearly
    let err = NodeClaim::claim(&db.url, 3).await.err().expect("id 3 is taken");
    assert!(err.to_string().contains("node id 3 is taken"), "{err}");
    // out of range
    for bad in [0, 32] {
        let err = NodeClaim::claim(&db.url, bad).await.err().expect("out of range");
        assert!(err.to_string().contains("1 to 31"), "{err}");
    }
    // a tool takes a free id: not 3
    let tool = NodeClaim::claim_free(&db.url).await.expect("a free id");
    assert_ne!(tool.id(), 3);
    // the node ends (as a killed process's connection ends): its id is free again
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(c) = NodeClaim::claim(&db.url, 3).await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = again.expect("id 3 free once its node ended");
    assert_eq!(again.id(), 3);
    drop((tool, again));
}
