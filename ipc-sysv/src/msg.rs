//! System V message queues (to be written).
