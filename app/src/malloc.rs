//! The C allocator's arena count, bounded before the process starts its threads.
//!
//! glibc gives threads their own malloc arenas, up to eight per core, and memory freed in one
//! arena is not reused by another. Under a long webhook flood (the overload benchmark: 20 s of
//! triggers at 64 connections, then the backlog's drain) the embedded process' anonymous
//! memory peaked at 27 MiB over 19 threads, 17 MiB with two arenas, at the same throughput;
//! the whole process must stay under 50 MB.

/// Two arenas for all threads: the main one and one more, so the blocking pool's database
/// calls and the async workers do not all contend on a single lock.
const ARENAS: i32 = 2;

/// Call first in `main`, before any runtime starts threads.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets one of glibc's allocator tunables; it is called before any other
    // thread exists, and M_ARENA_MAX takes any positive count.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}
