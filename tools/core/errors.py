"""The one error tree. Every message is written for the model: what failed, whether a
retry can help, and what to change.

    PhotoError
    ├── InvalidInput          bad argument, path, image or URL: change the input
    │   └── NotFound          unknown file, result or job id
    ├── NotConfigured         provider key missing or optional extra not installed
    ├── BudgetExceeded        a configured credit cap refuses the call (nothing sent)
    ├── StorageFull           the disk or database is full or read-only: nothing was kept
    └── ProviderError         something went wrong at a provider
        ├── AuthFailed        key rejected (401/403): fix the key; auto routing may fall through
        ├── OutOfCredits      402 / insufficient credits; auto routing may fall through
        ├── RateLimited       429 after our own retries; `retry_after` seconds if known
        ├── ProviderUnavailable  5xx / unreachable / timeout; auto routing may fall through
        └── JobFailed         the provider ran the job and it failed (bad photo, NSFW, ...)

`charged` tells whether the provider may have consumed credits for the failed call:
auto routing never falls through after a call that may have charged.
"""

from __future__ import annotations


class PhotoError(Exception):
    """Base class: `str(err)` is the message the model reads."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(PhotoError):
    """The caller's input cannot be used; the message says what to change."""


class NotFound(InvalidInput):
    """A file, result or job id that does not exist."""


class NotConfigured(PhotoError):
    """A provider key or optional extra is missing; the message names the setting."""


class BudgetExceeded(PhotoError):
    """A configured credit cap refuses the call before anything is sent."""


class StorageFull(PhotoError):
    """The result store or the database cannot be written (disk full, quota, read-only, size
    limit): the call's partial work was removed, and the server goes on serving."""


class ProviderError(PhotoError):
    """A failure at a provider.

    Attributes:
        provider: which provider failed.
        charged: whether credits may have been consumed (never fall through then).
        retryable: whether trying the same call again later can help.
        max_charge: with `charged`, the most this call can have cost in total (None: unknown).
            Charges the provider client already recorded through the job's hooks count towards
            it; the job layer records the rest as possibly charged, never as free.
    """

    fall_through = False  # may `provider="auto"` try the next provider?

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        charged: bool = False,
        retryable: bool = False,
        max_charge: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.charged = charged
        self.retryable = retryable
        self.max_charge = max_charge


class AuthFailed(ProviderError):
    fall_through = True


class OutOfCredits(ProviderError):
    fall_through = True


class RateLimited(ProviderError):
    def __init__(self, message: str, *, provider: str, retry_after: float | None = None) -> None:
        super().__init__(message, provider=provider, retryable=True)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    fall_through = True


class JobFailed(ProviderError):
    """The provider ran the job and it failed; usually nothing was charged."""
