"""The ``Module`` base class, as ``mlx.nn.Module``.

A module is a ``dict``: public array attributes are its parameters, and child
modules (alone or inside lists/dicts) nest.  Non-array attributes (ints,
floats, callables) live in the instance ``__dict__`` as usual.
"""

from __future__ import annotations

import textwrap
from typing import Any, Callable, List, Optional, Tuple, Union

import rmx.core as mx
from rmx.utils import tree_flatten, tree_unflatten


class Module(dict):
    """Base class for neural network layers and models (see ``mlx.nn.Module``)."""

    __call__: Callable

    def __init__(self):
        self._no_grad = set()
        self._training = True

    # ------------------------------------------------------------------ attrs
    @property
    def training(self):
        return self._training

    @property
    def state(self):
        """The module itself: its dict of parameters, children and state."""
        return self

    def _extra_repr(self) -> str:
        return ""

    def __repr__(self):
        kids = tree_flatten(self.children(), is_leaf=self.is_module)
        out = [f"{type(self).__name__}({self._extra_repr()}"]
        for path, child in kids:
            out.append("\n" + textwrap.indent(f"({path}): {child!r}", "  "))
        if kids:
            out.append("\n")
        out.append(")")
        return "".join(out)

    def __getattr__(self, key: str):
        value = self.get(key, None)
        if value is not None:
            return value
        # Raises the usual AttributeError.
        return super().__getattribute__(key)

    def __setattr__(self, key: str, val: Any):
        if isinstance(val, (mx.array, dict, list, tuple)):
            if key in self.__dict__ and key not in self:
                object.__delattr__(self, key)
            self[key] = val
        else:
            super().__setattr__(key, val)
            self.pop(key, None)

    def __delattr__(self, name):
        if self.get(name, None) is not None:
            del self[name]
        else:
            super().__delattr__(name)

    # ---------------------------------------------------------------- weights
    def load_weights(self, file_or_weights: Union[str, List[Tuple[str, Any]]],
                     strict: bool = True) -> "Module":
        """Loads weights from a ``.npz``/``.safetensors`` file or a list of
        ``(name, array)`` pairs.  With ``strict`` the names and shapes must
        match the model's parameters exactly (``ValueError`` otherwise)."""
        weights = file_or_weights
        if isinstance(weights, str):
            weights = list(mx.load(weights).items())
        if strict:
            new = dict(weights)
            cur = tree_flatten(self.parameters(), destination={})
            extras = new.keys() - cur.keys()
            if extras:
                names = ",\n".join(sorted(extras))
                raise ValueError(
                    f"Received {len(extras)} parameters not in model: \n{names}.")
            missing = cur.keys() - new.keys()
            if missing:
                names = ",\n".join(sorted(missing))
                raise ValueError(f"Missing {len(missing)} parameters: \n{names}.")
            for name, v in cur.items():
                w = new[name]
                if not isinstance(w, mx.array):
                    raise ValueError(
                        f"Expected mx.array but received {type(w)} for parameter {name}")
                if tuple(w.shape) != tuple(v.shape):
                    raise ValueError(
                        f"Expected shape {tuple(v.shape)} but received shape "
                        f"{tuple(w.shape)} for parameter {name}")
        if len(weights) != 0:
            self.update(tree_unflatten(weights), strict=False)
        return self

    def save_weights(self, file: str):
        """Saves the parameters to ``file`` (``.npz`` or ``.safetensors``)."""
        flat = tree_flatten(self.parameters(), destination={})
        if file.endswith(".npz"):
            mx.savez(file, **flat)
        elif file.endswith(".safetensors"):
            mx.save_safetensors(file, flat)
        else:
            raise ValueError(
                f"Unsupported file extension for {file}. Use '.npz' or '.safetensors'.")

    # ---------------------------------------------------------------- filters
    @staticmethod
    def is_module(value):
        return isinstance(value, Module)

    @staticmethod
    def valid_child_filter(module, key, value):
        return isinstance(value, (dict, list))

    @staticmethod
    def valid_parameter_filter(module, key, value):
        return isinstance(value, (dict, list, mx.array)) and not key.startswith("_")

    @staticmethod
    def trainable_parameter_filter(module, key, value):
        return (Module.valid_parameter_filter(module, key, value)
                and key not in module._no_grad)

    def filter_and_map(self, filter_fn: Callable[["Module", str, Any], bool],
                       map_fn: Optional[Callable] = None,
                       is_leaf_fn: Optional[Callable[["Module", str, Any], bool]] = None):
        """Recursively selects the entries for which ``filter_fn(module, key,
        value)`` holds, mapping leaves with ``map_fn``.  Containers that hold
        nothing selected become ``{}``."""
        map_fn = map_fn or (lambda x: x)
        if is_leaf_fn is None:
            def is_leaf_fn(m, k, v):
                return not isinstance(v, (Module, dict, list))
        return {
            k: _walk(self, k, v, filter_fn, map_fn, is_leaf_fn)
            for k, v in self.items()
            if filter_fn(self, k, v)
        }

    def parameters(self):
        """All parameters (public arrays), as a nested dict."""
        return self.filter_and_map(self.valid_parameter_filter)

    def trainable_parameters(self):
        """The parameters that are not frozen, as a nested dict."""
        return self.filter_and_map(self.trainable_parameter_filter)

    def children(self):
        """The direct child modules, as a nested dict."""
        return self.filter_and_map(self.valid_child_filter, is_leaf_fn=_is_module_leaf)

    def leaf_modules(self):
        """The submodules that have no children of their own."""
        def leaf(m, k, v):
            return isinstance(v, Module) and len(tree_flatten(v.children())) == 0
        return self.filter_and_map(self.valid_child_filter, is_leaf_fn=leaf)

    # ---------------------------------------------------------------- updates
    def update(self, parameters: dict, strict: bool = True) -> "Module":
        """Replaces parameters with those found in ``parameters`` (a full or
        partial tree like :meth:`parameters`)."""
        _update_params(self, parameters, strict)
        return self

    def apply(self, map_fn: Callable, filter_fn: Optional[Callable] = None) -> "Module":
        """Maps the (filtered) parameters with ``map_fn`` and updates them."""
        filter_fn = filter_fn or Module.valid_parameter_filter
        self.update(self.filter_and_map(filter_fn, map_fn))
        return self

    def update_modules(self, modules: dict, strict: bool = True) -> "Module":
        """Replaces child modules with those found in ``modules``."""
        _update_modules(self, modules, strict)
        return self

    def apply_to_modules(self, apply_fn: Callable[[str, "Module"], Any]) -> "Module":
        """Calls ``apply_fn(path, module)`` for this module and every submodule."""
        stack = [("", self)]
        while stack:
            prefix, mod = stack.pop()
            apply_fn(prefix, mod)
            pre = "." + prefix if prefix else ""
            stack.extend(tree_flatten(mod.children(), prefix=pre, is_leaf=self.is_module))
        return self

    def modules(self):
        out = []
        self.apply_to_modules(lambda k, m: out.append(m))
        return out

    def named_modules(self):
        out = []
        self.apply_to_modules(lambda k, m: out.append((k, m)))
        return out

    # ----------------------------------------------------------------- freeze
    def _validate_keys(self, keys, strict):
        keys = keys if isinstance(keys, list) else [keys]
        if strict:
            for k in keys:
                if k not in self:
                    raise KeyError(f"Module doesn't contain member {k}.")
        return keys

    def _validate_keys_recursive(self, keys):
        keys = keys if isinstance(keys, list) else [keys]
        mods = self.modules()
        for k in keys:
            if not any(k in m for m in mods):
                raise KeyError(f"Module doesn't contain member {k}.")

    def freeze(self, *, recurse: bool = True,
               keys: Optional[Union[str, List[str]]] = None,
               strict: bool = False) -> "Module":
        """Freezes the module's parameters (or only ``keys``): they are left
        out of :meth:`trainable_parameters` and get no gradients."""
        def impl(_, m, strict=strict):
            local = keys
            if local is None:
                local = [k for k, _ in tree_flatten(m.filter_and_map(
                    lambda mm, k, v: (not isinstance(v, Module))
                    and mm.valid_parameter_filter(mm, k, v)))]
            local = m._validate_keys(local, strict)
            m._no_grad.update(local)

        if recurse:
            if strict and keys is not None:
                self._validate_keys_recursive(keys)
                strict = False
            self.apply_to_modules(lambda p, m: impl(p, m, strict))
        else:
            impl("", self)
        return self

    def unfreeze(self, *, recurse: bool = True,
                 keys: Optional[Union[str, List[str]]] = None,
                 strict: bool = False) -> "Module":
        """Undoes :meth:`freeze` (for all parameters or only ``keys``)."""
        def impl(_, m, strict=strict):
            if keys is None:
                m._no_grad.clear()
            else:
                m._no_grad.difference_update(m._validate_keys(keys, strict))

        if recurse:
            if strict and keys is not None:
                self._validate_keys_recursive(keys)
                strict = False
            self.apply_to_modules(lambda p, m: impl(p, m, strict))
        else:
            impl("", self)
        return self

    # ------------------------------------------------------------------- mode
    def _set_training_mode(self, mode: bool) -> None:
        self._training = mode

    def train(self, mode: bool = True) -> "Module":
        self.apply_to_modules(lambda _, m: m._set_training_mode(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def set_dtype(self, dtype, predicate: Optional[Callable] = lambda x: mx.issubdtype(x, mx.floating)):
        """Casts the parameters whose dtype satisfies ``predicate`` to ``dtype``."""
        if predicate is None:
            def predicate(_):
                return True
        self.apply(lambda x: x.astype(dtype) if predicate(x.dtype) else x)


def _is_module_leaf(m, k, v):
    return isinstance(v, Module)


def _walk(owner, key, value, filter_fn, map_fn, is_leaf_fn):
    if is_leaf_fn(owner, key, value):
        return map_fn(value)
    if isinstance(value, Module):
        return {k: _walk(value, k, v, filter_fn, map_fn, is_leaf_fn)
                for k, v in value.items() if filter_fn(value, k, v)}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            path = f"{key}.{k}"
            out[k] = (_walk(owner, path, v, filter_fn, map_fn, is_leaf_fn)
                      if filter_fn(owner, path, v) else {})
        return out
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            path = f"{key}.{i}"
            out.append(_walk(owner, path, v, filter_fn, map_fn, is_leaf_fn)
                       if filter_fn(owner, path, v) else {})
        return out
    raise RuntimeError("Unexpected leaf found while traversing the module")


def _update_params(dst, params, strict):
    def put(container, key, cur, new):
        if isinstance(cur, mx.array):
            if strict and not isinstance(new, mx.array):
                raise ValueError(f"Received invalid type: {type(new).__name__}.")
            container[key] = new
        else:
            _update_params(cur, new, strict)

    if isinstance(params, dict):
        for k in params:
            if k in dst:
                put(dst, k, dst[k], params[k])
            elif strict:
                raise ValueError(f'Module does not have parameter named "{k}".')
    elif isinstance(params, list):
        for i in range(len(params)):
            if i >= len(dst):
                if strict:
                    raise ValueError(f"List index {i} is out of bounds for "
                                     f"destination of length {len(dst)}.")
                continue
            put(dst, i, dst[i], params[i])
    elif strict:
        raise ValueError(f"Received invalid type: {type(params).__name__}.")


def _update_modules(dst, modules, strict):
    def put(container, key, cur, new):
        if isinstance(cur, Module) and isinstance(new, Module):
            container[key] = new
        elif isinstance(cur, (dict, list)):
            _update_modules(cur, new, strict)
        elif strict and new != {}:
            raise ValueError(f"Received invalid type: {type(new).__name__}.")

    if isinstance(modules, dict):
        for k in modules:
            if k in dst:
                put(dst, k, dst[k], modules[k])
            elif strict:
                raise ValueError(f'Module does not have sub-module named "{k}".')
    elif isinstance(modules, list):
        for i in range(len(modules)):
            if i >= len(dst):
                if strict:
                    raise ValueError(f"List index {i} is out of bounds for "
                                     f"destination of length {len(dst)}.")
                continue
            put(dst, i, dst[i], modules[i])
    elif strict:
        raise ValueError(f"Received invalid type: {type(modules).__name__}.")
