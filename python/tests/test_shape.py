"""Shape manipulation: reshape/flatten/squeeze/transpose/broadcast/concat/split/tile/pad/roll/..."""

import copy

import numpy as np
import pytest

from diff import A, DTYPES, check, check_raises, get_rmx, mlx_quirk, rand

X3 = A(rand((2, 3, 4), "float32", seed=1))
VIEWS = {
    "contig": None,
    "T": lambda x: x.T,
    "step": lambda x: x[:, ::-1, ::2],
    "perm": lambda x: x.transpose(1, 0, 2),
    "bcast": lambda x: x[:, :1, :] + 0 * x[:1, :1, :1],
}


def x3(view="contig", dt="float32", shape=(2, 3, 4), seed=1):
    return A(rand(shape, dt, seed=seed), dt, view=VIEWS[view])


# ------------------------------------------------------------------ reshape

@pytest.mark.parametrize("view", ["contig", "T", "step", "perm"])
@pytest.mark.parametrize("shape", [(-1,), (4, -1), ("n",), (2, -1), (-1, 2, 2), (1, "n", 1), (3, 2, -1)],
                         ids=repr)
def test_reshape(shape, view):
    x = x3(view)
    n = x.view(x.data).size if x.view else x.data.size
    shape = tuple(n if s == "n" else s for s in shape)
    check(lambda m, a: m.reshape(a, shape), x, np_fn=lambda a: np.reshape(a, shape))
    check(lambda m, a: a.reshape(shape), x)
    check(lambda m, a: a.reshape(*shape), x)


@pytest.mark.parametrize("dt", DTYPES)
def test_reshape_dtypes(dt):
    check(lambda m, a: a.reshape(4, 6).T.reshape(-1), x3(dt=dt))


@pytest.mark.parametrize("shape", [(-1, -1), (5, -1), (7,), (), (-2, 12), (0, -1)], ids=repr)
def test_reshape_errors(shape):
    check_raises(lambda m, a: a.reshape(shape), X3, err=ValueError)


def test_reshape_edge():
    check(lambda m: m.array([1]).reshape(()))
    check(lambda m: m.array(3.0).reshape(1, 1))
    check(lambda m: m.zeros((0, 3)).reshape(3, 0))
    check(lambda m: m.zeros((0, 3)).reshape(0, 5, 0))
    check_raises(lambda m: m.zeros((0, 3)).reshape(-1, 0), err=ValueError)


# ----------------------------------------------------------- flatten / unflatten

@pytest.mark.parametrize("args", [(), (1,), (0, 1), (-2,), (0, -1), (1, 2), (2, 2), (0, 5), (-3, -2)],
                         ids=repr)
@pytest.mark.parametrize("view", ["contig", "T", "step"])
def test_flatten(args, view):
    x = x3(view)
    check(lambda m, a: m.flatten(a, *args), x)
    check(lambda m, a: a.flatten(*args), x)


def test_flatten_kw_and_errors():
    check(lambda m, a: m.flatten(a, start_axis=-2), X3)
    check(lambda m, a: m.flatten(a, end_axis=1), X3)
    check(lambda m: m.flatten(m.array(3)))
    check_raises(lambda m, a: m.flatten(a, 2, 1), X3, err=ValueError)
    check_raises(lambda m, a: m.flatten(a, 4), X3)


@pytest.mark.parametrize("axis,shape", [(2, (2, 2)), (-1, (2, -1)), (0, (1, 2)), (1, (3, 1)),
                                        (0, (3,)), (1, (-1, -1)), (3, (4,)), (-4, (2,))], ids=repr)
def test_unflatten(axis, shape):
    check(lambda m, a: m.unflatten(a, axis, shape), X3)


# ----------------------------------------------------------- squeeze / expand_dims

