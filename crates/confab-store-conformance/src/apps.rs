//! Apps and tokens: [`AppStore`]. Needs nothing else.

use crate::*;

/// Run this module's checks, one after the other, on one store.
pub async fn run(store: Arc<dyn Store>) {
    apps(store.clone()).await;
    app_limits(store.clone()).await;
    tokens(store).await;
}

// ------------------------------------------------------------------------------------------
// apps

fn assert_same_app(got: &App, want: &App) {
    assert_eq!(
        (got.id, &got.name, got.plan, got.created_at, &got.keys, &got.limit_overrides),
        (want.id, &want.name, want.plan, want.created_at, &want.keys, &want.limit_overrides),
        "app round-trips"
    );
    assert_eq!(got.limits, Limits::resolve(want.plan, &want.limit_overrides).expect("limits resolve"), "find_app resolves limits");
}

/// `create_app`, `find_app` by every lookup, `list_apps`; a duplicate name is refused.
pub async fn apps(store: Arc<dyn Store>) {
    let store = &*store;
    let a = new_app(store).await;
    let b = app_value(Plan::Dev);
    store.create_app(&b).await.expect("create_app (dev plan)");

    let lookups = [
        AppLookup::Id(a.id),
        AppLookup::Name(a.name.clone()),
        AppLookup::LeanCloud(a.keys.leancloud.app_id.clone()),
        AppLookup::Easemob { org: a.keys.easemob.org_name.clone(), app: a.keys.easemob.app_name.clone() },
        AppLookup::Maxim(a.keys.maxim.app_id.clone()),
    ];
    for l in &lookups {
        let found = store.find_app(l).await.expect("find_app").unwrap_or_else(|| panic!("find_app({l:?}) finds the app"));
        assert_same_app(&found, &a);
    }
    let found_b = store.find_app(&AppLookup::LeanCloud(b.keys.leancloud.app_id.clone())).await.unwrap().expect("dev app");
    assert_same_app(&found_b, &b);
    assert_eq!(found_b.plan, Plan::Dev);
    assert_eq!(found_b.limits, Limits::for_plan(Plan::Dev), "a dev app without overrides has the dev plan's limits");

    let misses = [
        AppLookup::Id(fresh_id()),
        AppLookup::Name(format!("{}-no", a.name)),
        AppLookup::LeanCloud(format!("{}-no", a.keys.leancloud.app_id)),
        // the org of one app with the app name of another names neither
        AppLookup::Easemob { org: a.keys.easemob.org_name.clone(), app: b.keys.easemob.app_name.clone() },
        AppLookup::Maxim(format!("{}-no", a.keys.maxim.app_id)),
        // lookups are exact: another app's name is not a LeanCloud id
        AppLookup::LeanCloud(a.name.clone()),
    ];
    for l in &misses {
        assert!(store.find_app(l).await.expect("find_app").is_none(), "find_app({l:?}) finds nothing");
    }

    // a second app with a taken name is refused, and the first is untouched
    let mut dup = app_value(Plan::Dev);
    dup.name = a.name.clone();
    assert!(store.create_app(&dup).await.is_err(), "create_app refuses a duplicate name");
    assert!(store.find_app(&AppLookup::LeanCloud(dup.keys.leancloud.app_id.clone())).await.unwrap().is_none());
    assert_same_app(&store.find_app(&AppLookup::Name(a.name.clone())).await.unwrap().unwrap(), &a);

    let listed = store.list_apps().await.expect("list_apps");
    for want in [&a, &b] {
        let got = listed.iter().find(|x| x.id == want.id).unwrap_or_else(|| panic!("list_apps lists app {}", want.name));
        assert_same_app(got, want);
    }
    assert!(!listed.iter().any(|x| x.id == dup.id), "a refused app is not listed");
}

