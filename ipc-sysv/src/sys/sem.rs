//! System V sem calls (to be written).
