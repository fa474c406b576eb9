//! Every generated kernel source compiles with NVRTC for sm_90. Needs only the NVRTC
//! library (no GPU), so CI runs it when `nvidia-cuda-nvrtc` is installed; skips otherwise.

use super::elementwise::{
    binary_kernel, cast_kernel, fill_kernel, select_kernel, unary_kernel, Kernel,
};
use super::prelude::PRELUDE;
use super::reduce::reduce_kernel;
use super::rows::{norm_kernel, norm_rows_kernel, BLOCK_REDUCE};
use super::softmax::{softmax_kernel, softmax_rows_kernel, spread, ROW_REDUCE};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
use rmx_core::backend::{BinaryOp, ReduceOp, UnaryOp};
use rmx_core::Dtype;

fn nvrtc_present() -> bool {
    let ok = unsafe { cudarc::nvrtc::sys::is_culib_present() };
    if !ok {
        assert!(
            std::env::var_os("RMX_REQUIRE_NVRTC").is_none(),
            "RMX_REQUIRE_NVRTC is set but NVRTC was not found on LD_LIBRARY_PATH"
        );
        eprintln!("NVRTC not found (LD_LIBRARY_PATH): skipping the kernel compile check");
    }
    ok
}

/// Compiles many kernels as one NVRTC program (the shared prelude parsed once).
fn compile(kernels: &[Kernel]) {
    compile_sharing(kernels, &[]);
}

/// `compile`, where the kernels also share the helper snippets `shared`.
fn compile_sharing(kernels: &[Kernel], shared: &[&str]) {
    let mut src = format!("{PRELUDE}{BLOCK_REDUCE}");
    src.extend(shared.iter().copied());
    for k in kernels {
        let mut body = k.src.replace(PRELUDE, "").replace(BLOCK_REDUCE, "");
        for s in shared {
            body = body.replace(s, "");
        }
        src.push_str(&body);
    }
    let opts = CompileOptions {
        arch: Some("sm_90"),
        options: vec!["--std=c++17".into()],
        ..Default::default()
    };
    // as the device compiles them: with the grid-dependency wait inserted (launch.rs)
    let src = crate::launch::with_grid_dependency(&src);
    // RMX_DUMP_KERNELS=dir writes each program's source there (for ptxas -v / SASS reading)
    if let Some(dir) = std::env::var_os("RMX_DUMP_KERNELS") {
        let name = kernels.first().map_or("empty", |k| k.name.as_str());
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.cu")), &src)
            .expect("writing a kernel dump");
    }
    if let Err(e) = compile_ptx_with_opts(&src, opts) {
        let names: Vec<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
        panic!("kernels {names:?} do not compile: {e:?}");
    }
}

/// A sample covering every code path of the generators: each compute kind (float, half
/// via PTX cvt, double, signed, unsigned, bool) and each expression family. (Compiling the
/// full op x dtype product takes NVRTC minutes; the GPU suite runs all of them.)
const SAMPLE_DTYPES: [Dtype; 7] = [
    Dtype::Float16,
    Dtype::Bfloat16,
    Dtype::Float32,
    Dtype::Float64,
    Dtype::Int8,
    Dtype::Uint32,
    Dtype::Bool,
];

