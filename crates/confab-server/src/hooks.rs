//! The app's own code, wired: every face's hooks in one chain the engine asks, and the outbox
//! runner with every face's sink. A face adds its hooks here.

use std::collections::HashMap;
use std::sync::Arc;

use confab_engine::{Engine, HookChain, Hooks};
use confab_face_leancloud::extract;
use confab_hooks::push::{Names, PushHooks, PushSink};
use confab_hooks::{Caller, CallerSettings, Outbox, OutboxHandle, OutboxSettings, Sink};

/// How conversations and messages are named in a push: as LeanCloud clients know them.
pub const NAMES: Names = Names { conv: extract::cid_of, msg: extract::mid_of };

/// Let the apps' code take part in what `engine` does, and start making the calls it keeps.
pub fn start(engine: &Arc<Engine>, settings: OutboxSettings) -> OutboxHandle {
    // the engine holds its hooks, which hold this clock: a weak handle, so no cycle keeps a
    // stopped engine alive
    let clock = {
        let engine = Arc::downgrade(engine);
        Arc::new(move || engine.upgrade().map_or_else(confab_engine::time::now_ms, |e| e.now())) as Arc<dyn Fn() -> i64 + Send + Sync>
    };
    let caller = Arc::new(Caller::new(CallerSettings::default(), clock.clone()));
    let lc = confab_face_leancloud::hooks::LcHooks::new(caller.clone(), clock.clone());
    let service = Arc::new(confab_face_leancloud::service_hook::ServiceHook { caller: caller.clone() });
    let chain: Vec<Arc<dyn Hooks>> = vec![
        lc.clone(),
        service.clone(),
        Arc::new(PushHooks { names: NAMES }),
        Arc::new(confab_face_easemob::callbacks::EmHooks { caller: caller.clone() }),
        Arc::new(confab_face_maxim::webhook::MxHooks),
    ];
    engine.app_code().set_hooks(Arc::new(HookChain(chain)));
    let mut sinks: HashMap<String, Arc<dyn Sink>> = HashMap::new();
    sinks.insert(
        confab_hooks::push::SINK.into(),
        Arc::new(PushSink {
            caller: caller.clone(),
            clock: clock.clone(),
            rules: vec![Arc::new(confab_face_easemob::offline_push::EmPushRules { engine: engine.clone() })],
        }),
    );
    sinks.insert(confab_face_leancloud::hooks::SINK.into(), Arc::new(confab_face_leancloud::hooks::LcSink { hooks: lc }));
    sinks.insert(confab_face_leancloud::service_hook::SINK.into(), service);
    sinks.insert(
        confab_face_easemob::callbacks::SINK.into(),
        Arc::new(confab_face_easemob::callbacks::EmSink::new(caller.clone(), engine.clone(), clock.clone())),
    );
    sinks.insert(
        confab_face_maxim::webhook::SINK.into(),
        Arc::new(confab_face_maxim::webhook::MxSink { caller: caller.clone(), engine: engine.clone() }),
    );
    Outbox::new(engine.clone(), caller, sinks, settings).start()
}