@pytest.mark.parametrize("axis", [None, 0, -1, (0, -1), (0, 2), 1, 3, (0, 0), [2]], ids=repr)
def test_squeeze(axis):
    x = A(rand((1, 2, 1), "float32", seed=2))
    if axis is None:
        check(lambda m, a: m.squeeze(a), x, np_fn=np.squeeze)
        check(lambda m, a: a.squeeze(), x)
    else:
        check(lambda m, a: m.squeeze(a, axis), x)
        check(lambda m, a: a.squeeze(axis), x)


def test_squeeze_0d_and_all_ones():
    check(lambda m: m.squeeze(m.array(1)))
    check(lambda m: m.squeeze(m.ones((1, 1, 1))))
    check(lambda m: m.squeeze(m.zeros((1, 0, 1))))


@pytest.mark.parametrize("axis", [0, -1, 3, (0, 2), (0, -1), [0, 1], (1, -4), 4, 5, (0, 0), -5, (4, 0)],
                         ids=repr)
def test_expand_dims(axis):
    check(lambda m, a: m.expand_dims(a, axis), X3)


def test_expand_dims_0d():
    check(lambda m: m.expand_dims(m.array(1), 0))
    check(lambda m: m.expand_dims(m.array(1), (0, 1, -1)))


# ------------------------------------------------------ transpose family

@pytest.mark.parametrize("axes", [None, (1, 0, 2), [2, 0, 1], (-1, 0, 1), (0, 1), (0, 0, 1), (0, 1, 3)],
                         ids=repr)
@pytest.mark.parametrize("view", ["contig", "step"])
def test_transpose(axes, view):
    x = x3(view)
    if axes is None:
        check(lambda m, a: m.transpose(a), x, np_fn=np.transpose)
        check(lambda m, a: a.transpose(), x)
        check(lambda m, a: m.permute_dims(a), x)
    else:
        check(lambda m, a: m.transpose(a, axes), x)
        check(lambda m, a: m.permute_dims(a, axes), x)
        check(lambda m, a: a.transpose(axes), x)
        check(lambda m, a: a.transpose(*axes), x)


def test_T_and_mT():
    check(lambda m, a: a.T, X3)
    check(lambda m, a: a.T.T, X3)
    check(lambda m, a: a.mT, X3)
    check(lambda m, a: m.matrix_transpose(a), X3)
    check(lambda m: m.array(3).T)
    check(lambda m: m.arange(3).T)
    check_raises(lambda m: m.arange(3).mT, err=ValueError)


@pytest.mark.parametrize("a1,a2", [(0, 2), (-1, 0), (1, 1), (0, 3), (-4, 0)], ids=repr)
def test_swapaxes(a1, a2):
    check(lambda m, a: m.swapaxes(a, a1, a2), X3)
    check(lambda m, a: a.swapaxes(a1, a2), X3)


@pytest.mark.parametrize("src,dst", [(0, -1), (2, 0), (1, 1), (-1, -3), (0, 3), (3, 0)], ids=repr)
def test_moveaxis(src, dst):
    check(lambda m, a: m.moveaxis(a, src, dst), X3)
    check(lambda m, a: a.moveaxis(src, dst), X3)


# ------------------------------------------------------------ broadcasting

@pytest.mark.parametrize("src,dst", [((2,), (3, 2)), ((2,), (3, 3)), ((), ()), ((), (2, 3)), ((2,), (2,)),
                                     ((3, 1), (2, 3, 0)), ((3, 1), (3, 4)), ((1, 3), (3,)),
                                     ((2, 1), (-1, 1))], ids=repr)
def test_broadcast_to(src, dst):
    x = A(rand(src, "int32", seed=3))
    check(lambda m, a: m.broadcast_to(a, dst), x)


def test_broadcast_to_scalar_and_views():
    check(lambda m: m.broadcast_to(1.5, (2,)))
    check(lambda m: m.broadcast_to(m.array([[1], [2]]).T, (3, 2)))
    check(lambda m: m.broadcast_to(m.arange(3), (2, 3)) * m.arange(2).reshape(2, 1))


@pytest.mark.parametrize("shapes", [[(2,), (3, 1)], [(1,), ()], [(2, 1, 3), (4, 1), (1,)], [(2,), (3,)], [],
                                    [(0,), (1,)]], ids=repr)
