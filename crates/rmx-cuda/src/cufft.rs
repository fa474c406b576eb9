//! cuFFT, loaded at run time like the other CUDA libraries (cudarc 0.17 has no cuFFT
//! binding): the entry points `kernels/fft.rs` uses, and a cache of plans. Without the
//! library the FFT runs on the host.

use libloading::Library;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::OnceLock;

pub type Handle = i32;

/// `cufftType` values.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Kind {
    R2C = 0x2a,
    C2R = 0x2c,
    C2C = 0x29,
}

pub const FORWARD: i32 = -1;
pub const INVERSE: i32 = 1;

type PlanMany = unsafe extern "C" fn(
    *mut Handle,
    i32,
    *mut i32,
    *mut i32,
    i32,
    i32,
    *mut i32,
    i32,
    i32,
    i32,
    i32,
) -> i32;
type SetStream = unsafe extern "C" fn(Handle, *mut c_void) -> i32;
type ExecC2C = unsafe extern "C" fn(Handle, *mut c_void, *mut c_void, i32) -> i32;
type ExecReal = unsafe extern "C" fn(Handle, *mut c_void, *mut c_void) -> i32;

pub struct CuFft {
    plan_many: PlanMany,
    set_stream: SetStream,
    exec_c2c: ExecC2C,
    exec_r2c: ExecReal,
    exec_c2r: ExecReal,
    /// Plans by (kind, length, batch), kept for the process.
    plans: Mutex<HashMap<(Kind, i32, i32), Handle>>,
    _lib: Library,
}

/// Names the library goes by across CUDA 11-13.
const NAMES: [&str; 4] = [
    "libcufft.so",
    "libcufft.so.12",
    "libcufft.so.13",
    "libcufft.so.11",
];

/// The loaded library, or `None` when it is not on the loader's path.
pub fn cufft() -> Option<&'static CuFft> {
    static LIB: OnceLock<Option<CuFft>> = OnceLock::new();
    LIB.get_or_init(|| unsafe {
        let lib = NAMES.iter().find_map(|n| Library::new(n).ok())?;
        Some(CuFft {
            plan_many: *lib.get::<PlanMany>(b"cufftPlanMany\0").ok()?,
            set_stream: *lib.get::<SetStream>(b"cufftSetStream\0").ok()?,
            exec_c2c: *lib.get::<ExecC2C>(b"cufftExecC2C\0").ok()?,
            exec_r2c: *lib.get::<ExecReal>(b"cufftExecR2C\0").ok()?,
            exec_c2r: *lib.get::<ExecReal>(b"cufftExecC2R\0").ok()?,
            plans: Mutex::new(HashMap::new()),
            _lib: lib,
        })
    })
    .as_ref()
}

fn check(what: &str, code: i32) -> rmx_core::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(rmx_core::runtime_err!(
            "[cuda] cuFFT {what} failed (cufftResult {code})."
        ))
    }
}

impl CuFft {
    /// `batch` contiguous transforms of length `n` of `kind` from `input` to `output`
    /// (device addresses; `direction` matters for C2C only), queued on `stream`.
    ///
    /// # Safety
    /// The addresses must hold `batch` lines of the kind's input and output layouts.
    pub unsafe fn exec(
        &self,
        kind: Kind,
        (n, batch): (usize, usize),
        direction: i32,
        (input, output): (u64, u64),
        stream: *mut c_void,
    ) -> rmx_core::Result<()> {
        let (n, batch) = (n as i32, batch as i32);
        let mut plans = self.plans.lock();
        let plan = match plans.get(&(kind, n, batch)) {
            Some(&p) => p,
            None => {
                let mut p: Handle = 0;
                let mut dims = [n];
                let null = std::ptr::null_mut();
                check(
                    "plan",
                    (self.plan_many)(
                        &mut p,
                        1,
                        dims.as_mut_ptr(),
                        null,
                        1,
                        0,
                        null,
                        1,
                        0,
                        kind as i32,
                        batch,
                    ),
                )?;
                plans.insert((kind, n, batch), p);
                p
            }
        };
        // the plan is used under the lock: one stream setting and launch at a time
        check("set stream", (self.set_stream)(plan, stream))?;
        let (i, o) = (input as *mut c_void, output as *mut c_void);
        let code = match kind {
            Kind::C2C => (self.exec_c2c)(plan, i, o, direction),
            Kind::R2C => (self.exec_r2c)(plan, i, o),
            Kind::C2R => (self.exec_c2r)(plan, i, o),
        };
        check("exec", code)
    }
}
