//! System V shm calls (to be written).
