//! Users and logins: [`UserStore`]. Uses `create_app` to make its apps.

use crate::*;

/// Run this module's checks, one after the other, on one store.
pub async fn run(store: Arc<dyn Store>) {
    users(store.clone()).await;
    logins(store.clone()).await;
    user_quota(store).await;
}

// ------------------------------------------------------------------------------------------
// users

/// `ensure_users` creates only the missing; `create_user` refuses taken ids and usernames;
/// lookups by id, number and username; everything per app.
pub async fn users(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let other = new_app(store).await;
    let (n_alice, n_bob) = (fresh_id(), fresh_id());
    let nu = |id: &str, num: i64| NewUser { id: id.to_string(), num };
    store.ensure_users(app.id, &[nu("alice", n_alice), nu("bob", n_bob)], T0).await.expect("ensure_users");
    let alice = store.get_user(app.id, "alice").await.unwrap().expect("alice was created");
    assert_eq!(alice, User::new(app.id, "alice", n_alice, T0));

    // existing users keep their number and creation time; only the missing are created
    let n_carol = fresh_id();
    store.ensure_users(app.id, &[nu("alice", fresh_id()), nu("carol", n_carol)], T0 + 5).await.expect("ensure_users again");
    assert_eq!(store.get_user(app.id, "alice").await.unwrap(), Some(alice.clone()), "an existing user is left as it is");
    let carol = store.get_user(app.id, "carol").await.unwrap().expect("carol was created");
    assert_eq!((carol.num, carol.created_at), (n_carol, T0 + 5));
    assert_eq!(store.get_user_by_num(app.id, n_alice).await.unwrap().map(|u| u.id), Some("alice".into()));
    assert_eq!(store.get_user_by_num(app.id, n_bob).await.unwrap().map(|u| u.id), Some("bob".into()));
    assert_eq!(store.get_user_by_num(app.id, n_alice + 1_000_000_000).await.unwrap(), None);
    store.ensure_users(app.id, &[], T0).await.expect("ensure_users with no users");

    // a full user
    let dave = User {
        app: app.id,
        id: "dave".into(),
        num: fresh_id(),
        username: Some("dave_login".into()),
        password_hash: Some("$argon2id$v=19$hash".into()),
        nickname: Some("Dave".into()),
        attributes: attrs(json!({"city": "Oslo", "n": 1, "tags": ["a"]})),
        disabled: true,
        created_at: T0 + 1,
        updated_at: T0 + 2,
        last_login_at: None,
    };
    store.create_user(&dave).await.expect("create_user");
    assert_eq!(store.get_user(app.id, "dave").await.unwrap(), Some(dave.clone()), "a user round-trips");
    assert_eq!(store.get_user_by_num(app.id, dave.num).await.unwrap(), Some(dave.clone()));
    assert_eq!(store.get_user_by_username(app.id, "dave_login").await.unwrap(), Some(dave.clone()));
    assert_eq!(store.get_user_by_username(app.id, "dave").await.unwrap(), None, "an id is not a username");
    assert_eq!(store.get_user_by_username(app.id, "alice").await.unwrap(), None);

    // taken id (made by create_user or by ensure_users), taken username
    let taken_id = User { num: fresh_id(), username: Some("other_login".into()), ..dave.clone() };
    assert!(matches!(store.create_user(&taken_id).await, Err(Error::UserExists(_))), "a taken id: UserExists");
    let taken_id2 = User { id: "alice".into(), num: fresh_id(), username: None, ..dave.clone() };
    assert!(matches!(store.create_user(&taken_id2).await, Err(Error::UserExists(_))), "an id made by ensure_users: UserExists");
    let taken_name = User { id: "erin".into(), num: fresh_id(), ..dave.clone() };
    assert!(matches!(store.create_user(&taken_name).await, Err(Error::UserExists(_))), "a taken username: UserExists");
    assert_eq!(store.get_user(app.id, "erin").await.unwrap(), None, "a refused user is not stored");
    assert_eq!(store.get_user_by_username(app.id, "other_login").await.unwrap(), None);
    assert_eq!(store.get_user(app.id, "alice").await.unwrap(), Some(alice.clone()));

    // users without a username do not collide with each other
    let u1 = User { id: "nouser1".into(), num: fresh_id(), username: None, ..dave.clone() };
    let u2 = User { id: "nouser2".into(), num: fresh_id(), username: None, ..dave.clone() };
    store.create_user(&u1).await.expect("a user without username");
    store.create_user(&u2).await.expect("another user without username");

    // ids, numbers and usernames are per app
    assert_eq!(store.get_user(other.id, "alice").await.unwrap(), None);
    assert_eq!(store.get_user_by_num(other.id, n_alice).await.unwrap(), None);
    assert_eq!(store.get_user_by_username(other.id, "dave_login").await.unwrap(), None);
    store.ensure_users(other.id, &[nu("alice", n_alice)], T0 + 9).await.expect("the same id and number in another app");
    let other_alice = store.get_user(other.id, "alice").await.unwrap().expect("created in the other app");
    assert_eq!((other_alice.app, other_alice.num, other_alice.created_at), (other.id, n_alice, T0 + 9));
    store.create_user(&User { app: other.id, num: fresh_id(), ..dave.clone() }).await.expect("the same username in another app");
    assert_eq!(store.get_user(app.id, "alice").await.unwrap(), Some(alice.clone()));
    // several at once: those that exist, of this app only
    let mut found = store.get_users(app.id, &["alice".into(), "nobody".into(), "bob".into()]).await.unwrap();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(found.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), vec!["alice", "bob"]);
    assert_eq!(found[0], alice);
    assert!(store.get_users(app.id, &[]).await.unwrap().is_empty());
    assert_eq!(store.get_users(other.id, &["bob".into()]).await.unwrap(), vec![], "per app");
    // counting, listing in creation order (numeric id), updating, deleting
    let n = store.count_users(app.id).await.unwrap();
    let listed = store.list_users(app.id, None, 100).await.unwrap();
    assert_eq!(listed.len() as i64, n);
    assert!(listed.windows(2).all(|w| w[0].num < w[1].num), "by numeric id");
    let page = store.list_users(app.id, Some(listed[0].num), 1).await.unwrap();
    assert_eq!(page, vec![listed[1].clone()], "after a number, at most limit");
    let mut changed = alice.clone();
    changed.nickname = Some("Ally".into());
    changed.disabled = true;
    changed.attributes.insert("k".into(), json!("v"));
    changed.updated_at = T0 + 50;
    store.update_user(&changed).await.unwrap();
    assert_eq!(store.get_user(app.id, "alice").await.unwrap(), Some(changed.clone()));
    assert!(matches!(store.update_user(&User { id: "ghost".into(), ..changed.clone() }).await, Err(Error::UserNotFound(_))));
    assert!(store.delete_user(app.id, "alice").await.unwrap());
    assert_eq!(store.get_user(app.id, "alice").await.unwrap(), None);
    assert_eq!(store.count_users(app.id).await.unwrap(), n - 1);
    assert!(!store.delete_user(app.id, "alice").await.unwrap(), "already gone");
    assert!(store.get_user(other.id, "alice").await.unwrap().is_some(), "the other app's alice stays");
}

