"""Methods that leave their object as it was when they fail."""

import functools


def unchanged_on_failure(method):
    """Wrap ``method`` so that, when it raises (or is interrupted), the attributes of its
    object are put back as they were before the call: a fit that fails part way must not
    leave a model whose checked shapes no longer match its weights."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        before = self.__dict__.copy()
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    return wrapper
