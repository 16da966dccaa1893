//! The Rhai engine with every binding registered. Adding a binding: write it in the
//! domain's `rhai.rs` and describe it in its `docs.rs`; a new domain's `register` is
//! called here and its docs are listed in `api.rs`.

use crate::kit::{interrupt, Session};
use rhai::{Dynamic, Engine};
use std::rc::Rc;

pub fn build(session: &Rc<Session>) -> Engine {
    let mut engine = Engine::new();
    engine.set_fail_on_invalid_map_property(true);
    // Rhai's defaults differ between debug and release builds (32/16 vs 64/32) and
    // refuse ordinary nested config maps inside functions; one limit for both.
    engine.set_max_expr_depths(128, 128);
    engine.set_module_resolver(crate::kit::modules::SearchPath::default());
    // Polled between statements, so Ctrl-C also stops long pure-script loops.
    engine.on_progress(|_| interrupt::requested().then(|| Dynamic::from(interrupt::MESSAGE)));

    crate::data::rhai::register(&mut engine, session);
    crate::models::rhai::register(&mut engine, session);
    crate::train::rhai::register(&mut engine, session);
    crate::metrics::rhai::register(&mut engine);
    crate::train::record::register(&mut engine, session);
    crate::plot::rhai::register(&mut engine, session);
    crate::frame::rhai::register(&mut engine);
    crate::sweep::rhai::register(&mut engine, session);
    register_host(&mut engine, session);
    engine
}

fn register_host(engine: &mut Engine, session: &Rc<Session>) {
    let s = session.clone();
    engine.register_fn("param", move |name: &str, default: Dynamic| {
        s.params
            .borrow_mut()
            .read(name, default)
            .map_err(crate::kit::error::script_error)
    });
    let s = session.clone();
    engine.register_fn("device", move || {
        crate::kit::session::device_name(s.device())
    });
}
