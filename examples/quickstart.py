"""The MLX quickstart walkthrough (the user's notes), run on rmx. Prints each result."""

import rmx.core as mx


def show(title, value):
    print(f"{title:<48} {value if isinstance(value, str) else repr(value)}")


print("== Basics")
a = mx.array([1, 2, 3, 4])
show("a.dtype", a.dtype)
b = mx.array([1.0, 2.0, 3.0, 4.0])
c = a + b  # lazy: a graph node, nothing computed
show("c evaluated before eval?", "no (lazy)")
mx.eval(c)
show("c after mx.eval(c)", c)
x = mx.array(0.0)
show("mx.sin(0.0)", mx.sin(x))
show("mx.cos(0.0)", mx.cos(x))

print("\n== Lazy evaluation")
def fun(v):
    h = v * 2
    y = h.sum()
    if y > 0:  # using an array in control flow evaluates it
        return h + 1
    return h - 1
show("fun(array([1, 2])) with `if y > 0`", fun(mx.array([1.0, 2.0])))
mx.reset_peak_memory()
start = mx.get_active_memory()
v = mx.zeros((1000,))
for _ in range(2000):
    v = v * 0.99 + 1
    mx.eval(v)
show("2,000-step loop: active memory growth (bytes)", mx.get_active_memory() - start)
show("value after the loop (-> 100)", v[0])

print("\n== Function transforms: grad composes to any depth")
dfdx = mx.grad(mx.sin)
show("mx.grad(mx.sin)(pi)", dfdx(mx.array(mx.pi)))
show("mx.grad(mx.grad(mx.sin))(pi/2)", mx.grad(mx.grad(mx.sin))(mx.array(mx.pi / 2)))


def loss_fn(w, x, y):
    return mx.mean(mx.square(w * x - y))


w = mx.array(1.0)
x = mx.array([0.5, -0.5])
y = mx.array([1.5, -1.5])
show("grad(loss_fn)(w, x, y)  (w.r.t. w)", mx.grad(loss_fn)(w, x, y))
show("grad(loss_fn, argnums=1)(w, x, y)", mx.grad(loss_fn, argnums=1)(w, x, y))
loss, dloss_dw = mx.value_and_grad(loss_fn)(w, x, y)
show("value_and_grad: loss", loss)
show("value_and_grad: dloss/dw", dloss_dw)
show("grad of stop_gradient(x) * x at [2, 3]", mx.grad(lambda t: (mx.stop_gradient(t) * t).sum())(mx.array([2.0, 3.0])))
vmap_add = mx.vmap(lambda a, b: a + b, in_axes=(1, 0))
show("vmap(a + b, in_axes=(1, 0))", vmap_add(mx.ones((3, 2)), mx.ones((2, 3))))

print("\n== Compilation: trace once, merge common work, fuse elementwise chains")
traces = []


def gelu_ish(t):
    traces.append(1)  # Python side effects run only while tracing
    return t * mx.sigmoid(1.702 * t) + mx.sigmoid(1.702 * t) * 0


fast = mx.compile(gelu_ish)
v = mx.array([-1.0, 0.0, 1.0, 2.0])
show("compile(gelu_ish)(v)", fast(v))
fast(v)
show("traced how many times for two calls", len(traces))
fast(mx.array([1.0, 2.0]))
show("after a shape change", len(traces))

print("\n== Unified memory: choose the device per operation")
a = mx.random.normal((100,))
b = mx.random.normal((100,))
show("mx.add(a, b, stream=mx.cpu)", mx.add(a, b, stream=mx.cpu))
show("mx.is_available(mx.gpu)", mx.is_available(mx.gpu))
try:
    mx.add(a, b, stream=mx.gpu)
except ValueError as e:
    show("mx.add(a, b, stream=mx.gpu) without a GPU", f"ValueError: {e}")

print("\n== Indexing (bounds-checked, boolean masks supported)")
m = mx.arange(12).reshape(3, 4)
show("m[1, ::2]", m[1, ::2])
show("m[mx.array([0, 2])][:, -1]", m[mx.array([0, 2])][:, -1])
show("m[m > 8]", m[m > 8])
try:
    m[mx.array([5])]
    mx.eval(m[mx.array([5])])
except IndexError as e:
    show("m[array([5])]", f"IndexError: {e}")
