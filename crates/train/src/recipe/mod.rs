//! Recipe loading (work in progress).