def test_broadcast_arrays_and_shapes(shapes):
    ins = [A(rand(s, "float32", seed=i)) for i, s in enumerate(shapes)]
    check(lambda m, *xs: m.broadcast_arrays(*xs), *ins)
    if shapes:
        check(lambda m: m.broadcast_shapes(*shapes))


def test_broadcast_shapes_empty():
    check_raises(lambda m: m.broadcast_shapes(), err=ValueError)


@pytest.mark.parametrize("shape", [(), (2,), (2, 3), (2, 3, 4), (0,), (1, 1, 1, 1)], ids=repr)
@pytest.mark.parametrize("fname", ["atleast_1d", "atleast_2d", "atleast_3d"])
def test_atleast(fname, shape):
    x = A(rand(shape, "int32", seed=4))
    check(lambda m, a: getattr(m, fname)(a), x, np_fn=getattr(np, fname))
    check(lambda m, a: getattr(m, fname)(a, a), x)


@mlx_quirk
def test_atleast_python_scalar():
    check(lambda m: m.atleast_1d(1))      # MLX: RuntimeError std::bad_cast


# ------------------------------------------------------------ concat / stack

@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3, None, 3, -4], ids=repr)
@pytest.mark.parametrize("fname", ["concatenate", "concat"])
def test_concatenate(fname, axis):
    a = A(rand((2, 3, 4), "float32", seed=5))
    b = A(rand((2, 3, 4), "float32", seed=6))
    check(lambda m, x, y: getattr(m, fname)([x, y, x], axis=axis), a, b,
          np_fn=(lambda x, y: np.concatenate([x, y, x], axis=axis)) if axis not in (3, -4) else None)
    check(lambda m, x, y: getattr(m, fname)((x, y.T.T), axis), a, b)


@pytest.mark.parametrize("dts", [("int8", "float16"), ("uint8", "int8"), ("bool_", "int32"),
                                 ("bfloat16", "float16"), ("uint64", "int64"), ("float32", "complex64")],
                         ids=repr)
def test_concatenate_promotes(dts):
    a = A(rand((2, 3), dts[0], seed=7), dts[0])
    b = A(rand((1, 3), dts[1], seed=8), dts[1])
    check(lambda m, x, y: m.concatenate([x, y]), a, b)
    check(lambda m, x, y: m.stack([x[:1], y]), a, b)


def test_concatenate_misc():
    check(lambda m: m.concatenate([m.arange(6).reshape(2, 3), m.zeros((0, 3), m.int8)]))
    check(lambda m: m.concatenate([m.arange(6).reshape(2, 3)]))
    check(lambda m: m.concatenate([m.arange(6).reshape(2, 3).T, m.ones((3, 1), m.int32)], axis=1))
    check_raises(lambda m: m.concatenate([]), err=ValueError)
    check_raises(lambda m: m.concatenate([m.zeros((2, 3)), m.zeros((3, 2))]), err=ValueError)
    check_raises(lambda m: m.concatenate([m.array(1), m.array(2)]), err=IndexError)
    check(lambda m: m.concatenate([m.array(1), m.array(2)], axis=None))


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -4, 4, -5], ids=repr)
def test_stack(axis):
    a = A(rand((2, 3, 4), "float32", seed=9))
    b = A(rand((2, 3, 4), "float32", seed=10))
    check(lambda m, x, y: m.stack([x, y], axis=axis), a, b,
          np_fn=(lambda x, y: np.stack([x, y], axis=axis)) if -5 < axis < 4 else None)
    check(lambda m, x, y: m.stack((x, y.transpose(0, 1, 2)), axis), a, b)


def test_stack_misc():
    check(lambda m: m.stack([m.array(1), m.array(2.5)]))
    check_raises(lambda m: m.stack([]), err=ValueError)
    check_raises(lambda m: m.stack([m.zeros((2, 3)), m.zeros((3, 2))]), err=ValueError)
    check(lambda m: m.stack([m.zeros((0, 2)), m.ones((0, 2))], axis=1))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_unstack(axis):
    check(lambda m, a: m.unstack(a, axis=axis), X3)
    check(lambda m: m.unstack(m.arange(3)))


