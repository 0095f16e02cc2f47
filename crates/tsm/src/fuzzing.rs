//! Fuzz harnesses (filled below).
