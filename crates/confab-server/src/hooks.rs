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
    let clock = {
        let engine = engine.clone();
        Arc::new(move || engine.now()) as Arc<dyn Fn() -> i64 + Send + Sync>
    };
    let caller = Arc::new(Caller::new(CallerSettings::default(), clock.clone()));
    let lc = confab_face_leancloud::hooks::LcHooks::install(engine, caller.clone(), clock.clone());
    let chain: Vec<Arc<dyn Hooks>> = vec![lc.clone(), Arc::new(PushHooks { names: NAMES })];
    engine.set_hooks(Arc::new(HookChain(chain)));
    let mut sinks: HashMap<String, Arc<dyn Sink>> = HashMap::new();
    sinks.insert(confab_hooks::push::SINK.into(), Arc::new(PushSink { caller: caller.clone(), clock }));
    sinks.insert(confab_face_leancloud::hooks::SINK.into(), Arc::new(confab_face_leancloud::hooks::LcSink { hooks: lc }));
    Outbox::new(engine.clone(), caller, sinks, settings).start()
}