# ------------------------------------------------------------------- split

@pytest.mark.parametrize("spec", [3, 1, 6, 4, 0, [1, 4], [4, 1], [0, 10], [-2], [], (2,), [2, 2], [6]],
                         ids=repr)
def test_split_1d(spec):
    check(lambda m: m.split(m.arange(6), spec))
    check(lambda m: m.arange(6).split(spec))


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3, 3])
@pytest.mark.parametrize("spec", [2, [1], [1, 2]], ids=repr)
def test_split_axis(spec, axis):
    x = A(rand((4, 2, 6), "float32", seed=11), view=lambda a: a.transpose(0, 1, 2))
    check(lambda m, a: m.split(a, spec, axis=axis), x)
    check(lambda m, a: m.split(a, spec, axis), x)


# -------------------------------------------------------------- tile / repeat

@pytest.mark.parametrize("reps", [2, (2, 1), (2, 1, 1), 0, (1, 0), [], (3,), (1, 2, 1, 2), -1], ids=repr)
def test_tile(reps):
    x = A(rand((2, 3), "int32", seed=12))
    check(lambda m, a: m.tile(a, reps), x,
          np_fn=(lambda a: np.tile(a, reps)) if reps != -1 and reps != [] else None)


def test_tile_0d_and_views():
    check(lambda m: m.tile(m.array(1), (2, 3)))
    check(lambda m: m.tile(m.arange(6).reshape(2, 3).T, (2, 2)))


@pytest.mark.parametrize("args", [(2,), (2, 1), (2, -2), (0, 0), (3, None), (-1,), (2, 3), (1, 0)], ids=repr)
def test_repeat(args):
    x = A(rand((2, 3), "float32", seed=13))
    check(lambda m, a: m.repeat(a, *args), x)


def test_repeat_misc():
    check(lambda m: m.repeat(m.array(5), 3))
    check(lambda m: m.repeat(m.arange(6).reshape(2, 3).T, 2, axis=0))
    check(lambda m: m.repeat(m.arange(6).reshape(2, 3), [1, 2], axis=0))


# --------------------------------------------------------------------- pad

PADS = [1, (1,), (1, 2), [(1, 0), (0, 2)], ((1, 0),), [1, 2], [[1, 2]], 0, ((0, 0), (3, 1))]


@pytest.mark.parametrize("width", PADS, ids=repr)
@pytest.mark.parametrize("mode", ["constant", "edge"])
def test_pad_modes(width, mode):
    x = A(rand((2, 3), "float32", seed=14))
    np_width = width
    check(lambda m, a: m.pad(a, width, mode=mode), x,
          np_fn=lambda a: np.pad(a, np_width if not isinstance(np_width, list) or
                                 isinstance(np_width[0], (tuple, list)) else tuple(np_width), mode=mode))


@pytest.mark.parametrize("val", [9, 1.5, -1, 300, True], ids=repr)
@pytest.mark.parametrize("dt", ["int32", "uint8", "float32", "float16", "bool_"])
def test_pad_constant_values(dt, val):
    x = A(rand((2, 3), dt, seed=15), dt)
    check(lambda m, a: m.pad(a, 1, constant_values=val), x)
    check(lambda m, a: m.pad(a, [(0, 1), (2, 0)], "constant", val), x)


def test_pad_misc():
    check(lambda m: m.pad(m.arange(6).reshape(2, 3), 1, constant_values=m.array(3)))
    check(lambda m: m.pad(m.array(1), 1))
    check(lambda m: m.pad(m.arange(6).reshape(2, 3).T, (1, 2), mode="edge"))
    check(lambda m: m.pad(m.arange(24).reshape(2, 3, 4), [(0, 1), (1, 0), (2, 2)]))
    check_raises(lambda m: m.pad(m.arange(6).reshape(2, 3), -1), err=ValueError)
    check_raises(lambda m: m.pad(m.arange(6).reshape(2, 3), [(1, 0), (0, 2), (1, 1)]), err=ValueError)


