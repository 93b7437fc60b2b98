"""The providers, one folder per vendor, and the one registry that describes them.

Every provider (the three hosted APIs and the offline `local` backend) is a client class with
the same shape: `from_settings(settings, *, transport, policy, **extra)` (raises NotConfigured),
`async with`, one async method per feature taking `(…, hooks)` and returning `ProviderImage`s,
`resume(ref, hooks)` where a job can outlive the process, and `balance()` where there is money.

`REGISTRY` says, per provider, which settings it needs, how to set it up, its webhook path and
what each operation costs; settings checks, `doctor`, routing, `check_credits` and the README's
table read it. Importing this module imports no client (cold start stays fast): the runtime
imports a client when a tool first needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tools.core.settings import Settings

Basis = Literal["documented", "estimated"]
ProviderName = Literal["aluo", "youcam", "removedo", "local"]


@dataclass(frozen=True)
class Cost:
    """What `units` of an operation cost on one provider, and how that is known."""

    credits: float
    basis: Basis
    source: str = ""


@dataclass(frozen=True)
class ProviderInfo:
    name: ProviderName
    title: str
    client: str  # "module:Class", imported on first use
    keys: tuple[str, ...]  # the Settings fields that must be set
    env: tuple[str, ...]  # their environment variables, for messages
    setup: str  # what to do when it is not set up
    base_url: str | None = None  # the Settings field holding its base URL
    webhook_path: str | None = None
    operations: tuple[str, ...] = ()  # the tool operations it can run
    paid: bool = True


def _local_setup() -> str:
    from tools.providers.local import INSTALL_HINT

    return f"install the offline extra: {INSTALL_HINT}"


REGISTRY: dict[str, ProviderInfo] = {
    "aluo": ProviderInfo(
        name="aluo",
        title="Aluo AI",
        client="tools.providers.aluo.client:AluoClient",
        keys=("aluo_api_key",),
        env=("ALUO_API_KEY",),
        setup="set ALUO_API_KEY (an Aluo API key, sk-…, from your aluo.ai account)",
        base_url="aluo_base_url",
        operations=("remove_background", "edit_photo", "generate_product_photo", "generate_background"),
    ),
    "youcam": ProviderInfo(
        name="youcam",
        title="YouCam (Perfect Corp)",
        client="tools.providers.youcam.client:YouCamClient",
        keys=("youcam_api_key", "youcam_secret_key"),
        env=("YOUCAM_API_KEY", "YOUCAM_SECRET_KEY"),
        setup="set YOUCAM_API_KEY and YOUCAM_SECRET_KEY (the API Key and Secret Key of the YouCam API console)",
        base_url="youcam_base_url",
        operations=(
            "remove_background",
            "try_hairstyle",
            "simulate_aging",
            "transfer_makeup",
            "remove_object",
            "colorize_photo",
            "enhance_photo",
            "generate_image",
        ),
    ),
    "removedo": ProviderInfo(
        name="removedo",
        title="Removedo",
        client="tools.providers.removedo.client:RemovedoClient",
        keys=("removedo_api_key",),
        env=("REMOVEDO_API_KEY",),
        setup="set REMOVEDO_API_KEY (an API key from removedo.com, sk_live_…)",
        base_url="removedo_base_url",
        webhook_path="/webhooks/removedo/{secret}",
        operations=("remove_background",),
    ),
    "local": ProviderInfo(
        name="local",
        title="The offline backend",
        client="tools.providers.local.provider:LocalProvider",
        keys=(),
        env=(),
        setup="",  # computed: the install hint depends on how photo-mcp was installed
        operations=(
            "remove_background",
            "remove_object",
            "enhance_photo",
            "blur_background",
            "correct_colors",
            "place_on_background",
            "resize_image",
            "crop_image",
            "convert_image",
        ),
        paid=False,
    ),
}
HOSTED = tuple(name for name, info in REGISTRY.items() if info.paid)
# Offline operations that need the segmentation model, not only numpy and OpenCV.
_NEEDS_MODEL = frozenset({"remove_background", "blur_background", "place_on_background"})


def info(name: str) -> ProviderInfo:
    """Raises:
    KeyError: for a name that is not a provider.
    """
    return REGISTRY[name]


def setup_hint(name: str) -> str:
    return _local_setup() if name == "local" else REGISTRY[name].setup


def missing(settings: Settings, name: str, operation: str | None = None) -> str | None:
    """Why `name` cannot run `operation` here (its setup message), or None when it can."""
    if name == "local":
        from tools.providers.local import available

        return None if available(need_model=operation is None or operation in _NEEDS_MODEL) else _local_setup()
    provider = REGISTRY[name]
    for key in provider.keys:
        value = getattr(settings, key)
        if value is None or not value.get_secret_value().strip():
            return provider.setup
    return None


def configured(settings: Settings, name: str, operation: str | None = None) -> bool:
    return missing(settings, name, operation) is None


def cost(settings: Settings, name: str, operation: str, units: int = 1) -> Cost:
    """What `units` of `operation` cost on `name`, from that provider's own price data (its spec).

    Raises:
        KeyError: `name` does not run `operation`.
    """
    if operation not in REGISTRY[name].operations:
        raise KeyError(f"{name} does not run {operation}")
    if name == "aluo":
        from tools.providers.aluo import spec as aluo

        plan = settings.aluo_plan
        if operation == "edit_photo":
            credits, basis = aluo.edit_price(units, plan)
        elif operation == "generate_product_photo":
            credits, basis = aluo.generate_price(units, plan)
        else:
            credits, basis = aluo.call_price(operation, plan)  # type: ignore[arg-type]
        return Cost(credits, basis, aluo.SOURCES.get(operation, ""))
    if name == "removedo":
        from tools.providers.removedo import spec as removedo

        credits, basis = removedo.PRICES[operation]
        return Cost(credits * units, basis, removedo.SOURCES[operation])
    if name == "youcam":
        from tools.providers.youcam import spec as youcam

        # Every feature is one task: the seeds price none of them (see youcam.spec.PRICES).
        credits, basis = max(youcam.PRICES.values())
        return Cost(credits * units, basis, youcam.PRICE_SOURCE)
    return Cost(0, "documented", "runs on this machine")


def estimate(settings: Settings, name: str, operation: str, units: int = 1) -> float:
    """Credits the caps see for `units` of `operation` on `name`."""
    return cost(settings, name, operation, units).credits
