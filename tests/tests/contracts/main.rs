//! The contract tests, one test binary (one link of the core and the SDKs, not eight): each
//! module holds one part of the code against its contracts — the definitions, the template,
//! the events, the README and the module layout. Test names read `<module>::<test>`.

mod adapters;
mod definition;
mod events;
mod fleet;
mod modules;
mod readme;
mod stack_tag;
mod template;
