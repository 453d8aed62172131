//! System V shared-memory segments (to be written).
