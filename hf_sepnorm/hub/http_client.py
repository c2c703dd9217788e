"""The HTTP client library huggingface_hub sends its requests with: httpx for huggingface_hub 1.x (which transformers
5.10.1 requires), httpx2 for 2.x (which 5.25 requires). Both have the same API (`TransportError`, `TimeoutException`,
`HTTPError`, `Timeout`); the package names neither, it asks huggingface_hub's own session."""

import importlib
import types

from huggingface_hub import get_session


def hub_http_client() -> types.ModuleType:
    """The module (httpx or httpx2) of the client huggingface_hub's `get_session()` returns."""
    return importlib.import_module(type(get_session()).__module__.partition(".")[0])
