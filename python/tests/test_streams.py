"""Devices, streams and the scheduler (issue 9): MLX 0.32.4's API and errors, the seed's
stream examples, and concurrency (threads x streams give the single-threaded results, no
deadlock; cross-stream inputs wait; async_eval overlaps, from the scheduler's trace)."""

import threading

import numpy as np
import pytest

from diff import REFERENCE_ONLY, A, check, get_rmx, mlx_quirk, rand, rmx_only

# These compare against MLX's CPU-only build; with rmx's CUDA backend (GPU machine) the GPU
# exists and is the default device, which python/tests/test_gpu.py covers instead.
cpu_only_build = pytest.mark.skipif(
    get_rmx().is_available(get_rmx().gpu), reason="asserts MLX's no-GPU-backend behaviour")


def in_thread(fn, timeout=60):
    """fn() on a fresh thread (its own default streams); fails on a deadlock."""
    out = {}

    def body():
        try:
            out["v"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            out["e"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "deadlock: the thread did not finish in time"
    if "e" in out:
        raise out["e"]
    return out.get("v")


# ---------------------------------------------------------------- the seed's examples

def test_seed_unified_memory_examples_verbatim():
    # `a = mx.random.normal((100,))` in the seed; rmx has no random yet, so both
    # libraries get the same normal draws from NumPy.
    n = np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32)

    def seed(mx, a, b):
        out = [mx.add(a, b, stream=mx.cpu)]
        if mx.is_available(mx.gpu):
            out.append(mx.add(a, b, stream=mx.gpu))
        c = mx.add(a, b, stream=mx.cpu)
        out.append(c)
        return out

    got = check(seed, A(n[0]), A(n[1]), np_fn=lambda a, b: [a + b, a + b])
    assert np.array_equal(np.array(got[0]), np.array(got[-1]))


def test_seed_gpu_stream_without_gpu_backend():
    check(lambda mx, a, b: mx.add(a, b, stream=mx.gpu), A(rand((100,))), A(rand((100,), seed=1)),
          expect_error=ValueError)
    mx = get_rmx()
    with pytest.raises(ValueError, match="Cannot get gpu stream without gpu backend"):
        mx.add(mx.array(1.0), mx.array(2.0), stream=mx.gpu)


def test_stream_keyword_takes_streams_devices_and_types():
    def f(mx, a):
        s = mx.new_stream(mx.cpu)
        return [mx.exp(a, stream=s), mx.exp(a, stream=mx.cpu), mx.exp(a, stream=mx.Device(mx.cpu)),
                mx.exp(a, stream=mx.default_stream(mx.cpu))]
    check(f, A(rand((3, 4))))
    for bad in (3, "cpu"):
        check(lambda mx, a: mx.exp(a, stream=bad), A(rand((2,))), expect_error=TypeError)


# ---------------------------------------------------------------- the API, against MLX

def test_device_api_matches_mlx():
    def f(mx):
        return [repr(mx.default_device()), mx.default_device() == mx.cpu,
                repr(mx.cpu), repr(mx.gpu), repr(mx.Device(mx.gpu, 2)),
                mx.Device(mx.cpu) == mx.Device(mx.cpu, 0), mx.Device(mx.cpu).type == mx.cpu,
                mx.is_available(mx.cpu), mx.is_available(mx.gpu),
                mx.is_available(mx.Device(mx.cpu, 1)),
                mx.device_count(mx.cpu), mx.device_count(mx.gpu),
                mx.device_info(), mx.device_info(mx.cpu), mx.device_info(mx.gpu),
                repr(mx.default_stream(mx.cpu).device),
                mx.default_stream(mx.cpu) == mx.default_stream(mx.cpu),
                mx.new_stream(mx.cpu) == mx.default_stream(mx.cpu),
                repr(mx.new_stream(mx.cpu)).startswith("Stream(Device(cpu, 0), ")]
    check(f)


@pytest.mark.parametrize("call", [
    lambda mx: mx.default_stream(mx.gpu),
    lambda mx: mx.new_stream(mx.gpu),
    lambda mx: mx.set_default_device(mx.gpu),
    lambda mx: mx.synchronize(mx.gpu),
    lambda mx: mx.stream(mx.gpu).__enter__(),
    lambda mx: mx.exp(mx.array(1.0), stream=mx.new_thread_local_stream(mx.gpu)),
])
@cpu_only_build
def test_gpu_without_backend_raises_mlx_value_error(call):
    check(call, expect_error=ValueError)
    with pytest.raises(ValueError, match=r"gpu (stream|device) without gpu backend"):
        call(get_rmx())


@pytest.mark.parametrize("call", [
    lambda mx: mx.default_stream(mx.Device(mx.cpu, 1)),
    lambda mx: mx.exp(mx.array(1.0), stream=mx.Device(mx.cpu, 1)),
    lambda mx: mx.synchronize(mx.Device(mx.cpu, 1)),
])
def test_unknown_device_index_raises_index_error(call):
    # MLX raises IndexError with a C++ range-check message; rmx names the device.
    check(call, expect_error=IndexError)
    if REFERENCE_ONLY:
        return
    with pytest.raises(IndexError, match=r"There is no Device\(cpu, 1\)"):
        call(get_rmx())


@rmx_only
@cpu_only_build
def test_unknown_device_index_is_refused_where_mlx_accepts_it():
    # MLX 0.32.4 returns a stream for Device(cpu, 1), or sets it as the default device,
    # and then fails on every op; rmx refuses at once.
    mx = get_rmx()
    for call in (lambda: mx.new_stream(mx.Device(mx.cpu, 1)),
                 lambda: mx.set_default_device(mx.Device(mx.cpu, 1))):
        with pytest.raises(IndexError, match="There is no Device"):
            call()
    assert mx.default_device() == mx.cpu


def test_bad_argument_types_raise_type_error():
    for call in (lambda mx: mx.stream(3), lambda mx: mx.synchronize(3),
                 lambda mx: mx.is_available("cpu"), lambda mx: mx.device_count(mx.Device(mx.cpu)),
                 lambda mx: mx.Device("cpu"), lambda mx: mx.Stream(),
                 lambda mx: mx.set_default_stream(mx.new_thread_local_stream(mx.cpu))):
        check(call, expect_error=TypeError)


@cpu_only_build
def test_stream_context_and_default_stream_per_thread():
    def f(mx):
        s1, s2 = mx.new_stream(mx.cpu), mx.new_stream(mx.cpu)
        d0 = mx.default_stream(mx.cpu)
        seen = []
        ctx = mx.stream(s1)
        with ctx:
            seen.append(mx.default_stream(mx.cpu) == s1)
            with mx.stream(s2):
                seen.append(mx.default_stream(mx.cpu) == s2)
                x = mx.exp(mx.array([1.0, 2.0]))
            with ctx:
                seen.append(mx.default_stream(mx.cpu) == s1)
            seen.append(mx.default_stream(mx.cpu) == s1)
        seen.append(mx.default_stream(mx.cpu) == d0)
        with mx.stream(mx.cpu):
            seen.append(mx.default_stream(mx.cpu) == d0)
        mx.set_default_stream(s2)
        seen.append(mx.default_stream(mx.cpu) == s2)
        seen.append(mx.default_device() == mx.cpu)
        # another thread has its own default stream
        seen.append(in_thread(lambda: mx.default_stream(mx.cpu)) != s2)
        mx.synchronize()
        mx.synchronize(s1)
        mx.synchronize(mx.cpu)
        return seen, x
    got = in_thread(lambda: check(f))
    assert all(got[0])


def test_thread_local_and_thread_unsafe_streams():
    def f(mx):
        tl = mx.new_thread_local_stream(mx.cpu)
        u = mx.new_thread_unsafe_stream(mx.cpu)
        a = mx.add(mx.array(1.0), mx.array(2.0), stream=tl)
        b = mx.add(mx.array(1.0), mx.array(2.0), stream=u)
        with mx.stream(tl):
            c = mx.exp(mx.array(0.5))
        return [a, b, c, repr(tl).startswith("ThreadLocalStream(Device(cpu, 0), "), tl == tl,
                tl.device == mx.cpu, in_thread(lambda: mx.multiply(2.0, 3.0, stream=tl).item())]
    in_thread(lambda: check(f))


def test_clear_streams_errors_match_mlx():
    def f(mx):
        s = mx.new_stream(mx.cpu)
        pending = mx.exp(mx.array([1.0]), stream=s)
        mx.clear_streams()
        out = []
        for call in (lambda: mx.exp(mx.array(1.0), stream=s).item(), lambda: pending.item()):
            try:
                call()
                out.append(None)
            except RuntimeError as e:
                out.append(str(e).replace(str(_index(mx, s)), "N"))
        mx.synchronize(s)  # a no-op on a destroyed stream
        fresh = mx.new_stream(mx.cpu)
        out.append(mx.exp(mx.array(0.0), stream=fresh).item())
        return out
    got = in_thread(lambda: check(f))
    assert got[0] == "There is no Stream(cpu, N) in current thread."


def _index(mx, s):
    return int(repr(s).rsplit(",", 1)[1].rstrip(")"))


@mlx_quirk
def test_clear_streams_also_breaks_the_threads_default_stream():
    # MLX 0.32.4: the destroyed default stream stays the default, so ops fail until
    # set_default_stream names a live one. rmx matches.
    def f(mx):
        mx.default_stream(mx.cpu)
        mx.clear_streams()
        try:
            mx.exp(mx.array(1.0)).item()
            first = "ok"
        except RuntimeError as e:
            first = type(e).__name__
        mx.set_default_stream(mx.new_stream(mx.cpu))
        return first, mx.exp(mx.array(0.0)).item()
    assert in_thread(lambda: check(f))[0] == "RuntimeError"


# ---------------------------------------------------------------- concurrency (rmx)

def _work(mx, a, b, k):
    x = mx.tanh(a * (k + 1) + b)
    y = mx.exp(x * 0.01)
    return mx.sum(y @ x.T, axis=1) + mx.logsumexp(x, axis=0).sum()


@rmx_only
@pytest.mark.parametrize("repeat", range(3))
def test_threads_and_streams_give_single_threaded_results(repeat):
    mx = get_rmx()
    rng = np.random.default_rng(repeat)
    a_np, b_np = (rng.standard_normal((96, 48)).astype(np.float32) for _ in range(2))
    a, b = mx.array(a_np), mx.array(b_np)
    expected = [np.array(_work(mx, a, b, k)) for k in range(12)]
    shared = mx.stream(mx.new_stream(mx.cpu))
    common = mx.new_stream(mx.cpu)
    base = mx.tanh(a) * 1.0  # an unevaluated subgraph every thread reads
    results = [None] * 12
    barrier = threading.Barrier(12)

    def worker(k):
        mine = mx.new_stream(mx.cpu)
        barrier.wait()
        for i in range(5):
            with mx.stream(mine):
                x = mx.arctanh(mx.clip(base, -0.999999, 0.999999)) * 0.0 + a  # == a, built here
            r = _work(mx, x, mx.add(b, 0.0, stream=common), k)
            if i % 2:
                mx.async_eval(r)
            results[k] = np.array(r)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "deadlock"
    del shared
    for k in range(12):
        np.testing.assert_allclose(results[k], expected[k], rtol=1e-5, atol=1e-5)


@rmx_only
def test_arrays_move_between_threads():
    # MLX 0.32.4 raises "There is no Stream(cpu, 0) in current thread" here; rmx evaluates.
    mx = get_rmx()
    x = mx.exp(mx.array([0.0, 1.0]))
    y = in_thread(lambda: mx.multiply(x, 2.0))
    assert in_thread(lambda: y.tolist()) == pytest.approx([2.0, 2 * np.e], rel=1e-6)


def _trace_on(mx):
    mx._trace(True)
    return mx._trace_now


@rmx_only
def test_input_from_a_stream_still_running_is_waited_for():
    mx = get_rmx()
    A_, B_ = mx.new_stream(mx.cpu), mx.new_stream(mx.cpu)
    x = mx.array(np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32))
    mx.eval(x)
    now = _trace_on(mx)
    a = x
    for _ in range(4):
        a = mx.matmul(a, x, stream=A_) * (1 / 512)
    mx.async_eval(a)
    b = mx.add(a, 1.0, stream=B_)  # built while A is still running
    built = now()
    got = np.array(b)
    ev = mx._trace_take()
    mx._trace(False)
    a_end = max(e[3] for e in ev if e[0] == mx._stream_index(A_))
    b_start = [e[2] for e in ev if e[0] == mx._stream_index(B_)]
    assert built < a_end, "A had already finished"
    # B's add (its last node; the others only prepare the scalar) ran after A finished
    assert b_start and max(b_start) >= a_end
    exp = x_np = np.array(x)
    for _ in range(4):
        exp = exp @ x_np * (1 / 512)
    np.testing.assert_allclose(got, exp + 1.0, rtol=1e-4, atol=1e-4)


