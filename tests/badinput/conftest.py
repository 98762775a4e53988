"""The same fixtures as tests/validate: the kernel and the hello image are made once per session."""

from tests.validate.conftest import (  # noqa: F401
    _private_cache,  # noqa: F401
    cache,
    hello_image,
    kernel_dir,
    shared_cache,
)
