//! nibble-data (work in progress).
