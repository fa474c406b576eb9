//! Copies with non-temporal ("streaming") stores, for outputs too big to stay in cache.
//!
//! An ordinary store to a line that is not cached first reads the line from memory
//! (read-for-ownership), so writing an output that will not fit in cache moves its bytes
//! twice. Streaming stores skip that read: `compile`'s fused pass computes each chunk in
//! L1 and streams it out, moving one read and one write per element instead of one read
//! and two.

/// Outputs of at least this many bytes (about half this machine's 32 MiB L3) are
/// streamed; smaller ones are likely still cached when their consumer reads them.
pub const STREAM_MIN_BYTES: usize = 16 << 20;

/// `dst.copy_from_slice(src)` with streaming stores. The caller runs `fence()` before
/// another thread may read `dst`.
#[inline]
pub fn copy_streaming(src: &[f32], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len());
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_loadu_ps, _mm_stream_ps};
        // SSE2 is part of x86-64: 16-byte streaming stores need no feature check
        let head = dst.as_ptr().align_offset(16).min(dst.len());
        dst[..head].copy_from_slice(&src[..head]);
        let body = (dst.len() - head) / 4 * 4;
        for i in (head..head + body).step_by(4) {
            // SAFETY: i + 4 <= len; dst + i is 16-byte aligned (head aligned it)
            unsafe { _mm_stream_ps(dst.as_mut_ptr().add(i), _mm_loadu_ps(src.as_ptr().add(i))) };
        }
        dst[head + body..].copy_from_slice(&src[head + body..]);
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(src);
}

/// Orders this thread's streaming stores before its later stores (such as the release
/// that tells a joining thread this part is done).
#[inline]
pub fn fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86-64
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}
