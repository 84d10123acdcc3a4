"""The lectures' live demos (ConvNetJS's 2-D classifier, TensorFlow Playground) in the browser, on chainrule itself.

``chainrule playground`` serves the page (needs the ``[playground]`` extra: Starlette, uvicorn, websockets); see
docs/playground.md. ``Session`` is the plain-Python session logic of the 2-D mode (data, estimator, steps, views),
``chainrule.playground.images.ImageSession`` that of the images mode (ConvNetJS's digit and CIFAR-10 demos), both
importable without the web extra; ``create_app`` builds the ASGI app.
"""

from chainrule.playground.session import Session

__all__ = ["Session", "create_app"]


def __getattr__(name: str):
    if name == "create_app":  # Starlette is an optional extra: import it only when the app is wanted
        from chainrule.playground.server import create_app

        return create_app
    raise AttributeError(f"module 'chainrule.playground' has no attribute {name!r}")
