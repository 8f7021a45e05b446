//! Panics turned into errors: a bug in one command or one sweep run is reported as a message
//! (with where it happened) instead of killing the process with Rust's default text and exit
//! code 101. `install_hook` once per process, then `catch` around the work.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    /// How many `catch` calls are running on this thread.
    static CATCHING: Cell<usize> = const { Cell::new(0) };
    /// The last caught panic on this thread, "message (at file:line:column)".
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A panic hook that, inside `catch`, only records the message and location for `catch` to
/// return (the caller prints it once); elsewhere (a thread nobody catches) it keeps Rust's
/// default report. With `RUST_BACKTRACE` set, the default report is printed in both cases.
pub fn install_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if CATCHING.with(Cell::get) == 0 || backtrace_wanted() {
            default(info);
        }
        if CATCHING.with(Cell::get) > 0 {
            let mut text = message(info.payload());
            if let Some(l) = info.location() {
                text += &format!(" (at {}:{}:{})", l.file(), l.line(), l.column());
            }
            LAST.with(|last| *last.borrow_mut() = Some(text));
        }
    }));
}

/// Runs `f`; a panic inside it becomes `Err` with its message (and location, when the hook of
/// `install_hook` is in place). Whatever `f` borrowed may be half-updated after a panic: callers
/// only use this where that state is discarded or per-run.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    CATCHING.with(|c| c.set(c.get() + 1));
    LAST.with(|last| last.borrow_mut().take());
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    result.map_err(|payload| {
        LAST.with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| message(payload.as_ref()))
    })
}

/// The text of a panic payload (`panic!` with a message gives a `&str` or a `String`).
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".into()
    }
}

fn backtrace_wanted() -> bool {
    std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0")
}