@pytest.mark.parametrize("mode", ["reflect", "symmetric"])
def test_pad_other_modes(mode):
    check(lambda m: m.pad(m.arange(12).reshape(3, 4), 1, mode=mode))
    check(lambda m: m.pad(m.arange(12).reshape(3, 4), (1, 2), mode=mode))


@pytest.mark.parametrize("mode", ["reflect", "symmetric"])
@pytest.mark.parametrize("widths", [
    [(2, 3), (3, 3)],   # up to one mirror image per side (reflect: n - 1; symmetric: n)
    [(3, 0), (0, 4)],
    [(0, 0), (4, 4)],   # symmetric fits once; reflect goes past one image (gather path)
    [(5, 1), (1, 0)],   # wider than the axis: mirrored repeatedly (gather path)
    [(1, 1), (0, 0)],
], ids=repr)
def test_pad_mirror_widths_match_numpy(mode, widths):
    mx = get_rmx()
    base = rand((3, 4), "float32", seed=21)
    for v in (base, base.T.copy().T):  # contiguous, and a transposed view
        x = mx.array(v) if v.flags.c_contiguous else mx.array(v.T).T
        got = np.array(mx.pad(x, widths, mode=mode))
        np.testing.assert_array_equal(got, np.pad(v, widths, mode=mode))


# -------------------------------------------------------------------- roll

@pytest.mark.parametrize("shift,axis", [(1, None), (-1, None), (1, 1), ((1, 2), (0, 1)), ((1, 2), None),
                                        (1, (0, 1)), (7, -1), (1, 2), ((1, 2), 0), (-13, 0), (0, None),
                                        (2, (0, 0))], ids=repr)
def test_roll(shift, axis):
    x = A(rand((2, 3), "int32", seed=16))
    ok = axis != 2
    check(lambda m, a: m.roll(a, shift, axis=axis), x,
          np_fn=(lambda a: np.roll(a, shift, axis=axis)) if ok else None)


def test_roll_misc():
    check(lambda m: m.roll(m.array(1), 1))
    check(lambda m: m.roll(m.zeros((0, 3)), 1, axis=1))
    check(lambda m: m.roll(m.arange(12).reshape(3, 4).T, 1))
    check(lambda m: m.roll(m.arange(12).reshape(3, 4)[::-1, ::2], (1, -1), (0, 1)))


# -------------------------------------------------------------------- flip

@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1), 2, (0, 0), [1]], ids=repr)
def test_flip(axis):
    x = A(rand((2, 3), "float32", seed=17))
    check(lambda m, a: m.flip(a, axis), x, np_fn=(lambda a: np.flip(a, axis)) if axis not in (2, (0, 0)) else None)
    check(lambda m, a: m.flip(a.T, axis=axis), x)


def test_flip_0d():
    check(lambda m: m.flip(m.array(3)))


# ------------------------------------------------------------ diagonal / diag

@pytest.mark.parametrize("args", [(), (1, 1, 2), (-1, 0, 2), (0, 2, 0), (5,), (0, 0, 0), (0, -1, -2), (-2,),
                                  (0, 0, 3)], ids=repr)
def test_diagonal(args):
    check(lambda m, a: m.diagonal(a, *args), X3,
          np_fn=(lambda a: np.diagonal(a, *args)) if args not in [(0, 0, 0), (0, 0, 3)] else None)
    check(lambda m, a: a.diagonal(*args), X3)


def test_diagonal_2d_and_errors():
    x = A(rand((3, 5), "float32", seed=18))
    for k in [-3, -1, 0, 2, 4, 6]:
        check(lambda m, a: m.diagonal(a, k), x, np_fn=lambda a: np.diagonal(a, k))
        check(lambda m, a: m.diagonal(a.T, offset=k), x)
    check_raises(lambda m: m.diagonal(m.arange(3)), err=ValueError)