/// `record_login` and `count_logins_since`: distinct users, `since` inclusive, per app.
pub async fn logins(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let other = new_app(store).await;
    ensure(store, &app, &["a", "b", "c"]).await;
    ensure(store, &other, &["a"]).await;
    assert_eq!(store.count_logins_since(app.id, 0).await.unwrap(), 0, "nobody logged in yet");
    store.record_login(app.id, "a", T0 + 100).await.expect("record_login");
    store.record_login(app.id, "b", T0 + 200).await.unwrap();
    store.record_login(app.id, "a", T0 + 300).await.unwrap();
    store.record_login(other.id, "a", T0 + 400).await.unwrap();
    let count = |since| async move { store.count_logins_since(app.id, since).await.unwrap() };
    assert_eq!(count(0).await, 2, "distinct users");
    assert_eq!(count(T0 + 100).await, 2);
    assert_eq!(count(T0 + 200).await, 2, "since is inclusive");
    assert_eq!(count(T0 + 201).await, 1);
    assert_eq!(count(T0 + 300).await, 1);
    assert_eq!(count(T0 + 301).await, 0);
    assert_eq!(store.count_logins_since(other.id, 0).await.unwrap(), 1, "per app");
    assert_eq!(store.get_user(app.id, "a").await.unwrap().unwrap().last_login_at, Some(T0 + 300));
    assert_eq!(store.get_user(app.id, "c").await.unwrap().unwrap().last_login_at, None);
}

// ------------------------------------------------------------------------------------------
// the users quota

fn bare_user(app: &App, id: &str) -> User {
    User::new(app.id, id, fresh_id(), T0)
}

/// `create_user_within` refuses (`OverQuota(Users)`) a user the app has no room for, in the
/// insert's transaction: N creates at once against a quota of K leave exactly K users.
pub async fn user_quota(store: Arc<dyn Store>) {
    let app = new_app(&*store).await;
    let other = new_app(&*store).await;
    ensure(&*store, &app, &["a", "b"]).await;
    store.create_user_within(&bare_user(&app, "c"), Some(3)).await.expect("the third of three");
    let r = store.create_user_within(&bare_user(&app, "d"), Some(3)).await;
    assert_eq!(r, Err(Error::OverQuota { quota: Quota::Users, max: 3 }), "a fourth of three");
    assert_eq!(store.get_user(app.id, "d").await.unwrap(), None, "nothing is written");
    assert!(matches!(store.create_user_within(&bare_user(&app, "a"), Some(3)).await, Err(Error::UserExists(_))), "a taken id at the quota");
    store.create_user_within(&bare_user(&app, "d"), None).await.expect("no quota");
    store.create_user_within(&bare_user(&other, "d"), Some(1)).await.expect("another app's users do not count");
    assert_eq!(store.count_users(app.id).await.unwrap(), 4);

    // at once: exactly K of N
    let (n, k) = (24, 7);
    let app = new_app(&*store).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (store, u) = (store.clone(), bare_user(&app, &format!("u{i}")));
        tasks.spawn(async move { store.create_user_within(&u, Some(k)).await });
    }
    let (mut made, mut refused) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.expect("task") {
            Ok(()) => made += 1,
            Err(Error::OverQuota { quota: Quota::Users, max }) if max == k => refused += 1,
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!((made, refused), (k, n - k), "exactly K made, the rest refused");
    assert_eq!(store.count_users(app.id).await.unwrap(), k);
}