#[test]
fn generated_kernels_compile() {
    if !nvrtc_present() {
        return;
    }
    let mut ks = Vec::new();
    for &dt in SAMPLE_DTYPES.iter() {
        use BinaryOp::*;
        use UnaryOp::*;
        for op in [Exp, Sign, Erfinv, Round, BitwiseInvert, Abs] {
            ks.extend(unary_kernel(op, dt, dt));
        }
        ks.extend(unary_kernel(IsInf, dt, Dtype::Bool));
        for op in [Add, Remainder, LogAddExp, Power, Maximum, BitwiseXor] {
            ks.extend(binary_kernel(op, dt, dt));
        }
        ks.extend(binary_kernel(NanEqual, dt, Dtype::Bool));
        ks.extend(cast_kernel(dt, Dtype::Bfloat16));
        ks.extend(cast_kernel(Dtype::Float16, dt));
        ks.extend(cast_kernel(dt, Dtype::Bool));
        ks.push(select_kernel(Dtype::Bool, dt));
        ks.push(fill_kernel(dt));
        for (op, out) in [
            (ReduceOp::Sum, dt),
            (ReduceOp::Max, dt),
            (ReduceOp::Any, Dtype::Bool),
        ] {
            ks.extend(reduce_kernel(op, dt, out, false));
            ks.extend(reduce_kernel(op, dt, out, true));
        }
        ks.extend(softmax_kernel(dt));
        for (n, vector) in [
            (8192, true),
            (8192, false),
            (1000, true),
            (130, false),
            (3, true),
            (128, true),
        ] {
            ks.extend(spread(dt, n, vector).and_then(|s| softmax_rows_kernel(dt, s)));
            for rms in [false, true] {
                ks.extend(spread(dt, n, vector).and_then(|s| norm_rows_kernel(rms, dt, s)));
            }
        }
        ks.extend(norm_kernel(dt == Dtype::Float16, dt));
    }
    ks.sort_by(|a, b| a.name.cmp(&b.name));
    ks.dedup_by(|a, b| a.name == b.name);
    compile_sharing(&ks, &[ROW_REDUCE]);
}

#[test]
fn indexing_kernels_compile() {
    if !nvrtc_present() {
        return;
    }
    let mut ks = super::indexing::all_kernels();
    ks.extend(super::rope_kv::all_kernels());
    compile_sharing(&ks, &[super::indexing::CHECKED]);
    compile_sharing(&super::attention_gemm::all_kernels(), &[ROW_REDUCE]);
    // one program each: the flash kernels define the same helpers and tile constants
    for k in super::flash_attention::all_kernels() {
        compile(&[k]);
    }
}

#[test]
fn fast_qmm_gemv_and_arg_reduce_kernels_compile() {
    if !nvrtc_present() {
        return;
    }
    use rmx_core::backend::ArgReduceOp;
    let mut ks = super::qmm::all_kernels();
    ks.extend(super::gemv::all_kernels());
    ks.extend(super::quantize::all_kernels());
    for dt in SAMPLE_DTYPES {
        ks.extend(super::fast::rope_kernel(dt));
        ks.extend(super::fast::attention_kernel(dt, None));
        ks.extend(super::fast::attention_kernel(dt, Some(Dtype::Bool)));
        ks.extend(super::fast::attention_kernel(dt, Some(dt)));
        ks.extend(super::arg_reduce::arg_reduce_kernel(
            ArgReduceOp::ArgMax,
            dt,
        ));
        ks.extend(super::arg_reduce::arg_reduce_kernel(
            ArgReduceOp::ArgMin,
            dt,
        ));
    }
    compile(&ks);
}

#[test]
fn fused_kernels_compile() {
    if !nvrtc_present() {
        return;
    }
    use rmx_core::primitives::fused::{Arg, Fused, FusedKind, FusedOp};
    // exp(sin(x) * 2 + 1) * x in bf16 with a comparison, a select and a cast to f32
    let op = |kind, args: Vec<Arg>, dtype| FusedOp { kind, args, dtype };
    let bf = Dtype::Bfloat16;
    let program = Fused {
        ops: vec![
            op(FusedKind::Unary(UnaryOp::Sin), vec![Arg::Input(0)], bf),
            op(
                FusedKind::Binary(BinaryOp::Multiply),
                vec![Arg::Op(0), Arg::Input(1)],
                bf,
            ),
            op(FusedKind::Unary(UnaryOp::Exp), vec![Arg::Op(1)], bf),
            op(
                FusedKind::Binary(BinaryOp::Greater),
                vec![Arg::Op(2), Arg::Input(1)],
                Dtype::Bool,
            ),
            op(
                FusedKind::Select,
                vec![Arg::Op(3), Arg::Op(2), Arg::Input(0)],
                bf,
            ),
            op(FusedKind::Cast, vec![Arg::Op(4)], Dtype::Float32),
        ],
    };
    let k = super::fused::fused_kernel(&program, &[bf, bf], &[false, false])
        .expect("a CUDA expression for each op");
    // the same program with its second input a packed host constant
    let kc = super::fused::fused_kernel(&program, &[bf, bf], &[false, true])
        .expect("a CUDA expression for each op");
    compile(&[k, kc]);
}