@pytest.mark.parametrize("k", [0, 1, -2, 3, -5])
@pytest.mark.parametrize("shape", [(3,), (3, 3), (2, 4), (4, 2), (0,)], ids=repr)
def test_diag(shape, k):
    x = A(rand(shape, "int32", seed=19))
    check(lambda m, a: m.diag(a, k), x, np_fn=lambda a: np.diag(a, k))
    check(lambda m, a: m.diag(a, k=k), x)
    check(lambda m, a: a.diag(k), x)


def test_diag_errors():
    check_raises(lambda m, a: m.diag(a), X3, err=ValueError)
    check_raises(lambda m: m.diag(m.array(1)), err=ValueError)


@pytest.mark.parametrize("args", [((3,), {}), ((3, 3), {"offset": 1}), ((3,), {"axis1": 1, "axis2": 2}),
                                  ((3,), {"dtype": "float16"}), ((3,), {"offset": -1, "axis1": 2, "axis2": 0})],
                         ids=repr)
def test_trace(args):
    shape, kw = args
    kw = dict(kw)

    def f(m, a):
        k = dict(kw)
        if "dtype" in k:
            k["dtype"] = getattr(m, k["dtype"])
        return m.trace(a, **k)
    check(f, A(rand((3, 3, 4), "int8", seed=20), "int8"))
    check(f, X3)


@pytest.mark.parametrize("n,axis", [(1, -1), (2, -1), (1, 0), (5, -1), (0, -1), (1, 1)], ids=repr)
@pytest.mark.parametrize("dt", ["int32", "uint8", "bool_", "float32"])
def test_diff(dt, n, axis):
    x = A(rand((3, 4), dt, seed=21), dt)
    check(lambda m, a: m.diff(a, n, axis), x)


# ---------------------------------------------------- as_strided / contiguous / copy

@pytest.mark.parametrize("args", [((3, 3), (1, 1)), ((3,), (3,), 1), ((2, 2), (-1, 1), 5), ((10,), (1,)),
                                  ((2, 5), (5, 1)), ((5, 2), (1, 5))], ids=repr)
def test_as_strided(args):
    check(lambda m: m.as_strided(m.arange(10), *args))
    check(lambda m: m.as_strided(m.arange(10, dtype=m.float16) * 1.5, *args))


def test_as_strided_on_views():
    check(lambda m: m.as_strided(m.arange(6).reshape(2, 3).T, (6,), (1,)))
    check(lambda m: m.as_strided(m.arange(10)))


@mlx_quirk
def test_as_strided_on_strided_view_raises():
    """MLX: RuntimeError 'AsStrided must be used with row contiguous arrays only.' (at eval)."""
    check(lambda m: m.as_strided(m.arange(12).reshape(3, 4)[:, ::2], (2, 3), (1, 2)))


@pytest.mark.parametrize("view", ["contig", "T", "step", "perm", "bcast"])
def test_contiguous_and_copy(view):
    x = x3(view)
    check(lambda m, a: m.contiguous(a), x)
    check(lambda m, a: m.contiguous(a, allow_col_major=True), x)
    check(lambda m, a: m.array(a), x)
    check(lambda m, a: copy.copy(a), x)
    check(lambda m, a: copy.deepcopy(a), x)


def test_copy_independence():
    def f(m):
        a = m.arange(4)
        b = copy.copy(a)
        c = copy.deepcopy(a)
        a[0] = 9
        return a, b, c
    check(f)


@pytest.mark.parametrize("dt", DTYPES)
def test_shape_ops_dtypes(dt):
    x = x3("step", dt)
    check(lambda m, a: m.concatenate([a, a], axis=1), x)
    check(lambda m, a: m.pad(m.flip(a, 0), 1), x)
    check(lambda m, a: m.roll(m.swapaxes(a, 0, 2), 1, axis=0), x)
    check(lambda m, a: m.tile(m.squeeze(a[:1]), (2, 1)), x)
    check(lambda m, a: m.split(m.moveaxis(a, 2, 0), 2), x)
