//! The ring channel.
