"""Sequential container."""

from rmx.nn.module import Module


class Sequential(Module):
    """Calls its ``layers`` in order, feeding each one's output to the next."""

    def __init__(self, *modules):
        super().__init__()
        self.layers = list(modules)

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
