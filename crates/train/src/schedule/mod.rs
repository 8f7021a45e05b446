//! LR schedules (work in progress).
