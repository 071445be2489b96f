//! Locks that a panic elsewhere does not break. A std `Mutex` is poisoned when a thread
//! panics holding it, and `lock().unwrap()` then panics in every later caller: one panic in
//! a request task would take the whole embedding engine with it. The state behind these
//! locks is plain counters and slots, updated by single assignments, so it is still
//! meaningful after a panic and is used as it is.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
