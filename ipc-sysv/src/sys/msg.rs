//! System V msg calls (to be written).
