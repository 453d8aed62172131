//! System V semaphore sets (to be written).