/// `set_app_limits` stores overrides; `find_app` returns them and resolves the limits.
pub async fn app_limits(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let mut o = Attrs::new();
    Limits::set_override(Plan::Standard, &mut o, "rates.lc.message.per_minute", "9000").unwrap();
    Limits::set_override(Plan::Standard, &mut o, "message_max_bytes", "10240").unwrap();
    store.set_app_limits(app.id, &o).await.expect("set_app_limits");
    for l in [AppLookup::Name(app.name.clone()), AppLookup::LeanCloud(app.keys.leancloud.app_id.clone())] {
        let got = store.find_app(&l).await.unwrap().expect("app");
        assert_eq!(got.limit_overrides, o, "overrides round-trip");
        assert_eq!(got.limits.rate(bucket::LC_MESSAGE).per_minute, Some(9000));
        assert_eq!(got.limits.message_max_bytes, 10240);
        assert_eq!(got.limits.rate(bucket::LC_BROADCAST), Limits::for_plan(Plan::Standard).rate(bucket::LC_BROADCAST));
        assert_eq!(got.limits, Limits::resolve(Plan::Standard, &o).unwrap());
    }
    let listed = store.list_apps().await.unwrap();
    let got = listed.iter().find(|x| x.id == app.id).expect("listed");
    assert_eq!(got.limits.rate(bucket::LC_MESSAGE).per_minute, Some(9000), "list_apps resolves limits too");

    // overrides resolve against the app's own plan
    let dev = app_value(Plan::Dev);
    store.create_app(&dev).await.unwrap();
    let mut od = Attrs::new();
    Limits::set_override(Plan::Dev, &mut od, "message_max_bytes", "2048").unwrap();
    store.set_app_limits(dev.id, &od).await.unwrap();
    let got = store.find_app(&AppLookup::Name(dev.name.clone())).await.unwrap().unwrap();
    assert_eq!(got.limits.message_max_bytes, 2048);
    assert_eq!(got.limits.rate(bucket::LC_MESSAGE).per_minute, Some(120), "the dev plan's rates stay");

    // setting replaces the overrides as a whole; other apps are untouched
    store.set_app_limits(app.id, &Attrs::new()).await.unwrap();
    let got = store.find_app(&AppLookup::Name(app.name.clone())).await.unwrap().unwrap();
    assert!(got.limit_overrides.is_empty());
    assert_eq!(got.limits, Limits::for_plan(Plan::Standard));
    let got = store.find_app(&AppLookup::Name(dev.name.clone())).await.unwrap().unwrap();
    assert_eq!(got.limit_overrides, od);
}

// ------------------------------------------------------------------------------------------
// tokens

/// `put_token`, `get_token`, `delete_token`.
pub async fn tokens(store: Arc<dyn Store>) {
    let store = &*store;
    let app = new_app(store).await;
    let t1 = Token {
        token: format!("conformance-token-{}", fresh_id()),
        app: app.id,
        user: Some("alice".into()),
        kind: TokenKind::LcSession,
        created_at: T0,
        expires_at: Some(T0 + 3_600_000),
        device: Some("Web\u{1f}device-1".into()),
    };
    let t2 = Token {
        token: format!("conformance-token-{}", fresh_id()),
        app: app.id,
        user: None,
        kind: TokenKind::EasemobApp,
        created_at: T0 + 1,
        expires_at: None,
        device: None,
    };
    store.put_token(&t1).await.expect("put_token");
    store.put_token(&t2).await.expect("put_token");
    assert_eq!(store.get_token(&t1.token).await.unwrap(), Some(t1.clone()), "a token round-trips");
    assert_eq!(store.get_token(&t2.token).await.unwrap(), Some(t2.clone()));
    for kind in [TokenKind::LcRealtime, TokenKind::EasemobUser, TokenKind::MaximUser] {
        let t = Token { token: format!("conformance-token-{}", fresh_id()), kind, ..t1.clone() };
        store.put_token(&t).await.unwrap();
        assert_eq!(store.get_token(&t.token).await.unwrap(), Some(t), "kind {kind:?} round-trips");
    }
    assert_eq!(store.get_token(&format!("{}-no", t1.token)).await.unwrap(), None);
    // putting a token again stores the new value
    let t2b = Token { expires_at: Some(T0 + 5), user: Some("bob".into()), ..t2.clone() };
    store.put_token(&t2b).await.expect("put_token again");
    assert_eq!(store.get_token(&t2.token).await.unwrap(), Some(t2b.clone()), "put replaces");
    store.put_token(&t2).await.unwrap();
    store.delete_token(&t1.token).await.expect("delete_token");
    assert_eq!(store.get_token(&t1.token).await.unwrap(), None, "a deleted token is gone");
    assert_eq!(store.get_token(&t2.token).await.unwrap(), Some(t2), "other tokens stay");
    store.delete_token(&t1.token).await.expect("deleting a missing token is fine");
    // a user's tokens of one kind go together; other kinds, users and apps stay
    let mk = |user: &str, kind: TokenKind, app: i64| Token {
        token: format!("conformance-token-{}", fresh_id()),
        user: Some(user.into()),
        kind,
        app,
        ..t1.clone()
    };
    let other = new_app(store).await;
    let (a1, a2) = (mk("carol", TokenKind::LcRealtime, app.id), mk("carol", TokenKind::LcRealtime, app.id));
    let (keep_kind, keep_user, keep_app) = (
        mk("carol", TokenKind::LcSession, app.id),
        mk("dave", TokenKind::LcRealtime, app.id),
        mk("carol", TokenKind::LcRealtime, other.id),
    );
    for t in [&a1, &a2, &keep_kind, &keep_user, &keep_app] {
        store.put_token(t).await.unwrap();
    }
    assert_eq!(store.delete_user_tokens(app.id, "carol", TokenKind::LcRealtime).await.unwrap(), 2);
    assert_eq!(store.get_token(&a1.token).await.unwrap(), None);
    assert_eq!(store.get_token(&a2.token).await.unwrap(), None);
    for t in [&keep_kind, &keep_user, &keep_app] {
        assert!(store.get_token(&t.token).await.unwrap().is_some(), "{:?} stays", t.kind);
    }
}