#[test]
fn scan_sort_and_random_kernels_compile() {
    if !nvrtc_present() {
        return;
    }
    use rmx_core::backend::ScanOp;
    let mut ks = Vec::new();
    for dt in SAMPLE_DTYPES
        .iter()
        .copied()
        .chain([Dtype::Int64, Dtype::Uint8])
    {
        for op in [
            ScanOp::Reduce(ReduceOp::Sum),
            ScanOp::Reduce(ReduceOp::Prod),
            ScanOp::Reduce(ReduceOp::Max),
            ScanOp::Reduce(ReduceOp::Min),
            ScanOp::LogAddExp,
        ] {
            for block in [false, true] {
                ks.extend(super::scan::scan_kernel(op, dt, block));
            }
        }
        ks.extend(super::sort::sort_kernels(dt));
    }
    ks.push(super::random::random_bits_kernel());
    compile(&ks);
}

#[test]
fn conv_fft_linalg_searchsorted_and_fp8_kernels_compile() {
    if !nvrtc_present() {
        return;
    }
    let mut ks: Vec<Kernel> = [2, 4, 8].map(super::conv::im2col_kernel).into();
    ks.push(super::fft::scale_kernel());
    ks.extend(super::linalg::helper_kernel(Dtype::Float32));
    ks.extend(super::linalg::helper_kernel(Dtype::Float64));
    for dt in [Dtype::Bool, Dtype::Int64, Dtype::Float16, Dtype::Float64] {
        ks.extend(super::elementwise::cast_kernel(dt, Dtype::Complex64));
    }
    {
        use BinaryOp::*;
        use UnaryOp::*;
        let complex_out = [
            Negative, Conjugate, Square, Sqrt, Exp, Log, Sin, Cos, Round, Sign, Rsqrt, Reciprocal,
            Log1p, Log2, Log10, Tan, Tanh, Sinh, Cosh, Arcsin, Arccos, Arctan, Arcsinh, Arccosh,
            Arctanh,
        ];
        for op in complex_out {
            ks.extend(super::complex::unary_kernel(op, Dtype::Complex64));
        }
        for op in [Abs, Real, Imag] {
            ks.extend(super::complex::unary_kernel(op, Dtype::Float32));
        }
        for op in [IsNan, IsInf, IsPosInf, IsNegInf] {
            ks.extend(super::complex::unary_kernel(op, Dtype::Bool));
        }
        for op in [Add, Subtract, Multiply, Divide, Maximum, Minimum] {
            ks.extend(super::complex::binary_kernel(op, Dtype::Complex64));
        }
        for op in [Equal, NotEqual] {
            ks.extend(super::complex::binary_kernel(op, Dtype::Bool));
        }
    }
    for dt in SAMPLE_DTYPES {
        ks.extend(super::searchsorted::kernel(dt));
    }
    ks.extend(super::complex_reduce::all_kernels());
    for dt in [
        Dtype::Bool,
        Dtype::Int32,
        Dtype::Uint64,
        Dtype::Float16,
        Dtype::Float64,
    ] {
        ks.extend(super::elementwise::cast_kernel(Dtype::Complex64, dt));
    }
    compile_sharing(
        &ks,
        &[super::searchsorted::NAN_LESS, super::complex::COMPLEX],
    );
    let mut ks: Vec<Kernel> = Vec::new();
    for dt in [
        Dtype::Float16,
        Dtype::Bfloat16,
        Dtype::Float32,
        Dtype::Float64,
    ] {
        ks.extend(super::fp8::kernel(dt, None));
        ks.extend(super::fp8::kernel(Dtype::Uint8, Some(dt)));
    }
    compile_sharing(&ks, &[super::fp8::CODEC]);
}