@rmx_only
def test_async_eval_overlaps_two_independent_computations():
    mx = get_rmx()
    s1, s2 = mx.new_stream(mx.cpu), mx.new_stream(mx.cpu)
    x = mx.array(np.random.default_rng(1).standard_normal((768, 768)).astype(np.float32))
    mx.eval(x)
    now = _trace_on(mx)
    first = mx.sum(mx.matmul(x, x, stream=s1), stream=s1)
    second = mx.sum(mx.matmul(x.T, x, stream=s2), stream=s2)
    mx.async_eval(first)
    returned = now()
    mx.async_eval(second)
    mx.eval(first, second)
    ev = mx._trace_take()
    mx._trace(False)
    on1 = [e for e in ev if e[0] == mx._stream_index(s1)]
    on2 = [e for e in ev if e[0] == mx._stream_index(s2)]
    assert returned < max(e[3] for e in on1), "async_eval waited for the work"
    assert min(e[2] for e in on2) < max(e[3] for e in on1), \
        "the second computation started only after the first finished"


@rmx_only
def test_background_error_is_reported_at_the_next_eval():
    mx = get_rmx()
    a = mx.array([1.0, 2.0])
    bad = mx.take(a, mx.array([5]))  # out of range: IndexError at evaluation
    dep = mx.exp(bad) + 1
    mx.async_eval(dep)
    for call in (lambda: mx.eval(dep), lambda: dep.item(), lambda: np.array(bad)):
        with pytest.raises(IndexError):
            in_thread(call, timeout=30)


@rmx_only
def test_eval_waiting_on_a_stream_mid_kernel_does_not_deadlock():
    # An eval whose node needs another stream's output must not wait on a rayon pool
    # thread: that thread may be inside a parallel loop of the very kernel it waits for
    # (it picks up the eval as pool work while waiting for a stolen half of the loop).
    # This pattern deadlocked a CI run; repeating it makes the interleaving likely.
    mx = get_rmx()
    A_, B_ = mx.new_stream(mx.cpu), mx.new_stream(mx.cpu)
    x = mx.array(np.random.default_rng(2).standard_normal((384, 384)).astype(np.float32))
    mx.eval(x)
    x_np = np.array(x)

    def rounds():
        for i in range(60):
            a = mx.matmul(x, x, stream=A_)
            a = mx.matmul(a, x, stream=A_) * (1 / 384)
            mx.async_eval(a)
            b = mx.add(a, float(i), stream=B_)
            got = np.array(b)
            if i % 20 == 0:
                exp = x_np @ x_np @ x_np * (1 / 384) + i
                np.testing.assert_allclose(got, exp, rtol=1e-3, atol=1e-2)

    in_thread(rounds, timeout=240)  # generous: the GPU suite runs 8 workers at once
